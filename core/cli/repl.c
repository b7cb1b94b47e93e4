/* The REPL.  GNU readline in callback mode, fed by a uv_poll_t on stdin, so
 * the loop keeps running (background tasks go on) while you type.  Each
 * entry runs as a task: sleep and gather work at the prompt.  As in lua.c,
 * "return " is tried first so expressions print, and an incomplete chunk
 * continues on the next line.  Ctrl-C clears the line at the prompt and
 * cancels the entry while one runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "rl.h"

typedef struct {
  lr_state *S;
  lr_runtime *rt;
  lua_State *L;
  int tty;
  uv_poll_t poll;
  int polling;
  char *line;        /* a line handed over by readline */
  int have_line;
  int eof;
  int clear;         /* Ctrl-C at the prompt */
  char *chunk;       /* incomplete chunk so far */
  lr_task *entry;
  int entry_ref;
  int printing;      /* the entry is print(results of the previous one) */
  lr_task *next;     /* a follow-up entry pfinish started */
  int next_ref;
  char histfile[4096];
} repl_t;

static repl_t *the_repl;  /* readline's line handler takes no user data */

/* _PROMPT / _PROMPT2 when they are strings, as lua.c (which also takes a
 * __tostring; calling one here, outside any task, is not worth it) */
static int pprompt(lua_State *L) {
  lua_getglobal(L, lua_touserdata(L, 1));
  return 1;
}

static const char *prompt(repl_t *r) {
  static char text[256];
  const char *p = r->chunk ? ">> " : "> ";
  lua_pushcfunction(r->L, pprompt);  /* a global's __index may raise, and names allocate */
  lua_pushlightuserdata(r->L, (void *)(r->chunk ? "_PROMPT2" : "_PROMPT"));
  if (lua_pcall(r->L, 1, 1, 0) == LUA_OK && lua_type(r->L, -1) == LUA_TSTRING) {
    snprintf(text, sizeof text, "%s", lua_tostring(r->L, -1));
    p = text;
  }
  lua_pop(r->L, 1);
  return p;
}

static void on_line(char *line) {
  repl_t *r = the_repl;
  r->line = line;
  r->have_line = 1;
  if (!line) r->eof = 1;
  lr__rl.rl_callback_handler_remove();
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)h; (void)events;
  if (status < 0) { the_repl->eof = 1; return; }
  lr__rl.rl_callback_read_char();
}

static void start_input(repl_t *r) {
  if (!r->tty) return;
  lr__rl.rl_callback_handler_install(prompt(r), on_line);
  if (!r->polling) {
    uv_poll_start(&r->poll, UV_READABLE, on_readable);
    r->polling = 1;
  }
}

static void report(repl_t *r, const char *msg);

/* Runs f(r, arg) protected; 0, or -1 with the error reported. */
static int protect(repl_t *r, lua_CFunction f, void *arg, int *result) {
  lua_State *L = r->L;
  int top = lua_gettop(L);
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, r);
  lua_pushlightuserdata(L, arg);
  int st = lua_pcall(L, 2, 1, 0);
  if (st != LUA_OK) report(r, lr__errtext(L, -1));
  else if (result) *result = (int)lua_tointeger(L, -1);
  lua_settop(L, top);
  return st == LUA_OK ? 0 : -1;
}

/* A step of the runtime's driver (LR_STEP_*), its error reported */
static void drive(repl_t *r, int what) {
  if (lr__host_step(r->rt, what, r->entry) != LUA_OK) {
    report(r, lr__errtext(r->L, -1));
    lua_pop(r->L, 1);
  }
}

/* Background tasks may print while the prompt is shown: take the prompt and
 * the half-typed line off the screen while they run, then draw them again
 * below what they printed (as Node's REPL does). */
static void run_background(repl_t *r) {
  if (!r->tty || !r->polling) {
    drive(r, LR_STEP_READY);
    return;
  }
  int point = *lr__rl.rl_point;
  char *typed = lr__rl.rl_copy_text(0, *lr__rl.rl_end);
  lr__rl.rl_save_prompt();
  lr__rl.rl_replace_line("", 0);
  lr__rl.rl_redisplay();
  drive(r, LR_STEP_READY);
  fflush(stdout);
  fflush(stderr);
  lr__rl.rl_restore_prompt();
  lr__rl.rl_replace_line(typed ? typed : "", 0);
  *lr__rl.rl_point = point <= *lr__rl.rl_end ? point : *lr__rl.rl_end;
  lr__rl.rl_redisplay();
  free(typed);
}

static void stop_input(repl_t *r) {
  if (r->polling) {
    uv_poll_stop(&r->poll);
    r->polling = 0;
  }
}

