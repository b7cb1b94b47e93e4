/* The lessonrun executable, modelled on lua.c: options, the arg table, a
 * script (looked up in the current folder, then the lessons folder) run as
 * the root task, and the REPL. */
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/curl_api.h"
#include "lr.h"
#include "script.h"

static const char *progname = "lessonrun";

static void usage(FILE *f) {
  fprintf(f,
    "usage: %s [options] [script [args]]\n"
    "Runs a Lua 5.4 script as a task on an event loop, with sleep, spawn, gather...\n"
    "as globals.  With no script it starts a REPL (on a terminal) or reads stdin.\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat'\n"
    "  -i        enter interactive mode after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -v        show version information\n"
    "  --trace[=FILE]  after the run, draw a timeline of the tasks (on stderr), or\n"
    "                  write it to FILE: .json Chrome trace, .svg picture, else text\n"
    "  --virtual-time  simulated clock: sleeps end at once, in order; now() counts\n"
    "                  simulated seconds (fetch is refused)\n"
    "  --no-blocking-warnings  no warning when a blocking call holds up other tasks\n"
    "  -h        show this help\n"
    "  --        stop handling options\n"
    "  -         stop handling options and execute stdin\n"
    "  %s serve [--host H] [--port P]   run the built-in latency server\n"
    "  %s compare A.lua B.lua [options]  run both, compare times and timelines\n"
    "A script name is looked up in the current folder, then among the lessons:\n"
    "  %s sync.lua | async.lua | index.lua | cpu.lua\n", progname, progname, progname, progname);
}

static void report(const char *msg) {
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

static int status_exit(int rc) {
  return rc == LR_OK ? 0 : rc == LR_INTERRUPTED ? 130 : 1;
}

/* ---- where things are -------------------------------------------------- */

static char exe_dir[PATH_MAX];

/* The lessons and Lua sources: the source tree's when run from the build
 * tree (so edits take effect at once), the installed copies otherwise. */
static void locate(char *scripts, char *luadir, size_t n) {
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) { scripts[0] = luadir[0] = '\0'; return; }
  exe[len] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  snprintf(exe_dir, sizeof exe_dir, "%s", exe);
#ifdef LR_BUILD_DIR
  char real_build[PATH_MAX];
  if (realpath(LR_BUILD_DIR, real_build) && strcmp(real_build, exe) == 0) {
    snprintf(scripts, n, "%s", LR_SOURCE_DIR "/scripts");
    snprintf(luadir, n, "%s", LR_SOURCE_DIR "/lua");
    return;
  }
#endif
  snprintf(scripts, n, "%s/../share/lessonrun", exe);
  snprintf(luadir, n, "%s/../share/lua/5.4", exe);
}

/* A script whose code names fetch (a constant of the loaded chunk: not a
 * comment) gets libcurl loading on a thread from the start, as an import at
 * its top would load it, rather than at its first request: dlopen of
 * libcurl and its ~30 libraries takes 15-40 ms, a tenth of the lesson's
 * 0.2 s of fetches.  Anything else (-e, the REPL, scripts that never name
 * fetch) starts as before. */
static void preload_if_fetching(lua_State *L) {
  if (lr__function_mentions(L, -1, "fetch")) lr__curl_preload();
}

/* Finds NAME and loads it (the chunk, or the error, pushed); lua5.4's
 * luaL_loadfile reads it, once. */
static int load_script(lua_State *L, const char *name, const char *scripts) {
  char buf[PATH_MAX + 16], err[PATH_MAX * 3];
  const char *path = lr__script_find(name, scripts, buf, sizeof buf, err, sizeof err);
  if (!path) {
    lua_pushstring(L, err);
    return LUA_ERRFILE;
  }
  int st = luaL_loadfilex(L, path, NULL);
  if (st == LUA_OK) preload_if_fetching(L);
  return st;
}

/* ---- running things ---------------------------------------------------- */

static int run_loaded(lr_state *S, int status, int nargs) {
  lua_State *L = lr_lua(S);
  if (status != LUA_OK) {
    lua_pop(L, nargs);
    report(lua_tostring(L, -1));
    lua_pop(L, 1);
    return LR_ERROR;
  }
  int rc = lr__exec(S, nargs);
  if (rc != LR_OK) report(lr_errmsg(S));
  return rc;
}

