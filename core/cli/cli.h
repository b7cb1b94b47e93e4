/* What the executable's files share. */
#ifndef LR_CLI_H
#define LR_CLI_H

#include "embed/embed.h"

#define LR_PROGNAME "lessonrun"

/* lessonrun's own options, as the command line gave them */
typedef struct {
  const char *trace;  /* NULL: off; "": chart on stderr; else a file */
  int virtual_time;
  int no_warnings;
} lr_run_opts;

/* run.c */
void lr__cli_report(const char *msg);  /* "lessonrun: msg" on stderr */
int lr__cli_status_exit(int rc);       /* LR_* to the exit status */
void lr__cli_apply(lr_state *S, const lr_run_opts *o);  /* on a fresh state */
/* Runs the chunk loaded with status (below nargs arguments) as the root
 * task, or reports why it did not load; returns LR_*. */
int lr__cli_run_loaded(lr_state *S, int status, int nargs);
/* Loads the script lr__script_find found at path: the chunk, or the error,
 * pushed; returns luaL_loadfilex's status. */
int lr__cli_load_found(lua_State *L, const char *path);

/* compare.c */
/* The timeline of the run in S: drawn on stderr (dest ""), or written to the
 * file dest; 0 with the error reported when it could not be made. */
int lr__cli_trace_report(lr_state *S, const char *dest, const char *title);
/* lessonrun [options] compare A B [options]: returns the exit status */
int lr__compare(int argc, char **argv, lr_run_opts o, const char *scripts, const char *luadir);

/* repl.c */
int lr__repl(lr_state *S);

#endif
