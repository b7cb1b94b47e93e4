/* offload(fn, ...): run a self-contained Lua function in a fresh Lua state
 * on libuv's thread pool (uv_queue_work) while the calling task waits, so
 * CPU-bound work can use other cores.  Nothing is shared: the function
 * travels as bytecode, arguments and results by value (nil, booleans,
 * numbers, strings, and tables of those). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "lr.h"

#define MAX_DEPTH 100

typedef struct {
  char *p;
  size_t len, cap;
} sbuf;

static int sb_add(sbuf *b, const void *s, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  return 0;
}

/* ---- values by copy ------------------------------------------------------ */

/* Appends the value at idx; returns NULL or why it cannot travel. */
static const char *put(lua_State *L, sbuf *b, int idx, int depth) {
  char tag;
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL: tag = 'n'; return sb_add(b, &tag, 1) ? "out of memory" : NULL;
    case LUA_TBOOLEAN: tag = lua_toboolean(L, idx) ? 't' : 'f'; return sb_add(b, &tag, 1) ? "out of memory" : NULL;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        tag = 'i';
        return (sb_add(b, &tag, 1) || sb_add(b, &i, sizeof i)) ? "out of memory" : NULL;
      } else {
        lua_Number d = lua_tonumber(L, idx);
        tag = 'd';
        return (sb_add(b, &tag, 1) || sb_add(b, &d, sizeof d)) ? "out of memory" : NULL;
      }
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      tag = 's';
      return (sb_add(b, &tag, 1) || sb_add(b, &n, sizeof n) || sb_add(b, s, n)) ? "out of memory" : NULL;
    }
    case LUA_TTABLE: {
      if (depth >= MAX_DEPTH) return "tables nested too deeply (a cycle?)";
      if (!lua_checkstack(L, 12)) return "tables nested too deeply";
      lr__response_settle(L, idx);  /* a response travels with its headers */
      tag = '{';
      if (sb_add(b, &tag, 1)) return "out of memory";
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        const char *e = put(L, b, -2, depth + 1);
        if (!e) e = put(L, b, -1, depth + 1);
        if (e) { lua_pop(L, 2); return e; }
        lua_pop(L, 1);
      }
      tag = '}';
      return sb_add(b, &tag, 1) ? "out of memory" : NULL;
    }
    case LUA_TFUNCTION: return "a function cannot be sent to a worker thread";
    case LUA_TTHREAD: return "a coroutine cannot be sent to a worker thread";
    default: return "a userdata cannot be sent to a worker thread";
  }
}

/* Pushes the value at *pos; returns 0 on malformed input (never expected). */
static int get(lua_State *L, const char *p, size_t len, size_t *pos) {
  if (*pos >= len || !lua_checkstack(L, 3)) return 0;
  char tag = p[(*pos)++];
  switch (tag) {
    case 'n': lua_pushnil(L); return 1;
    case 't': lua_pushboolean(L, 1); return 1;
    case 'f': lua_pushboolean(L, 0); return 1;
    case 'i': { lua_Integer i; memcpy(&i, p + *pos, sizeof i); *pos += sizeof i; lua_pushinteger(L, i); return 1; }
    case 'd': { lua_Number d; memcpy(&d, p + *pos, sizeof d); *pos += sizeof d; lua_pushnumber(L, d); return 1; }
    case 's': {
      size_t n;
      memcpy(&n, p + *pos, sizeof n);
      *pos += sizeof n;
      lua_pushlstring(L, p + *pos, n);
      *pos += n;
      return 1;
    }
    case '{':
      lua_newtable(L);
      while (*pos < len && p[*pos] != '}') {
        if (!get(L, p, len, pos) || !get(L, p, len, pos)) return 0;
        if (lua_isnil(L, -2)) { lua_pop(L, 2); continue; }
        lua_rawset(L, -3);
      }
      (*pos)++;
      return 1;
    default: return 0;
  }
}

/* ---- the job ----------------------------------------------------------------- */

typedef struct {
  uv_work_t req;
  lr_runtime *rt;
  lr_task *task;   /* NULL once the waiting task has gone (cancelled) */
  sbuf code, args, results;
  int nargs, nresults;
  int ok;
  char *error;     /* message and the worker's traceback */
  atomic_int stop; /* set when nobody waits any more: the worker gives up */
} job_t;

static void job_free(job_t *j) {
  free(j->code.p);
  free(j->args.p);
  free(j->results.p);
  free(j->error);
  free(j);
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  return sb_add(ud, p, sz);
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void fail(job_t *j, const char *msg) {
  j->ok = 0;
  j->error = strdup(msg ? msg : "offload: unknown error");
}

/* Checked every few thousand instructions: a cancelled job stops early,
 * so it does not hold a core (or the process's exit) for nothing. */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  job_t *j = *(job_t **)lua_getextraspace(L);
  (void)ar;
  if (atomic_load(&j->stop)) luaL_error(L, "offload: cancelled");
}