/* Runs inside the loop (from the SIGINT async callback): no Lua here. */
static void on_sigint(lr_runtime *rt, void *ud) {
  repl_t *r = ud;
  if (r->entry && !lr__finished(r->entry)) lr__host_interrupt(rt, r->entry);
  else r->clear = 1;
}

/* as lua.c's REPL: no program name before an entry's error */
static void report(repl_t *r, const char *msg) {
  (void)r;
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* Compile the chunk: "return <line>" first, then as a statement.  Returns
 * 1 compiled (function pushed), 0 incomplete, -1 syntax error reported. */
static int compile(repl_t *r, const char *code) {
  lua_State *L = r->L;
  if (!r->chunk) {
    const char *ret = lua_pushfstring(L, "return %s;", code);
    int st = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    lua_remove(L, -2);
    if (st == LUA_OK) return 1;
    lua_pop(L, 1);
  }
  int st = luaL_loadbuffer(L, code, strlen(code), "=stdin");
  if (st == LUA_OK) return 1;
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  if (st == LUA_ERRSYNTAX && len >= 5 && strcmp(msg + len - 5, "<eof>") == 0) {
    lua_pop(L, 1);
    return 0;
  }
  report(r, msg);
  lua_pop(L, 1);
  return -1;
}

/* Starts the function at first, with the nargs values above it, as the next
 * entry (r->next, r->next_ref).  Call it protected: it allocates. */
static void spawn_next(repl_t *r, int first, int nargs) {
  lua_State *L = r->L;
  lr_task *t = lr__spawn(L, r->rt, first, nargs);
  r->next_ref = lr__ref(L, r->rt);
  r->next = t;  /* only once it has its reference */
}

/* lua_CFunction(r, code): compiles code and starts it as the next entry;
 * returns compile()'s result.  Protected, as everything the REPL asks of
 * Lua is (lua.c runs all of it under pmain): a memory error is reported. */
static int pline(lua_State *L) {
  repl_t *r = lua_touserdata(L, 1);
  int c = compile(r, lua_touserdata(L, 2));
  if (c == 1) spawn_next(r, lua_gettop(L), 0);
  lua_pushinteger(L, c);
  return 1;
}

static void start_entry(repl_t *r) {
  r->entry = r->next;
  r->entry_ref = r->next_ref;
  r->next = NULL;
  lr__host_root_begin(r->rt, r->entry);
}

static void handle_line(repl_t *r, char *line) {
  char *code;
  if (r->chunk) {
    size_t n = strlen(r->chunk) + strlen(line) + 2;
    code = malloc(n);
    if (!code) { free(line); return; }
    snprintf(code, n, "%s\n%s", r->chunk, line);
  } else if (line[0] == '=') {  /* lua.c: "=expr" is "return expr" */
    size_t n = strlen(line) + 7;
    code = malloc(n);
    if (code) snprintf(code, n, "return %s", line + 1);
  } else {
    code = strdup(line);
  }
  free(line);
  if (!code) return;
  int c = -1;
  r->next = NULL;
  if (protect(r, pline, code, &c) != 0) c = -1;
  if (c == 0) {
    free(r->chunk);
    r->chunk = code;
    return;
  }
  if (code[0] && r->tty) lr__rl.add_history(code);
  free(r->chunk);
  r->chunk = NULL;
  free(code);
  if (r->next) start_entry(r);
}

/* lua_CFunction(r): reports how the entry ended.  Its results are printed
 * by a follow-up entry, print(...), so that a __tostring runs in a task like
 * code typed at the prompt: its error is reported as the entry's, and Ctrl-C
 * stops one that never returns. */
static int pfinish(lua_State *L) {
  repl_t *r = lua_touserdata(L, 1);
  lr_task *t = r->entry;
  lua_settop(L, 0);
  if (t->state == LR_DONE) {
    if (r->printing) return 0;
    lua_getglobal(L, "print");
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->entry_ref);
    int n = lr__push_results(L, t, 2, 0);
    lua_remove(L, 2);
    if (n > 0) spawn_next(r, 1, n);
  } else if (t->state == LR_CANCELLED) {
    if (lr__host_interrupted(r->rt, t)) {
      fputs("\n", stderr);
      report(r, "interrupted");
    } else {
      report(r, "cancelled");
    }
  } else {
    lr__push_error(L, t);
    const char *msg = lr__errtext(L, -1);
    if (r->printing) msg = lua_pushfstring(L, "error calling 'print' (%s)", msg);
    lr__push_traceback(L, t);
    report(r, lua_pushfstring(L, "%s\n%s", msg, lua_tostring(L, -1)));
  }
  return 0;
}

