/* offload(fn, ...): run a self-contained Lua function in a fresh Lua state
 * on libuv's thread pool (uv_queue_work) while the calling task waits, so
 * CPU-bound work can use other cores.  Nothing is shared: the function
 * travels as bytecode, arguments and results by value (nil, booleans,
 * numbers, strings, and tables of those), and so do error values that are
 * not strings.  Everything the worker does runs in a protected call, so
 * running out of memory there is an error the caller gets, not a panic. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "base/buf.h"
#include "prims/prims.h"

#define MAX_DEPTH 100

static const char OOM[] = "out of memory";  /* put()'s answer when a buffer cannot grow */

typedef lr_buf sbuf;
#define sb_add lr__buf_add  /* nonzero when it cannot grow */

/* ---- values by copy ------------------------------------------------------ */

/* Appends the value at idx; returns NULL or why it cannot travel. */
static const char *put(lua_State *L, sbuf *b, int idx, int depth) {
  char tag;
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL: tag = 'n'; return sb_add(b, &tag, 1) ? OOM : NULL;
    case LUA_TBOOLEAN: tag = lua_toboolean(L, idx) ? 't' : 'f'; return sb_add(b, &tag, 1) ? OOM : NULL;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        tag = 'i';
        return (sb_add(b, &tag, 1) || sb_add(b, &i, sizeof i)) ? OOM : NULL;
      } else {
        lua_Number d = lua_tonumber(L, idx);
        tag = 'd';
        return (sb_add(b, &tag, 1) || sb_add(b, &d, sizeof d)) ? OOM : NULL;
      }
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      tag = 's';
      return (sb_add(b, &tag, 1) || sb_add(b, &n, sizeof n) || sb_add(b, s, n)) ? OOM : NULL;
    }
    case LUA_TTABLE: {
      if (depth >= MAX_DEPTH) return "tables nested too deeply (a cycle?)";
      if (!lua_checkstack(L, 12)) return "tables nested too deeply";
      lr__settle(L, idx);  /* a response travels with its headers */
      tag = '{';
      if (sb_add(b, &tag, 1)) return OOM;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        const char *e = put(L, b, -2, depth + 1);
        if (!e) e = put(L, b, -1, depth + 1);
        if (e) { lua_pop(L, 2); return e; }
        lua_pop(L, 1);
      }
      tag = '}';
      return sb_add(b, &tag, 1) ? OOM : NULL;
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
  lr_task *task;     /* NULL once the waiting task has gone (cancelled) */
  sbuf code, args, results;  /* results: the values, or the error value */
  int nargs, nresults;
  int ok;            /* the call returned: its values are in results */
  int error_value;   /* it raised a value that travels: in results */
  char *error;       /* else the message (a string error with the worker's traceback) */
  size_t error_len;  /* its length: a message may hold NUL bytes */
  int bad_arg;       /* the argument that cannot travel, and why */
  const char *bad_why;
  uv_mutex_t mu;     /* guards L and stop between the worker and the main thread */
  lua_State *L;      /* the worker's state while it runs, else NULL */
  int stop;          /* nobody waits any more: the worker gives up */
  atomic_int hooking;  /* the main thread is setting the stop hook on L */
  long long fail_left;  /* debug builds: allocations before they fail (LR_FAIL_OFFLOAD_ALLOC_AFTER), or -1 */
} job_t;

static void job_free(job_t *j) {
  lr__buf_free(&j->code);
  lr__buf_free(&j->args);
  lr__buf_free(&j->results);
  free(j->error);
  uv_mutex_destroy(&j->mu);
  free(j);
}

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  return sb_add(ud, p, sz);
}

/* A string error gets the worker's traceback; any other value stays as it
 * is, to travel back by value. */
static int traceback(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING) return 1;
  /* luaL_traceback takes the message as a C string: joined here, whole */
  lua_pushvalue(L, 1);
  lua_pushliteral(L, "\n");
  luaL_traceback(L, L, NULL, 1);
  lua_concat(L, 3);
  /* its last frame is worker_main, lessonrun's C: the user's function is the bottom */
  size_t n, k = sizeof "\n\t[C]: in ?" - 1;
  const char *tb = lua_tolstring(L, -1, &n);
  if (n >= k && strcmp(tb + n - k, "\n\t[C]: in ?") == 0) lua_pushlstring(L, tb, n - k);
  return 1;
}

