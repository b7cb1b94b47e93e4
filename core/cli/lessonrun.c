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
#include "cli.h"
#include "script.h"

static const char *progname = LR_PROGNAME;

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

/* Finds NAME and loads it (the chunk, or the error, pushed) */
static int load_script(lua_State *L, const char *name, const char *scripts) {
  char buf[PATH_MAX + 16], err[PATH_MAX * 3];
  const char *path = lr__script_find(name, scripts, buf, sizeof buf, err, sizeof err);
  if (!path) {
    lua_pushstring(L, err);
    return LUA_ERRFILE;
  }
  return lr__cli_load_found(L, path);
}

/* ---- running things ---------------------------------------------------- */

static int dochunk(lr_state *S, const char *chunk) {
  lua_State *L = lr_lua(S);
  return lr__cli_run_loaded(S, luaL_loadbuffer(L, chunk, strlen(chunk), "=(command line)"), 0);
}

/* -l mod, or -l g=mod as lua5.4 takes it: g = require "mod" */
static int dolibrary(lr_state *S, const char *opt) {
  lua_State *L = lr_lua(S);
  const char *eq = strchr(opt, '='), *mod = eq ? eq + 1 : opt;
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lr__cli_report(lr__errtext(L, -1));
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
      lr__cli_report("'arg' is not a table");
      return LR_ERROR;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n < 0 || n > 1000000 || !lua_checkstack(L, (int)n + 3)) {
      lua_pop(L, 2);
      lr__cli_report("too many arguments to script");
      return LR_ERROR;
    }
    for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(L, -1 - (int)(i - 1), i);
    lua_remove(L, -(int)n - 1);
    nargs = (int)n;
  }
  return lr__cli_run_loaded(S, st, nargs);
}

/* LUA_INIT_5_4, else LUA_INIT: a chunk, or @file, run before anything else
 * (unless -E), as lua5.4 does. */
static int doinit(lr_state *S) {
  const char *name = "=LUA_INIT_5_4", *init = getenv(name + 1);
  if (!init) init = getenv((name = "=LUA_INIT") + 1);
  if (!init) return LR_OK;
  lua_State *L = lr_lua(S);
  if (init[0] == '@') return lr__cli_run_loaded(S, luaL_loadfilex(L, init + 1, NULL), 0);
  return lr__cli_run_loaded(S, luaL_loadbufferx(L, init, strlen(init), name, NULL), 0);
}

static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc > script ? argc - script : 0, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* ---- the command line, collected, then run (as lua.c) -------------------- */

/* What the options asked for; argv itself is kept, and -e, -l, -W are run
 * from it in order. */
typedef struct {
  lr_run_opts ro;
  int has_e, has_i, has_v, has_E;
  int lua_opts;   /* one of lua5.4's options was given */
  int script;     /* argv index of the script (of "-": stdin), 0 if none */
  int use_stdin;
  int sub;        /* argv index of serve or compare, 0 if none */
} cmdline;

#define ARGS_RUN (-1)  /* collect_args: go on and run them */

/* lua5.4's options, then lessonrun's long ones; a subcommand (serve,
 * compare) may follow the long options that apply to it.  Returns ARGS_RUN,
 * or the exit status when the command line was done with (-h, a mistake). */
static int collect_args(int argc, char **argv, cmdline *c) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      /* after -e/-l/-i... it is a script's name, as in lua5.4 */
      if (!c->lua_opts && (strcmp(a, "serve") == 0 || strcmp(a, "compare") == 0)) {
        c->sub = i;
        return ARGS_RUN;
      }
      break;
    }
    if (strcmp(a, "--trace") == 0) { c->ro.trace = ""; continue; }
    if (strncmp(a, "--trace=", 8) == 0) { c->ro.trace = a + 8; continue; }
    if (strcmp(a, "--virtual-time") == 0) { c->ro.virtual_time = 1; continue; }
    if (strcmp(a, "--no-blocking-warnings") == 0) { c->ro.no_warnings = 1; continue; }
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "-") == 0) { c->use_stdin = 1; break; }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); return 0; }
    if (strcmp(a, "--version") == 0) { c->has_v = 1; continue; }
    c->lua_opts = 1;
    if (strcmp(a, "-v") == 0) { c->has_v = 1; continue; }
    if (strcmp(a, "-i") == 0) { c->has_i = c->has_v = 1; continue; }
    if (strcmp(a, "-E") == 0) { c->has_E = 1; continue; }
    if (strcmp(a, "-W") == 0) continue;  /* in order, with -e and -l: run_options */
    if (strncmp(a, "-e", 2) == 0 || strncmp(a, "-l", 2) == 0) {
      c->has_e |= a[1] == 'e';
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
  if (i < argc || c->use_stdin) c->script = i;  /* with "-", stdin is the script */
  return ARGS_RUN;
}

/* lessonrun [options] serve|compare ...: the options it may follow */
static int run_subcommand(int argc, char **argv, const cmdline *c, const char *scripts,
                          const char *luadir) {
  int i = c->sub, serve = strcmp(argv[i], "serve") == 0;
  if (serve && i > 1) {
    fprintf(stderr, "%s: '%s' does not apply to serve\n", progname, argv[1]);
    return 1;
  }
  if (!serve && c->ro.trace && c->ro.trace[0]) {
    fprintf(stderr, "%s: compare draws its timelines on stderr: '--trace=%s' does not apply\n", progname,
            c->ro.trace);
    return 1;
  }
  return serve ? lr__serve_main(argc - i, argv + i) : lr__compare(argc - i, argv + i, c->ro, scripts, luadir);
}

