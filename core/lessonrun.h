/* lessonrun: an async runtime for Lua 5.4 on libuv (and libcurl).
 *
 * Embedding API.  A runtime is a Lua state with the standard libraries and
 * the lessonrun primitives opened as globals; a chunk you run becomes the
 * root task, so sleep/gather/spawn work at its top level.
 *
 *   lr_state *S = lr_new();
 *   if (lr_dostring(S, "sleep(0.1) print('hi')", "=demo") != 0)
 *     fprintf(stderr, "%s\n", lr_errmsg(S));
 *   lr_close(S);
 */
#ifndef LESSONRUN_H
#define LESSONRUN_H

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lr_state lr_state;

/* Status codes returned by lr_dofile/lr_dostring. */
#define LR_OK 0
#define LR_ERROR 1        /* the chunk raised an error (or failed to load) */
#define LR_INTERRUPTED 2  /* cancelled by SIGINT (Ctrl-C) */

/* Create a runtime: a fresh Lua state, standard libraries, lessonrun globals.
 * Returns NULL when memory is exhausted. */
lr_state *lr_new(void);

/* The Lua state, to register your own functions or read results. */
lua_State *lr_lua(lr_state *S);

/* Run a file (NULL = stdin) / a string as the root task, drive the loop until
 * it ends; tasks it left running are cancelled.  Returns an LR_* status. */
int lr_dofile(lr_state *S, const char *path);
int lr_dostring(lr_state *S, const char *chunk, const char *chunkname);

/* The last error: "message" plus a traceback naming the task.  Valid until
 * the next call on S. */
const char *lr_errmsg(lr_state *S);

/* Cancel remaining tasks, close the loop and the Lua state, free S. */
void lr_close(lr_state *S);

/* The Lua module (require "lessonrun"). */
int luaopen_lessonrun(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif
