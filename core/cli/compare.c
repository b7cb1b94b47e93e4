/* The timeline after a run (--trace), and compare mode: two scripts, each
 * in a fresh runtime, then both timelines on one time axis. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/curl_api.h"
#include "cli.h"
#include "script.h"

/* Calls lessonrun.timeline[fn](core.trace_data(), ...) and leaves its first
 * result on the stack (or reports the error and leaves nil). */
static int call_timeline(lua_State *L, const char *fn, int nargs) {
  int base = lua_gettop(L) - nargs;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lessonrun.timeline");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) goto fail;
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  lua_insert(L, base + 1);
  if (lua_pcall(L, nargs, 1, 0) != LUA_OK) goto fail;
  return 1;
fail:
  lr__cli_report(lr__errtext(L, -1));
  lua_settop(L, base);
  lua_pushnil(L);
  return 0;
}

static void push_trace_data(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "lessonrun.core");
  lua_getfield(L, -1, "trace_data");
  lua_call(L, 0, 1);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

int lr__cli_trace_report(lr_state *S, const char *dest, const char *title) {
  lua_State *L = lr_lua(S);
  push_trace_data(L);
  lua_pushstring(L, dest);
  lua_pushstring(L, title);
  int ok = call_timeline(L, "report", 3);
  lua_pop(L, 1);
  return ok;
}

/* The two scripts, where they were found, and their traces as JSON (to
 * carry them from the state that ran each to the one that draws both). */
typedef struct {
  const char *names[2];
  const char *paths[2];
  char bufs[2][PATH_MAX + 16];
  char *json[2];
} compare_t;

/* The options and the two names after "compare"; 0, or 2 with the usage */
static int compare_args(int argc, char **argv, lr_run_opts *o, compare_t *c) {
  int n = 0;
  o->trace = "";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--virtual-time") == 0) o->virtual_time = 1;
    else if (strcmp(argv[i], "--no-blocking-warnings") == 0) o->no_warnings = 1;
    else if (strcmp(argv[i], "--trace") == 0) continue;  /* compare always draws */
    else if (argv[i][0] != '-' && n < 2) c->names[n++] = argv[i];
    else n = 3;
  }
  if (n == 2) return 0;
  fprintf(stderr, "usage: %s [--virtual-time] [--no-blocking-warnings] compare A.lua B.lua\n", LR_PROGNAME);
  return 2;
}

/* Both found, before either runs; 0, or -1 reported */
static int find_both(compare_t *c, const char *scripts) {
  for (int k = 0; k < 2; k++) {
    char err[PATH_MAX * 3];
    c->paths[k] = lr__script_find(c->names[k], scripts, c->bufs[k], sizeof c->bufs[k], err, sizeof err);
    if (!c->paths[k]) {
      lr__cli_report(err);
      return -1;
    }
  }
  return 0;
}

/* Runs script k in a fresh state, keeping its trace in c->json[k] */
static int run_one(compare_t *c, int k, const lr_run_opts *o, const char *luadir) {
  lr_state *S = lr__new(luadir, 0);
  if (!S) {
    lr__cli_report(lr__new_error());
    return LR_ERROR;
  }
  lr__cli_apply(S, o);
  printf("=== %s ===\n", c->names[k]);
  fflush(stdout);
  lua_State *L = lr_lua(S);
  lua_createtable(L, 0, 1);  /* arg[0]: the script, as when run alone */
  lua_pushstring(L, c->names[k]);
  lua_rawseti(L, -2, 0);
  lua_setglobal(L, "arg");
  int rc = lr__cli_run_loaded(S, lr__cli_load_found(L, c->paths[k]), 0);
  fflush(stdout);
  if (rc == LR_OK) {  /* carry the trace across states as JSON */
    lua_getglobal(L, "json_encode");
    push_trace_data(L);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) c->json[k] = strdup(lua_tostring(L, -1));
    else lr__cli_report(lr__errtext(L, -1));
    lua_pop(L, 1);
    if (!c->json[k]) rc = LR_ERROR;
  }
  lr_close(S);
  return rc;
}

/* Both timelines on one axis, in a state of their own */
static int draw_both(compare_t *c, const char *luadir) {
  int rc = LR_OK;
  lr_state *S = lr__new(luadir, 0);
  lua_State *L = S ? lr_lua(S) : NULL;
  if (!L) rc = LR_ERROR;
  for (int k = 0; L && k < 2; k++) {
    lua_getglobal(L, "json_decode");
    lua_pushstring(L, c->json[k]);
    lua_call(L, 1, 1);
  }
  if (L) {
    lua_pushstring(L, c->names[0]);
    lua_pushstring(L, c->names[1]);
    if (!call_timeline(L, "compare", 4)) rc = LR_ERROR;
  }
  lr_close(S);
  return rc;
}

int lr__compare(int argc, char **argv, lr_run_opts o, const char *scripts, const char *luadir) {
  compare_t c;
  memset(&c, 0, sizeof c);
  if (compare_args(argc, argv, &o, &c) != 0) return 2;
  if (find_both(&c, scripts) != 0) return 1;
  int rc = LR_OK;
  for (int k = 0; k < 2 && rc == LR_OK; k++) rc = run_one(&c, k, &o, luadir);
  if (rc == LR_OK) rc = draw_both(&c, luadir);
  free(c.json[0]);
  free(c.json[1]);
  lr__curl_preload_join();  /* never exit with a thread inside dlopen */
  return lr__cli_status_exit(rc);
}