/* What run hands to prun. */
typedef struct {
  lr_state *S;
  const cmdline *c;
  char **argv;
  int argc, rc;
  const char *scripts;  /* the lessons folder */
} main_run;

/* -W, -e and -l in the order given, before the script; stops at the first
 * failure, as lua.c */
static int run_options(lr_state *S, char **argv, int end) {
  int rc = LR_OK;
  for (int j = 1; j < end && rc == LR_OK; j++) {
    const char *a = argv[j];
    if (strcmp(a, "--") == 0) break;
    if (a[0] == '-' && a[1] == '-') continue;
    if (strcmp(a, "-W") == 0) lua_warning(lr_lua(S), "@on", 0);
    if (a[0] == '-' && (a[1] == 'e' || a[1] == 'l')) {
      const char *val = a[2] ? a + 2 : argv[++j];
      rc = a[1] == 'e' ? dochunk(S, val) : dolibrary(S, val);
    }
  }
  return rc;
}

/* With no script: -i, the REPL on a terminal, else stdin as a script */
static int run_interactive(lr_state *S, const cmdline *c) {
  if (c->has_i) return lr__repl(S);
  if (c->script || c->has_e || c->has_v) return LR_OK;
  if (!isatty(STDIN_FILENO)) return lr__cli_run_loaded(S, luaL_loadfile(lr_lua(S), NULL), 0);
  printf("lessonrun %s (%s, libuv %s)  Ctrl-D to quit, Ctrl-C cancels\n", LR_VERSION, LUA_RELEASE,
         uv_version_string());
  return lr__repl(S);
}

/* The part of main that uses the Lua state, protected as lua.c's pmain: an
 * allocation that fails outside any task is an error, never a PANIC. */
static int prun(lua_State *L) {
  main_run *m = lua_touserdata(L, 1);
  lr_state *S = m->S;
  const cmdline *c = m->c;
  char **argv = m->argv;
  int script = c->script;
  lr__cli_apply(S, &c->ro);
  create_arg_table(L, argv, m->argc, script);  /* no script: arg[0] is the program, as in lua.c */
  int rc = c->has_E ? LR_OK : doinit(S);
  if (rc == LR_OK) rc = run_options(S, argv, script ? script : m->argc);
  if (rc == LR_OK && script) {
    if (c->use_stdin) {  /* "-": stdin is the script, what follows its arguments */
      rc = run_script(S, luaL_loadfile(L, NULL));
    } else {  /* read now, after LUA_INIT, -e and -l, as lua5.4 reads it */
      rc = run_script(S, load_script(L, argv[script], m->scripts));
    }
  }
  if (c->ro.trace && rc != LR_INTERRUPTED &&
      !lr__cli_trace_report(S, c->ro.trace, script ? argv[script] : "(command line)") && rc == LR_OK)
    rc = LR_ERROR;  /* the picture asked for could not be made */
  if (rc == LR_OK) rc = run_interactive(S, c);  /* as lua.c: a failed LUA_INIT, -e, -l or script ends it */
  m->rc = rc;
  return 0;
}

/* A state for the command line, prun in it, then the exit status */
static int run(int argc, char **argv, const cmdline *c, const char *scripts, const char *luadir) {
  if (c->has_v) printf("lessonrun %s (%s, libuv %s)\n", LR_VERSION, LUA_RELEASE, uv_version_string());
  fflush(stdout);
  lr_state *S = lr__new(luadir, c->has_E);
  if (!S) {
    const char *why = lr__new_error();
    if (strncmp(why, "lessonrun: ", 11) == 0) why += 11;
    fprintf(stderr, "%s: cannot start: %s\n", progname, why);
    lr__curl_preload_join();
    return 1;
  }
  main_run m = {S, c, argv, argc, LR_ERROR, scripts};
  lua_State *L = lr_lua(S);
  lua_pushcfunction(L, prun);
  lua_pushlightuserdata(L, &m);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {  /* out of memory */
    lr__cli_report(lr__errtext(L, -1));
    m.rc = LR_ERROR;
  }
  int rc = m.rc;
  lr_close(S);
  lr__curl_preload_join();  /* never exit with a thread inside dlopen */
  return lr__cli_status_exit(rc);
}

int main(int argc, char **argv) {
  /* Big blocks (a table of a million tasks, the sleepers' ring) always in
   * their own mappings, so growing one is an mremap, not a copy into fresh
   * pages (glibc's default threshold climbs to 32 MiB after the first free). */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  lr__std_fds_open();
  char scripts[PATH_MAX], luadir[PATH_MAX];
  locate(scripts, luadir, sizeof scripts);
  cmdline c;
  memset(&c, 0, sizeof c);
  int st = collect_args(argc, argv, &c);
  if (st != ARGS_RUN) return st;
  if (c.sub) return run_subcommand(argc, argv, &c, scripts, luadir);
  return run(argc, argv, &c, scripts, luadir);
}