/* msg[0..len) as the job's error; a copy that fails is reported as out of memory. */
static void fail_len(job_t *j, const char *msg, size_t len) {
  j->ok = 0;
  j->error_value = 0;
  free(j->error);
  j->error = malloc(len + 1);
  j->error_len = j->error ? len : 0;
  if (j->error) {
    memcpy(j->error, msg, len);
    j->error[len] = '\0';
  }
}

static void fail(job_t *j, const char *msg) {
  if (!msg) msg = "offload: unknown error";
  fail_len(j, msg, strlen(msg));
}

/* The string at the top of L's stack as the job's error, NUL bytes and all. */
static void fail_top(job_t *j, lua_State *L) {
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  if (msg) fail_len(j, msg, len);
  else fail(j, NULL);
}

/* ---- in the worker thread ----------------------------------------------------- */

/* Set by the main thread only once the job is cancelled (stop_job), as
 * lua.c does for Ctrl-C: a hook set all along would slow every instruction. */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, stop_hook, LUA_MASKCOUNT, 1000);  /* again, if the code catches it */
  luaL_error(L, "offload: cancelled");
}

/* lua_sethook from the main thread walks the state's call frames, and the
 * collector frees spare frames: a free waits while the hook is being set
 * (the fences pair with stop_job's). */
static void *worker_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  job_t *j = ud;
  (void)osize;
  if (nsize == 0) {
    if (ptr) {
      atomic_thread_fence(memory_order_seq_cst);
      if (atomic_load_explicit(&j->hooking, memory_order_relaxed)) {
        uv_mutex_lock(&j->mu);
        uv_mutex_unlock(&j->mu);
      }
      free(ptr);
    }
    return NULL;
  }
#ifndef NDEBUG
  if (j->fail_left >= 0 && (!ptr || nsize > osize)) {  /* as alloc.c's LR_FAIL_ALLOC_AFTER */
    if (j->fail_left == 0) return NULL;
    j->fail_left--;
  }
#endif
  return realloc(ptr, nsize);
}

/* The error value at the top of the stack: a string as the message, any
 * other value by copy when it can travel. */
static void keep_error(lua_State *L, job_t *j) {
  if (lua_type(L, -1) == LUA_TSTRING) { fail_top(j, L); return; }
  lr__buf_reset(&j->results);
  const char *e = put(L, &j->results, -1, 0);
  if (!e) {
    j->ok = 0;
    j->error_value = 1;
    return;
  }
  if (e == OOM) luaL_error(L, "not enough memory");
  lua_pushfstring(L, "offload: the worker raised a %s value that cannot travel back (%s)",
                  luaL_typename(L, -1), e);
  fail(j, lua_tostring(L, -1));
}

/* The whole job, under the protected call in work(). */
static int worker_main(lua_State *L) {
  job_t *j = lua_touserdata(L, 1);
  luaL_openlibs(L);
  lua_pushcfunction(L, traceback);  /* 2 */
  if (luaL_loadbufferx(L, j->code.p, j->code.len, "=offload", "b") != LUA_OK) return lua_error(L);
  luaL_checkstack(L, j->nargs, "too many arguments");
  size_t pos = 0;
  for (int i = 0; i < j->nargs; i++)
    if (!get(L, j->args.p, j->args.len, &pos)) return luaL_error(L, "malformed arguments");
  if (lua_pcall(L, j->nargs, LUA_MULTRET, 2) != LUA_OK) {
    keep_error(L, j);
    return 0;
  }
  int top = lua_gettop(L);
  for (int i = 3; i <= top; i++) {
    const char *e = put(L, &j->results, i, 0);
    if (e == OOM) return luaL_error(L, "not enough memory");
    if (e) {
      lua_pushfstring(L, "offload: result #%d: %s", i - 2, e);
      fail(j, lua_tostring(L, -1));
      return 0;
    }
  }
  j->nresults = top - 2;
  j->ok = 1;
  return 0;
}

