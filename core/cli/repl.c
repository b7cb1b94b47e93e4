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

#include <readline/readline.h>
#include <readline/history.h>

#include "cli.h"

/* GNU readline is loaded when a REPL starts on a terminal, not linked:
 * linking it (and libtinfo) costs every script's start-up about 0.5 ms of
 * relocations and page faults for something only the REPL uses. */
#define RL_FUNCS(X)                                                         \
  X(rl_callback_handler_install) X(rl_callback_handler_remove)              \
  X(rl_callback_read_char) X(rl_replace_line) X(add_history)                \
  X(using_history) X(stifle_history) X(read_history) X(write_history)       \
  X(rl_copy_text) X(rl_save_prompt) X(rl_restore_prompt) X(rl_redisplay)

#define RL_VARS(X)                                                          \
  X(rl_catch_signals) X(rl_readline_name) X(rl_point) X(rl_end)             \
  X(rl_attempted_completion_function) X(rl_attempted_completion_over)       \
  X(rl_completion_append_character) X(rl_completer_word_break_characters)

static struct {
#define X(f) __typeof__(&f) f;
  RL_FUNCS(X)
  RL_VARS(X)
#undef X
} rl;

/* 0 when loaded; else -1 with the reason on stderr (the REPL then reads
 * plain lines) */
static int rl_load(void) {
#define X(f) #f,
  static const char *const names[] = { RL_FUNCS(X) RL_VARS(X) };
#undef X
  void *syms[sizeof names / sizeof *names];
  char err[256];
  if (lr__dl_bind("libreadline.so.8", names, syms, sizeof names / sizeof *names, err, sizeof err) != 0) {
    fprintf(stderr, "lessonrun: no line editing: %s\n", err);
    return -1;
  }
  size_t i = 0;
#define X(f) rl.f = (__typeof__(&f))syms[i++];
  RL_FUNCS(X)
  RL_VARS(X)
#undef X
  return 0;
}

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
  rl.rl_callback_handler_remove();
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)h; (void)events;
  if (status < 0) { the_repl->eof = 1; return; }
  rl.rl_callback_read_char();
}

static void start_input(repl_t *r) {
  if (!r->tty) return;
  rl.rl_callback_handler_install(prompt(r), on_line);
  if (!r->polling) {
    uv_poll_start(&r->poll, UV_READABLE, on_readable);
    r->polling = 1;
  }
}

/* ---- Tab completion of globals and fields: "lessonrun.fe", "t:wa" ---- */

/* Replaces the value on top by the table to look into: itself if a table,
 * else its metatable's __index when that is one (task handles, responses:
 * their methods), and returns 1; else pops it and returns 0.  Raw access
 * only: completing must never run a metamethod. */
static int as_table(lua_State *L) {
  for (int depth = 0; depth < 4; depth++) {
    if (lua_istable(L, -1)) return 1;
    if (!lua_getmetatable(L, -1)) break;
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return 0;
}

/* Adds to the table at t the keys of the table on top (and of its
 * metatable's __index tables) that start with prefix, as head .. key. */
static void add_keys(lua_State *L, int t, const char *head, size_t headlen, const char *prefix, int depth) {
  size_t plen = strlen(prefix);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    size_t klen;
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &klen) : NULL;
    if (k && klen >= plen && memcmp(k, prefix, plen) == 0) {
      lua_pushlstring(L, head, headlen);
      lua_pushvalue(L, -2);
      lua_concat(L, 2);
      lua_pushboolean(L, 1);
      lua_rawset(L, t);
    }
  }
  if (depth < 4 && lua_getmetatable(L, -1)) {
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    if (lua_istable(L, -1)) add_keys(L, t, head, headlen, prefix, depth + 1);
    lua_pop(L, 2);
  }
}