/* In a pool thread: a fresh state, the function, the arguments, the call. */
static void work(uv_work_t *req) {
  job_t *j = req->data;
  lua_State *L = luaL_newstate();
  if (!L) { fail(j, "offload: cannot create a Lua state"); return; }
  *(job_t **)lua_getextraspace(L) = j;
  lua_sethook(L, stop_hook, LUA_MASKCOUNT, 10000);
  luaL_openlibs(L);
  lua_pushcfunction(L, traceback);
  if (luaL_loadbufferx(L, j->code.p, j->code.len, "=offload", "b") != LUA_OK) {
    fail(j, lua_tostring(L, -1));
    lua_close(L);
    return;
  }
  size_t pos = 0;
  for (int i = 0; i < j->nargs; i++) get(L, j->args.p, j->args.len, &pos);
  if (lua_pcall(L, j->nargs, LUA_MULTRET, 1) != LUA_OK) {
    fail(j, lua_tostring(L, -1));
    lua_close(L);
    return;
  }
  int top = lua_gettop(L);
  j->nresults = top - 1;
  j->ok = 1;
  for (int i = 2; i <= top; i++) {
    const char *e = put(L, &j->results, i, 0);
    if (e) {
      char msg[160];
      snprintf(msg, sizeof msg, "offload: result #%d: %s", i - 1, e);
      fail(j, msg);
      break;
    }
  }
  lua_close(L);
}

static void after_work(uv_work_t *req, int status) {
  job_t *j = req->data;
  j->rt->jobs--;
  if (status == UV_ECANCELED && j->ok == 0 && !j->error) fail(j, "offload: cancelled");
  if (!j->task) { job_free(j); return; }  /* nobody waits any more */
  lr__wake(j->rt, j->task, LR_WAKE_OK);
}

void lr__offload_cleanup(lr_runtime *rt, lr_task *t) {
  (void)rt;
  job_t *j = t->park_data;
  j->task = NULL;                /* the pool thread may still run it: */
  atomic_store(&j->stop, 1);     /* then it stops at its next hook */
  uv_cancel((uv_req_t *)&j->req);  /* if not started, it never will */
}

static int offload_k(lua_State *L, int status, lua_KContext ctx) {
  job_t *j = (job_t *)ctx;
  lr_task *t = lr__current(L);
  (void)status;
  lr_runtime *rt = lr__runtime(L);
  if (t->wake != LR_WAKE_OK) lr__check_cancel(L, rt, t);  /* the job was let go */
  if (t->cancel_requested) { job_free(j); lr__check_cancel(L, rt, t); }
  if (!j->ok) {
    lua_pushstring(L, j->error);
    job_free(j);
    return lua_error(L);
  }
  size_t pos = 0;
  int n = j->nresults;
  luaL_checkstack(L, n, "offload: too many results");
  for (int i = 0; i < n; i++) get(L, j->results.p, j->results.len, &pos);
  job_free(j);
  return n;
}

/* offload(fn, ...) -> fn(...)'s results, computed on a worker thread */
static int l_offload(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (lua_iscfunction(L, 1)) return luaL_argerror(L, 1, "a C function cannot be sent to a worker thread");
  const char *up;
  for (int i = 1; (up = lua_getupvalue(L, 1, i)); i++) {
    lua_pop(L, 1);
    if (strcmp(up, "_ENV") != 0)
      return luaL_argerror(L, 1, lua_pushfstring(L, "the function uses upvalue '%s' (a local from outside "
                                                    "it); pass it as an argument instead", up));
  }
  int nargs = lua_gettop(L) - 1;
  lr_task *t = lr__current(L);
  if (!t) return lr__in_task_or_drive(L, "offload", l_offload);
  lr_runtime *rt = lr__runtime(L);
  lr__check_cancel(L, rt, t);
  if (!lua_isyieldable(L))
    return luaL_error(L, "offload: cannot wait here (inside a metamethod or a C function that cannot yield)");
  job_t *j = calloc(1, sizeof *j);
  if (!j) return luaL_error(L, "offload: not enough memory");
  j->rt = rt;
  j->task = t;
  j->nargs = nargs;
  j->req.data = j;
  for (int i = 2; i <= nargs + 1; i++) {
    const char *e = put(L, &j->args, i, 0);
    if (e) {
      job_free(j);
      return luaL_argerror(L, i, e);
    }
  }
  lua_pushvalue(L, 1);
  int dumped = lua_dump(L, dump_writer, &j->code, 0);
  lua_pop(L, 1);
  if (dumped != 0 || uv_queue_work(&rt->loop, &j->req, work, after_work) != 0) {
    job_free(j);
    return luaL_error(L, "offload: cannot start the work");
  }
  rt->jobs++;
  return lr__park(L, rt, t, LR_W_OFFLOAD, LR_C_OFFLOAD, j, (lua_KContext)j, offload_k);
}

const luaL_Reg lr__offload_funcs[] = {{"offload", l_offload}, {NULL, NULL}};