static int dochunk(lr_state *S, const char *chunk) {
  lua_State *L = lr_lua(S);
  return run_loaded(S, luaL_loadbuffer(L, chunk, strlen(chunk), "=(command line)"), 0);
}

/* -l mod, or -l g=mod as lua5.4 takes it: g = require "mod" */
static int dolibrary(lr_state *S, const char *opt) {
  lua_State *L = lr_lua(S);
  const char *eq = strchr(opt, '='), *mod = eq ? eq + 1 : opt;
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    report(lr__errtext(L, -1));
    lua_pop(L, 1);
    return LR_ERROR;
  }
  if (eq) lua_pushlstring(L, opt, (size_t)(eq - opt));
  else lua_pushstring(L, opt);
  lua_insert(L, -2);
  lua_setglobal(L, lua_tostring(L, -2));
  lua_pop(L, 1);
  return LR_OK;
}

/* The script's ... are arg[1..#arg] when it starts, as lua5.4 takes them
 * (so -e can change them); st is its load status. */
static int run_script(lr_state *S, int st) {
  lua_State *L = lr_lua(S);
  int nargs = 0;
  if (st == LUA_OK) {
    if (lua_getglobal(L, "arg") != LUA_TTABLE) {
      lua_pop(L, 2);
      report("'arg' is not a table");
      return LR_ERROR;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n < 0 || n > 1000000 || !lua_checkstack(L, (int)n + 3)) {
      lua_pop(L, 2);
      report("too many arguments to script");
      return LR_ERROR;
    }
    for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(L, -1 - (int)(i - 1), i);
    lua_remove(L, -(int)n - 1);
    nargs = (int)n;
  }
  return run_loaded(S, st, nargs);
}

/* LUA_INIT_5_4, else LUA_INIT: a chunk, or @file, run before anything else
 * (unless -E), as lua5.4 does. */
static int doinit(lr_state *S) {
  const char *name = "=LUA_INIT_5_4", *init = getenv(name + 1);
  if (!init) init = getenv((name = "=LUA_INIT") + 1);
  if (!init) return LR_OK;
  lua_State *L = lr_lua(S);
  if (init[0] == '@') return run_loaded(S, luaL_loadfilex(L, init + 1, NULL), 0);
  return run_loaded(S, luaL_loadbufferx(L, init, strlen(init), name, NULL), 0);
}

static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc > script ? argc - script : 0, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

int lr__repl(lr_state *S);

/* ---- tracing and compare mode --------------------------------------------- */

typedef struct {
  const char *trace;  /* NULL: off; "": chart on stderr; else a file */
  int virtual_time;
  int no_warnings;
} run_opts;

static void apply(lr_state *S, const run_opts *o) {
  lr_runtime *rt = lr__state_runtime(S);
  if (o->virtual_time) lr__host_set_virtual_time(rt);
  if (o->trace) lr__host_set_trace(rt, 1);
  if (o->no_warnings) lr__host_set_blocking_warnings(rt, 0);
}

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
  report(lr__errtext(L, -1));
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

static int trace_report(lr_state *S, const char *dest, const char *title) {
  lua_State *L = lr_lua(S);
  push_trace_data(L);
  lua_pushstring(L, dest);
  lua_pushstring(L, title);
  int ok = call_timeline(L, "report", 3);
  lua_pop(L, 1);
  return ok;
}