/* lua_CFunction(text): a set {candidate = true} of completions of text */
static int collect(lua_State *L) {
  const char *text = lua_touserdata(L, 1);
  lua_newtable(L);
  int t = lua_gettop(L);
  const char *sep = NULL;
  for (const char *p = text; *p; p++)
    if (*p == '.' || *p == ':') sep = p;
  lua_pushglobaltable(L);
  if (sep) {  /* walk a.b.c to the table holding the last part */
    const char *seg = text;
    while (seg < sep) {
      const char *e = seg;
      while (e < sep && *e != '.' && *e != ':') e++;
      if (!as_table(L)) return 1;
      lua_pushlstring(L, seg, (size_t)(e - seg));
      lua_rawget(L, -2);
      lua_remove(L, -2);
      seg = e + 1;
    }
    if (!as_table(L)) return 1;
  }
  const char *prefix = sep ? sep + 1 : text;
  add_keys(L, t, text, (size_t)(prefix - text), prefix, 0);
  lua_settop(L, t);
  return 1;
}

static char **complete(const char *text, int start, int end) {
  (void)start; (void)end;
  *rl.rl_attempted_completion_over = 1;  /* no file names */
  lua_State *L = the_repl->L;
  int top = lua_gettop(L);
  char **out = NULL;
  lua_pushcfunction(L, collect);
  lua_pushlightuserdata(L, (void *)text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) { lua_pop(L, 1); n++; }
    if (n > 0 && (out = calloc(n + 2, sizeof *out))) {
      /* out[0]: what the matches share, readline inserts it */
      size_t i = 1, common = SIZE_MAX;
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        lua_pop(L, 1);
        const char *m = lua_tostring(L, -1);
        if (!(out[i] = strdup(m))) break;
        size_t c = 0;
        if (i == 1) common = strlen(m);
        else while (c < common && out[1][c] == m[c]) c++;
        if (i > 1) common = c;
        i++;
      }
      out[0] = i > 1 ? strndup(out[1], common) : NULL;
      if (!out[0]) {
        for (size_t j = 1; j < i; j++) free(out[j]);
        free(out);
        out = NULL;
      } else if (i == 2) {  /* one match: it alone */
        free(out[0]);
        out[0] = out[1];
        out[1] = NULL;
      }
    }
  }
  lua_settop(L, top);
  return out;
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
  int point = *rl.rl_point;
  char *typed = rl.rl_copy_text(0, *rl.rl_end);
  rl.rl_save_prompt();
  rl.rl_replace_line("", 0);
  rl.rl_redisplay();
  drive(r, LR_STEP_READY);
  fflush(stdout);
  fflush(stderr);
  rl.rl_restore_prompt();
  rl.rl_replace_line(typed ? typed : "", 0);
  *rl.rl_point = point <= *rl.rl_end ? point : *rl.rl_end;
  rl.rl_redisplay();
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
  if (code[0] && r->tty) rl.add_history(code);
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
  rl.using_history();
  rl.stifle_history(1000);
  if (r->histfile[0]) rl.read_history(r->histfile);
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
  if (r->tty && rl_load() != 0) r->tty = 0;
  if (r->tty) {
    *rl.rl_catch_signals = 0;  /* Ctrl-C is ours: clear the line or cancel */
    *rl.rl_readline_name = "lessonrun";
    *rl.rl_attempted_completion_function = complete;
    *rl.rl_completion_append_character = '\0';
    *rl.rl_completer_word_break_characters = " \t\n\"'`<>=;|&{}()[],+-*/%^#~";
    history_open(r);
    if (lr__host_poll_init(r->rt, &r->poll, STDIN_FILENO) != 0) r->tty = 0;
  }
  start_input(r);
}

static void repl_close(repl_t *r) {
  if (r->tty) {
    rl.rl_callback_handler_remove();
    stop_input(r);
    lr__host_close(r->rt, (uv_handle_t *)&r->poll);
    if (r->histfile[0]) rl.write_history(r->histfile);
  }
  free(r->chunk);
  lr__host_end(r->rt);
  the_repl = NULL;
}

/* Ctrl-C at the prompt: the line (and a chunk begun) go */
static void clear_input(repl_t *r) {
  r->clear = 0;
  lr__host_sigint_forget(r->rt);
  rl.rl_replace_line("", 0);
  rl.rl_callback_handler_remove();
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
