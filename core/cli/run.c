/* Running a chunk or a script as the root task, for the executable's
 * commands (lessonrun.c, compare.c): how it is reported, and the options
 * set on a fresh state. */
#include <stdio.h>

#include "cli.h"
#include "preload.h"
#include "script.h"

void lr__cli_report(const char *msg) {
  fprintf(stderr, "%s: %s\n", LR_PROGNAME, msg);
  fflush(stderr);
}

int lr__cli_status_exit(int rc) {
  return rc == LR_OK ? 0 : rc == LR_INTERRUPTED ? 130 : 1;
}

void lr__cli_apply(lr_state *S, const lr_run_opts *o) {
  lr_runtime *rt = lr__state_runtime(S);
  if (o->virtual_time) lr__host_set_virtual_time(rt);
  if (o->trace) lr__host_set_trace(rt, 1);
  if (o->no_warnings) lr__host_set_blocking_warnings(rt, 0);
}

/* lua5.4's luaL_loadfile reads it, once. */
int lr__cli_load_found(lua_State *L, const char *path) {
  int st = luaL_loadfilex(L, path, NULL);
  if (st == LUA_OK) lr__preload_if_fetching(L);
  return st;
}

int lr__cli_run_loaded(lr_state *S, int status, int nargs) {
  lua_State *L = lr_lua(S);
  if (status != LUA_OK) {
    lua_pop(L, nargs);
    lr__cli_report(lua_tostring(L, -1));
    lua_pop(L, 1);
    return LR_ERROR;
  }
  int rc = lr__exec(S, nargs);
  if (rc != LR_OK) lr__cli_report(lr_errmsg(S));
  return rc;
}