/* lessonrun [--virtual-time] [--no-blocking-warnings] compare A B [the same] */
static int compare(int argc, char **argv, run_opts o, const char *scripts, const char *luadir) {
  const char *names[2] = {NULL, NULL};
  int n = 0;
  o.trace = "";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--virtual-time") == 0) o.virtual_time = 1;
    else if (strcmp(argv[i], "--no-blocking-warnings") == 0) o.no_warnings = 1;
    else if (strcmp(argv[i], "--trace") == 0) continue;  /* compare always draws */
    else if (argv[i][0] != '-' && n < 2) names[n++] = argv[i];
    else n = 3;
  }
  if (n != 2) {
    fprintf(stderr, "usage: %s [--virtual-time] [--no-blocking-warnings] compare A.lua B.lua\n", progname);
    return 2;
  }
  for (int k = 0; k < 2; k++) {  /* both there, before either runs */
    char buf[PATH_MAX + 16], err[PATH_MAX * 3];
    if (!lr__script_find(names[k], scripts, buf, sizeof buf, err, sizeof err)) {
      report(err);
      return 1;
    }
  }
  char *json[2] = {NULL, NULL};
  int rc = LR_OK;
  for (int k = 0; k < 2 && rc == LR_OK; k++) {
    lr_state *S = lr__new(luadir, 0);
    if (!S) {
      report(lr__new_error());
      rc = LR_ERROR;
      break;
    }
    apply(S, &o);
    printf("=== %s ===\n", names[k]);
    fflush(stdout);
    lua_State *L = lr_lua(S);
    lua_createtable(L, 0, 1);  /* arg[0]: the script, as when run alone */
    lua_pushstring(L, names[k]);
    lua_rawseti(L, -2, 0);
    lua_setglobal(L, "arg");
    rc = run_loaded(S, load_script(L, names[k], scripts), 0);
    fflush(stdout);
    if (rc == LR_OK) {  /* carry the trace across states as JSON */
      lua_getglobal(L, "json_encode");
      push_trace_data(L);
      if (lua_pcall(L, 1, 1, 0) == LUA_OK) json[k] = strdup(lua_tostring(L, -1));
      else report(lr__errtext(L, -1));
      lua_pop(L, 1);
      if (!json[k]) rc = LR_ERROR;
    }
    lr_close(S);
  }
  if (rc == LR_OK) {
    lr_state *S = lr__new(luadir, 0);
    lua_State *L = S ? lr_lua(S) : NULL;
    if (!L) rc = LR_ERROR;
    for (int k = 0; L && k < 2; k++) {
      lua_getglobal(L, "json_decode");
      lua_pushstring(L, json[k]);
      lua_call(L, 1, 1);
    }
    if (L) {
      lua_pushstring(L, names[0]);
      lua_pushstring(L, names[1]);
      if (!call_timeline(L, "compare", 4)) rc = LR_ERROR;
    }
    lr_close(S);
  }
  free(json[0]);
  free(json[1]);
  lr__curl_preload_join();  /* never exit with a thread inside dlopen */
  return status_exit(rc);
}

/* What main hands to prun. */
typedef struct {
  lr_state *S;
  const run_opts *ro;
  char **argv;
  int argc, script, use_stdin, has_E, has_e, has_i, has_v, rc;
  const char *scripts;  /* the lessons folder */
} main_run;

/* The part of main that uses the Lua state, protected as lua.c's pmain: an
 * allocation that fails outside any task is an error, never a PANIC. */
static int prun(lua_State *L) {
  main_run *m = lua_touserdata(L, 1);
  lr_state *S = m->S;
  char **argv = m->argv;
  int argc = m->argc, script = m->script;
  apply(S, m->ro);
  create_arg_table(L, argv, argc, script);  /* no script: arg[0] is the program, as in lua.c */

  int rc = m->has_E ? LR_OK : doinit(S);
  for (int j = 1; j < (script ? script : argc) && rc == LR_OK; j++) {
    const char *a = argv[j];
    if (strcmp(a, "--") == 0) break;
    if (a[0] == '-' && a[1] == '-') continue;
    if (strcmp(a, "-W") == 0) lua_warning(L, "@on", 0);
    if (a[0] == '-' && (a[1] == 'e' || a[1] == 'l')) {
      const char *val = a[2] ? a + 2 : argv[++j];
      rc = a[1] == 'e' ? dochunk(S, val) : dolibrary(S, val);
    }
  }
  if (rc == LR_OK && script) {
    if (m->use_stdin) {  /* "-": stdin is the script, what follows its arguments */
      rc = run_script(S, luaL_loadfile(L, NULL));
    } else {  /* read now, after LUA_INIT, -e and -l, as lua5.4 reads it */
      rc = run_script(S, load_script(L, argv[script], m->scripts));
    }
  }
  if (m->ro->trace && rc != LR_INTERRUPTED &&
      !trace_report(S, m->ro->trace, script ? argv[script] : "(command line)") && rc == LR_OK)
    rc = LR_ERROR;  /* the picture asked for could not be made */
  if (rc == LR_OK) {  /* as lua.c: a failed LUA_INIT, -e, -l or script ends it */
    if (m->has_i) {
      rc = lr__repl(S);
    } else if (!script && !m->has_e && !m->has_v) {
      if (isatty(STDIN_FILENO)) {
        printf("lessonrun %s (%s, libuv %s)  Ctrl-D to quit, Ctrl-C cancels\n", LR_VERSION,
               LUA_RELEASE, uv_version_string());
        rc = lr__repl(S);
      } else {
        rc = run_loaded(S, luaL_loadfile(L, NULL), 0);
      }
    }
  }
  m->rc = rc;
  return 0;
}

