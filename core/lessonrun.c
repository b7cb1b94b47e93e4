/* The lessonrun executable, modelled on lua.c: options, the arg table, a
 * script (looked up in the current folder, then the lessons folder) run as
 * the root task, and the REPL. */
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "curl_api.h"
#include "lr.h"

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

static int readable(const char *p) { return access(p, R_OK) == 0; }

/* The path find_script would return, or NULL; says nothing. */
static const char *locate_script(const char *name, const char *scripts, char *buf, size_t n) {
  if (readable(name)) return name;
  if (!strchr(name, '/') && scripts[0]) {
    snprintf(buf, n, "%s/%s", scripts, name);
    if (readable(buf)) return buf;
  }
  return NULL;
}

/* Returns a path to run, or NULL after reporting where it looked. */
static const char *find_script(const char *name, const char *scripts, char *buf, size_t n) {
  const char *path = locate_script(name, scripts, buf, n);
  if (path) return path;
  if (!strchr(name, '/') && scripts[0]) {
    char looked[PATH_MAX * 2];
    snprintf(looked, sizeof looked, "cannot find script '%s' (looked in ./%s and %s)", name, name, buf);
    report(looked);
    return NULL;
  }
  char looked[PATH_MAX + 64];
  snprintf(looked, sizeof looked, "cannot find script '%s'", name);
  report(looked);
  return NULL;
}

/* A script whose text mentions fetch gets libcurl loading on a thread from
 * the start, as an import at its top would load it, rather than at its first
 * request: dlopen of libcurl and its ~30 libraries takes 15-40 ms, a tenth
 * of the lesson's 0.2 s of fetches.  Anything else (-e, the REPL, scripts
 * that never say fetch) starts as before. */
static void preload_if_fetching(const char *name, const char *scripts) {
  char path[PATH_MAX * 2];
  const char *p = locate_script(name, scripts, path, sizeof path);
  FILE *f = p ? fopen(p, "rb") : NULL;
  if (!f) return;
  static char text[64 * 1024];  /* a lesson's top; the word is near it */
  size_t n = fread(text, 1, sizeof text, f);
  fclose(f);
  for (const char *c = text; n >= 5 && (c = memchr(c, 'f', n - 4 - (size_t)(c - text))); c++)
    if (memcmp(c, "fetch", 5) == 0) {
      lr__curl_preload();
      return;
    }
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

static int dolibrary(lr_state *S, const char *mod) {
  lua_State *L = lr_lua(S);
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    report(lua_tostring(L, -1));
    lua_pop(L, 1);
    return LR_ERROR;
  }
  lua_setglobal(L, mod);
  return LR_OK;
}

static int doscript(lr_state *S, const char *path, char **argv, int argc, int script) {
  lua_State *L = lr_lua(S);
  int st = luaL_loadfile(L, path);
  int nargs = 0;
  if (st == LUA_OK) {
    nargs = argc - script - 1;
    luaL_checkstack(L, nargs + 1, "too many arguments to script");
    for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  }
  return run_loaded(S, st, nargs);
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
  if (o->virtual_time) lr__set_virtual_time(rt);
  if (o->trace) rt->trace = 1;
  if (o->no_warnings) rt->warn_blocking = 0;
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
  report(lua_tostring(L, -1));
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

static int compare(int argc, char **argv, const char *scripts, const char *luadir) {
  run_opts o = {"", 0, 0};
  const char *names[2] = {NULL, NULL};
  int n = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--virtual-time") == 0) o.virtual_time = 1;
    else if (strcmp(argv[i], "--no-blocking-warnings") == 0) o.no_warnings = 1;
    else if (argv[i][0] != '-' && n < 2) names[n++] = argv[i];
    else { fprintf(stderr, "usage: %s compare A.lua B.lua [--virtual-time] [--no-blocking-warnings]\n", progname); return 2; }
  }
  if (n != 2) { fprintf(stderr, "usage: %s compare A.lua B.lua [--virtual-time]\n", progname); return 2; }
  char *json[2] = {NULL, NULL};
  int rc = LR_OK;
  preload_if_fetching(names[0], scripts);
  preload_if_fetching(names[1], scripts);
  for (int k = 0; k < 2 && rc == LR_OK; k++) {
    char buf[PATH_MAX * 2];
    const char *path = find_script(names[k], scripts, buf, sizeof buf);
    if (!path) { rc = LR_ERROR; break; }
    lr_state *S = lr__new(luadir);
    if (!S) { rc = LR_ERROR; break; }
    apply(S, &o);
    printf("=== %s ===\n", names[k]);
    fflush(stdout);
    rc = run_loaded(S, luaL_loadfile(lr_lua(S), path), 0);
    fflush(stdout);
    if (rc == LR_OK) {  /* carry the trace across states as JSON */
      lua_State *L = lr_lua(S);
      lua_getglobal(L, "json_encode");
      push_trace_data(L);
      if (lua_pcall(L, 1, 1, 0) == LUA_OK) json[k] = strdup(lua_tostring(L, -1));
      else report(lua_tostring(L, -1));
      lua_pop(L, 1);
      if (!json[k]) rc = LR_ERROR;
    }
    lr_close(S);
  }
  if (rc == LR_OK) {
    lr_state *S = lr__new(luadir);
    lua_State *L = lr_lua(S);
    for (int k = 0; k < 2; k++) {
      lua_getglobal(L, "json_decode");
      lua_pushstring(L, json[k]);
      lua_call(L, 1, 1);
    }
    lua_pushstring(L, names[0]);
    lua_pushstring(L, names[1]);
    if (!call_timeline(L, "compare", 4)) rc = LR_ERROR;
    lr_close(S);
  }
  free(json[0]);
  free(json[1]);
  lr__curl_preload_join();  /* never exit with a thread inside dlopen */
  return status_exit(rc);
}