/* In a pool thread: a fresh state, published for stop_job, the job. */
static void work(uv_work_t *req) {
  job_t *j = req->data;
  lua_State *L = lua_newstate(worker_alloc, j);
  if (!L) { fail(j, "offload: not enough memory for the worker's Lua state"); return; }
  uv_mutex_lock(&j->mu);
  int stop = j->stop;
  if (!stop) j->L = L;
  uv_mutex_unlock(&j->mu);
  if (stop) {
    fail(j, "offload: cancelled");
  } else {
    lua_pushcfunction(L, worker_main);
    lua_pushlightuserdata(L, j);
    int st = lua_pcall(L, 1, 0, 0);
    if (st == LUA_ERRMEM) fail(j, "offload: not enough memory in the worker thread");
    else if (st != LUA_OK) fail_top(j, L);
    uv_mutex_lock(&j->mu);  /* never hooked once closed */
    j->L = NULL;
    uv_mutex_unlock(&j->mu);
  }
  lua_close(L);
}

/* ---- in the main thread ---------------------------------------------------------- */

/* Stops a job that nobody waits for: the worker raises at its next
 * instruction, call or return. */
static void stop_job(job_t *j) {
  uv_mutex_lock(&j->mu);
  j->stop = 1;  /* a worker that has not published its state yet sees it */
  if (j->L) {
    atomic_store(&j->hooking, 1);
    atomic_thread_fence(memory_order_seq_cst);
    lua_sethook(j->L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    atomic_store(&j->hooking, 0);
  }
  uv_mutex_unlock(&j->mu);
}

static void after_work(uv_work_t *req, int status) {
  job_t *j = req->data;
  j->rt->jobs--;
  if (status == UV_ECANCELED && !j->ok && !j->error_value && !j->error) fail(j, "offload: cancelled");
  if (!j->task) { job_free(j); return; }  /* nobody waits any more */
  lr__wake(j->rt, j->task, LR_WAKE_OK);
}

static void offload_cleanup(lr_runtime *rt, lr_task *t) {
  (void)rt;
  job_t *j = t->park_data;
  if (t->state == LR_READY) {      /* woken by after_work, never resumed */
    job_free(j);
    return;
  }
  j->task = NULL;                  /* the pool thread may still run it: */
  stop_job(j);                     /* then it stops soon */
  uv_cancel((uv_req_t *)&j->req);  /* if not started, it never will */
}

static lr_wait_kind offload_kind = {"offload", NULL, offload_cleanup, 0};

void lr__offload_open(void) { lr__wait_kind_register(&offload_kind); }

/* The job's results, or its error value, pushed (protected: it allocates). */
static int push_outcome(lua_State *L) {
  job_t *j = lua_touserdata(L, 1);
  if (!j->ok && !j->error_value) {
    if (j->error) lua_pushlstring(L, j->error, j->error_len);
    else lua_pushliteral(L, "offload: not enough memory");
    return 1;
  }
  int n = j->ok ? j->nresults : 1;
  luaL_checkstack(L, n, "offload: too many results");
  size_t pos = 0;
  for (int i = 0; i < n; i++)
    if (!get(L, j->results.p, j->results.len, &pos)) return luaL_error(L, "offload: malformed results");
  return n;
}

static int offload_k(lua_State *L, int status, lua_KContext ctx) {
  job_t *j = (job_t *)ctx;
  lr_task *t = lr__current(L);
  (void)status;
  lr_runtime *rt = lr__runtime(L);
  if (t->wake != LR_WAKE_OK) lr__check_cancel(L, rt, t);  /* the job was let go */
  if (t->cancel_requested) { job_free(j); lr__check_cancel(L, rt, t); }
  int base = lua_gettop(L);
  lua_pushcfunction(L, push_outcome);
  lua_pushlightuserdata(L, j);
  int st = lua_pcall(L, 1, LUA_MULTRET, 0);
  int ok = j->ok;
  job_free(j);
  if (st != LUA_OK || !ok) return lua_error(L);
  return lua_gettop(L) - base;
}

/* Copies the arguments and dumps the function into the job (protected:
 * a response's headers are built as it travels). */
static int pack(lua_State *L) {
  job_t *j = lua_touserdata(L, 1);
  for (int i = 3; i <= j->nargs + 2; i++) {
    const char *e = put(L, &j->args, i, 0);
    if (e == OOM) return luaL_error(L, "not enough memory");
    if (e) { j->bad_arg = i - 1; j->bad_why = e; return 0; }
  }
  lua_pushvalue(L, 2);
  if (lua_dump(L, dump_writer, &j->code, 0) != 0) return luaL_error(L, "not enough memory");
  return 0;
}

/* libuv starts its pool on the first job and aborts if a thread cannot be
 * created (ENOMEM under `ulimit -v`): first create as many threads with the
 * same stacks here, where failing is an error.  glibc keeps the stacks of
 * joined threads for reuse, so the pool's threads then get them. */
static atomic_int pool_checked;
static uv_sem_t probe_go;

static void probe_thread(void *arg) {
  (void)arg;
  uv_sem_wait(&probe_go);
}

static int pool_can_start(void) {
  if (atomic_load(&pool_checked)) return 1;
  const char *env = getenv("UV_THREADPOOL_SIZE");
  long n = env ? strtol(env, NULL, 10) : 4;
  if (n < 1) n = 1;
  if (n > 1024) n = 1024;
  uv_thread_t *th = malloc((size_t)n * sizeof *th);
  if (!th || uv_sem_init(&probe_go, 0) != 0) { free(th); return 0; }
  uv_thread_options_t opt = {UV_THREAD_HAS_STACK_SIZE, 8u << 20};  /* libuv's pool stack */
  long made = 0;
  while (made < n && uv_thread_create_ex(&th[made], &opt, probe_thread, NULL) == 0) made++;
  for (long i = 0; i < made; i++) uv_sem_post(&probe_go);
  for (long i = 0; i < made; i++) uv_thread_join(&th[i]);
  uv_sem_destroy(&probe_go);
  free(th);
  if (made < n) return 0;
  atomic_store(&pool_checked, 1);
  return 1;
}

/* offload(fn, ...) -> fn(...)'s results, computed on a worker thread */
static int l_offload(lua_State *L) {
  if (lua_type(L, 1) != LUA_TFUNCTION) lr__function_expected(L, 1, "offload");
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
  lr_runtime *rt = lr__runtime(L);
  int nres;
  lr_task *t = lr__wait_enter(L, rt, "offload", l_offload, nargs + 1, &nres);
  if (!t) return nres;
  lr__wait_yieldable(L, "offload");
  luaL_checkstack(L, nargs + 3, "offload: too many arguments");
  job_t *j = calloc(1, sizeof *j);
  if (!j) return luaL_error(L, "offload: not enough memory");
  if (uv_mutex_init(&j->mu) != 0) {
    free(j);
    return luaL_error(L, "offload: cannot start the work");
  }
  j->code = j->args = j->results = (lr_buf)LR_BUF_INIT;
  j->rt = rt;
  j->task = t;
  j->nargs = nargs;
  j->fail_left = -1;
#ifndef NDEBUG
  const char *fail_after = getenv("LR_FAIL_OFFLOAD_ALLOC_AFTER");  /* each worker's state, for the oom test */
  if (fail_after && *fail_after) j->fail_left = strtoll(fail_after, NULL, 10);
#endif
  j->req.data = j;
  lua_pushcfunction(L, pack);
  lua_pushlightuserdata(L, j);
  for (int i = 1; i <= nargs + 1; i++) lua_pushvalue(L, i);
  if (lua_pcall(L, nargs + 2, 0, 0) != LUA_OK) {
    job_free(j);
    return luaL_error(L, "offload: not enough memory");
  }
  if (j->bad_arg) {
    int i = j->bad_arg;
    const char *why = j->bad_why;
    job_free(j);
    return luaL_argerror(L, i, why);
  }
  if (!pool_can_start()) {
    job_free(j);
    return luaL_error(L, "offload: not enough memory to start the worker threads");
  }
  if (uv_queue_work(&rt->loop, &j->req, work, after_work) != 0) {
    job_free(j);
    return luaL_error(L, "offload: cannot start the work");
  }
  rt->jobs++;
  return lr__park(L, rt, t, &offload_kind, j, (lua_KContext)j, offload_k);
}

const luaL_Reg lr__offload_funcs[] = {{"offload", l_offload}, {NULL, NULL}};