/* lua5.4's options, then lessonrun's long ones; a subcommand (serve,
 * compare) may follow the long options that apply to it. */
int main(int argc, char **argv) {
  /* Big blocks (a table of a million tasks, the sleepers' ring) always in
   * their own mappings, so growing one is an mremap, not a copy into fresh
   * pages (glibc's default threshold climbs to 32 MiB after the first free). */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  lr__std_fds_open();
  int has_e = 0, has_i = 0, has_v = 0, has_E = 0, lua_opts = 0, script = 0, use_stdin = 0;
  char scripts[PATH_MAX], luadir[PATH_MAX];
  locate(scripts, luadir, sizeof scripts);
  run_opts ro = {NULL, 0, 0};
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      int serve = strcmp(a, "serve") == 0;
      if (!serve && strcmp(a, "compare") != 0) break;
      if (lua_opts) break;  /* after -e/-l/-i... it is a script's name, as in lua5.4 */
      if (serve && i > 1) {
        fprintf(stderr, "%s: '%s' does not apply to serve\n", progname, argv[1]);
        return 1;
      }
      if (!serve && ro.trace && ro.trace[0]) {
        fprintf(stderr, "%s: compare draws its timelines on stderr: '--trace=%s' does not apply\n", progname,
                ro.trace);
        return 1;
      }
      return serve ? lr__serve_main(argc - i, argv + i) : compare(argc - i, argv + i, ro, scripts, luadir);
    }
    if (strcmp(a, "--trace") == 0) { ro.trace = ""; continue; }
    if (strncmp(a, "--trace=", 8) == 0) { ro.trace = a + 8; continue; }
    if (strcmp(a, "--virtual-time") == 0) { ro.virtual_time = 1; continue; }
    if (strcmp(a, "--no-blocking-warnings") == 0) { ro.no_warnings = 1; continue; }
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "-") == 0) { use_stdin = 1; break; }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); return 0; }
    if (strcmp(a, "--version") == 0) { has_v = 1; continue; }
    lua_opts = 1;
    if (strcmp(a, "-v") == 0) { has_v = 1; continue; }
    if (strcmp(a, "-i") == 0) { has_i = has_v = 1; continue; }
    if (strcmp(a, "-E") == 0) { has_E = 1; continue; }
    if (strcmp(a, "-W") == 0) continue;  /* in order, with -e and -l, below */
    if (strncmp(a, "-e", 2) == 0 || strncmp(a, "-l", 2) == 0) {
      has_e |= a[1] == 'e';
      if (a[2] == '\0' && (++i >= argc || argv[i][0] == '-')) {
        fprintf(stderr, "%s: '%s' needs argument\n", progname, a);
        usage(stderr);
        return 1;
      }
      continue;
    }
    fprintf(stderr, "%s: unrecognized option '%s'\n", progname, a);
    usage(stderr);
    return 1;
  }
  script = (i < argc && !use_stdin) ? i : 0;
  if (use_stdin) script = i;  /* '-' is the script: stdin */
  if (has_v) printf("lessonrun %s (%s, libuv %s)\n", LR_VERSION, LUA_RELEASE, uv_version_string());
  fflush(stdout);
  lr_state *S = lr__new(luadir, has_E);
  if (!S) {
    const char *why = lr__new_error();
    if (strncmp(why, "lessonrun: ", 11) == 0) why += 11;
    fprintf(stderr, "%s: cannot start: %s\n", progname, why);
    lr__curl_preload_join();
    return 1;
  }
  main_run m = {S, &ro, argv, argc, script, use_stdin, has_E, has_e, has_i, has_v, LR_ERROR, scripts};
  lua_State *L = lr_lua(S);
  lua_pushcfunction(L, prun);
  lua_pushlightuserdata(L, &m);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {  /* out of memory */
    report(lr__errtext(L, -1));
    m.rc = LR_ERROR;
  }
  int rc = m.rc;
  lr_close(S);
  lr__curl_preload_join();  /* never exit with a thread inside dlopen */
  return status_exit(rc);
}