/* The entry has ended: report it, then either its results' print runs as
 * the next entry (returns 1) or the prompt comes back (0). */
static int entry_done(repl_t *r) {
  r->next = NULL;
  protect(r, pfinish, NULL, NULL);
  lr__unref(r->L, r->rt, r->entry_ref);
  if (r->next) {
    start_entry(r);
    r->printing = 1;
    return 1;
  }
  r->entry = NULL;
  r->printing = 0;
  lr__host_root_end(r->rt);
  fflush(stdout);
  return 0;
}

/* Without a terminal: plain lines from stdin, with the prompt and the line
 * echoed after it, as lua5.4's readline shows them; a newline at the end. */
static char *read_plain(repl_t *r) {
  fputs(prompt(r), stdout);
  fflush(stdout);
  char *buf = NULL;
  size_t cap = 0;
  ssize_t n = getline(&buf, &cap, stdin);
  if (n < 0) {
    free(buf);
    fputs("\n", stdout);
    fflush(stdout);
    return NULL;
  }
  if (n > 0 && buf[n - 1] == '\n') buf[n - 1] = '\0';
  fputs(buf, stdout);
  fputs("\n", stdout);
  fflush(stdout);
  return buf;
}

static void history_open(repl_t *r) {
  const char *h = getenv("LESSONRUN_HISTORY");
  const char *home = getenv("HOME");
  r->histfile[0] = '\0';
  if (h) snprintf(r->histfile, sizeof r->histfile, "%s", h);
  else if (home) snprintf(r->histfile, sizeof r->histfile, "%s/.lessonrun_history", home);
  lr__rl.using_history();
  lr__rl.stifle_history(1000);
  if (r->histfile[0]) lr__rl.read_history(r->histfile);
}

/* Ctrl-C is ours from here; on a terminal, readline and the poll on stdin */
static void repl_open(repl_t *r, lr_state *S) {
  memset(r, 0, sizeof *r);
  r->S = S;
  r->rt = lr__state_runtime(S);
  r->L = lr_lua(S);
  r->tty = isatty(STDIN_FILENO);
  the_repl = r;
  lr__host_begin(r->rt, on_sigint, r);
  if (r->tty && lr__rl_load() != 0) r->tty = 0;
  if (r->tty) {
    *lr__rl.rl_catch_signals = 0;  /* Ctrl-C is ours: clear the line or cancel */
    *lr__rl.rl_readline_name = "lessonrun";
    lr__complete_setup(r->L);
    history_open(r);
    if (lr__host_poll_init(r->rt, &r->poll, STDIN_FILENO) != 0) r->tty = 0;
  }
  start_input(r);
}

static void repl_close(repl_t *r) {
  if (r->tty) {
    lr__rl.rl_callback_handler_remove();
    stop_input(r);
    lr__host_close(r->rt, (uv_handle_t *)&r->poll);
    if (r->histfile[0]) lr__rl.write_history(r->histfile);
  }
  free(r->chunk);
  lr__host_end(r->rt);
  the_repl = NULL;
}

/* Ctrl-C at the prompt: the line (and a chunk begun) go */
static void clear_input(repl_t *r) {
  r->clear = 0;
  lr__host_sigint_forget(r->rt);
  lr__rl.rl_replace_line("", 0);
  lr__rl.rl_callback_handler_remove();
  fputs("\n", stdout);
  free(r->chunk);
  r->chunk = NULL;
  start_input(r);
}

/* One turn of the REPL: the entry running, a line read, or the loop run
 * once while waiting for one.  Returns 1 when the input has ended. */
static int turn(repl_t *r) {
  if (r->entry) {
    if (!lr__finished(r->entry)) drive(r, LR_STEP_READY | LR_STEP_POLL);
    else if (!entry_done(r)) start_input(r);
    return 0;
  }
  if (!r->tty) {
    char *line = read_plain(r);
    if (!line) return 1;
    handle_line(r, line);
    return 0;
  }
  if (r->clear) {
    clear_input(r);
    return 0;
  }
  if (r->have_line) {
    r->have_line = 0;
    if (r->eof) {
      fputs("\n", stdout);
      return 1;
    }
    char *line = r->line;
    r->line = NULL;
    handle_line(r, line);
    if (r->entry) stop_input(r);
    else start_input(r);
    return 0;
  }
  if (lr__host_ready(r->rt)) run_background(r);
  drive(r, LR_STEP_POLL);
  return 0;
}

int lr__repl(lr_state *S) {
  repl_t r;
  repl_open(&r, S);
  while ((!r.eof || r.entry) && !turn(&r)) {}
  repl_close(&r);
  return LR_OK;
}