int main(int argc, char **argv) {
  /* Big blocks (a table of a million tasks, the sleepers' ring) always in
   * their own mappings, so growing one is an mremap, not a copy into fresh
   * pages (glibc's default threshold climbs to 32 MiB after the first free). */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  int has_e = 0, has_i = 0, has_v = 0, script = 0, use_stdin = 0;
  if (argv[0] && argv[0][0]) progname = "lessonrun";
  if (argc > 1 && strcmp(argv[1], "serve") == 0) return lr__serve_main(argc - 1, argv + 1);
  char scripts[PATH_MAX], luadir[PATH_MAX];
  locate(scripts, luadir, sizeof scripts);
  if (argc > 1 && strcmp(argv[1], "compare") == 0) return compare(argc - 1, argv + 1, scripts, luadir);
  run_opts ro = {NULL, 0, 0};
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') break;
    if (strcmp(a, "--trace") == 0) { ro.trace = ""; continue; }
    if (strncmp(a, "--trace=", 8) == 0) { ro.trace = a + 8; continue; }
    if (strcmp(a, "--virtual-time") == 0) { ro.virtual_time = 1; continue; }
    if (strcmp(a, "--no-blocking-warnings") == 0) { ro.no_warnings = 1; continue; }
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "-") == 0) { use_stdin = 1; break; }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); return 0; }
    if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) { has_v = 1; continue; }
    if (strcmp(a, "-i") == 0) { has_i = has_v = 1; continue; }
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
  if (script && !use_stdin) preload_if_fetching(argv[script], scripts);

  lr_state *S = lr__new(luadir);
  if (!S) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    lr__curl_preload_join();
    return 1;
  }
  lua_State *L = lr_lua(S);
  apply(S, &ro);
  create_arg_table(L, argv, argc, script ? script : argc);
  if (has_v) printf("lessonrun %s (%s, libuv %s)\n", LR_VERSION, LUA_RELEASE, uv_version_string());

  int rc = LR_OK;
  for (int j = 1; j < (script ? script : argc) && rc == LR_OK; j++) {
    const char *a = argv[j];
    if (strcmp(a, "--") == 0) break;
    if (a[0] == '-' && a[1] == '-') continue;
    if (a[0] == '-' && (a[1] == 'e' || a[1] == 'l')) {
      const char *val = a[2] ? a + 2 : argv[++j];
      rc = a[1] == 'e' ? dochunk(S, val) : dolibrary(S, val);
    }
  }
  if (rc == LR_OK && script) {
    if (use_stdin) {  /* "-": stdin is the script, what follows its arguments */
      int st = luaL_loadfile(L, NULL), nargs = 0;
      if (st == LUA_OK) {
        nargs = argc - script - 1;
        luaL_checkstack(L, nargs + 1, "too many arguments to script");
        for (int k = script + 1; k < argc; k++) lua_pushstring(L, argv[k]);
      }
      rc = run_loaded(S, st, nargs);
    } else {
      char buf[PATH_MAX * 2];
      const char *path = find_script(argv[script], scripts, buf, sizeof buf);
      rc = path ? doscript(S, path, argv, argc, script) : LR_ERROR;
    }
  }
  if (ro.trace && rc != LR_INTERRUPTED &&
      !trace_report(S, ro.trace, script ? argv[script] : "(command line)") && rc == LR_OK)
    rc = LR_ERROR;  /* the picture asked for could not be made */
  if (rc == LR_OK || (rc == LR_ERROR && script && has_i)) {  /* lua.c: a failed -e/-l ends it */
    if (has_i) {
      rc = lr__repl(S);
    } else if (!script && !has_e && !has_v) {
      if (isatty(STDIN_FILENO)) {
        printf("lessonrun %s (%s, libuv %s)  Ctrl-D to quit, Ctrl-C cancels\n", LR_VERSION,
               LUA_RELEASE, uv_version_string());
        rc = lr__repl(S);
      } else {
        rc = run_loaded(S, luaL_loadfile(L, NULL), 0);
      }
    }
  }
  lr_close(S);
  lr__curl_preload_join();  /* never exit with a thread inside dlopen */
  return status_exit(rc);
}
