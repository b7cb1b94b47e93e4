/* prims: the Lua-facing primitives (sleep, wait, semaphore, offload, json, warnings, term); call runtime and below. */
#ifndef LR_PRIMS_H
#define LR_PRIMS_H

#include "runtime/runtime.h"

/* blocking calls: trace them and warn when they held other tasks up */
uint64_t lr__block_begin(lua_State *L, lr_runtime *rt, const lr_wait_kind *kind);
void lr__block_end(lua_State *L, lr_runtime *rt, const lr_wait_kind *kind, uint64_t began,
                   size_t ready_before);
extern const luaL_Reg lr__warn_funcs[];

/* settle.c: tables whose fields are built on first read (a response's
 * headers).  The layer that makes them registers a settler, a C function that
 * builds the fields of such a table (and leaves any other table alone); code
 * that walks tables raw (lua_next: json_encode, offload) settles each table
 * first, so that it sees every field without knowing who made the table.  No
 * Lua runs, and nothing in a table or its metatable can ask for it. */
typedef void (*lr_settle_fn)(lua_State *L, int idx);
void lr__settler_register(lr_settle_fn fn);  /* idempotent, thread-safe */
void lr__settle(lua_State *L, int idx);

/* wait.c: the start of a wait point named fname (a primitive that parks the
 * calling task).  lr__wait_enter returns the calling task, having raised if
 * it was cancelled; called outside any task, it runs self(stack[1..nargs])
 * as a task, drives the loop until that is done, and returns NULL with
 * *nres results pushed (a C function's return value).  lr__wait_yieldable
 * raises when L cannot yield here (a metamethod, a C call): after the fast
 * paths that need no wait. */
lr_task *lr__wait_enter(lua_State *L, lr_runtime *rt, const char *fname, lua_CFunction self, int nargs,
                        int *nres);
void lr__wait_yieldable(lua_State *L, const char *fname);
/* Outside any task, no loop driven: run t to its end (raises "fname: deadlock") */
void lr__drive_task(lua_State *L, lr_runtime *rt, lr_task *t, const char *fname);

/* sleep.c */
extern const luaL_Reg lr__sleep_funcs[];
void lr__sleep_open(void);  /* registers the sleep, yield and blocking_sleep kinds */

/* gather.c */
extern const luaL_Reg lr__gather_funcs[];
void lr__gather_open(void);  /* registers the gather and wait kinds */
int lr__task_wait(lua_State *L);  /* task:wait() */
int lr__wait_finished(lua_State *L, lr_task *c);  /* c finished, its handle at 1: results or raise */

/* task_api.c */
extern const luaL_Reg lr__task_funcs[];
void lr__task_api_open(lua_State *L, lr_runtime *rt);  /* after lr__task_open */

/* semaphore.c */
extern const luaL_Reg lr__semaphore_funcs[];
void lr__semaphore_open(lua_State *L);

/* offload.c */
extern const luaL_Reg lr__offload_funcs[];
void lr__offload_open(void);

/* term.c */
extern const luaL_Reg lr__term_funcs[];

/* json.c */
int lr__json_decode(lua_State *L, const char *s, size_t len);
int lr__json_encode(lua_State *L, int idx, char *errbuf, size_t errlen);
extern const luaL_Reg lr__json_funcs[];

#endif
