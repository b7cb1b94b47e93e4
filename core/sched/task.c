/* Tasks: a coroutine plus its scheduling state.  C resumes them (only from
 * the driver, never from inside a libuv callback), parks them at wait
 * points, wakes and cancels them.  Lua sees a "lessonrun.Task" userdata;
 * its methods are prims/ (task_api.c). */
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"

_Static_assert(sizeof(void *) != 8 || sizeof(lr_task) == 40, "lr_task grew: see sched.h");

/* ---- finding and creating tasks ---------------------------------------- */

lr_task *lr__checktask(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, LR_TASK_MT);
}

/* luaL_testudata without its lookup of the metatable by name */
lr_task *lr__totask(lua_State *L, lr_runtime *rt, int idx) {
  lr_task *t = lua_touserdata(L, idx);
  if (!t || !lua_getmetatable(L, idx)) return NULL;
  if (lua_topointer(L, -1) != rt->task_mt) t = NULL;
  lua_pop(L, 1);
  return t;
}

lr_task *lr__live_at(lr_runtime *rt, size_t i) {
  lua_State *L = rt->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->live_ref);
  lua_rawgeti(L, -1, (lua_Integer)i);
  lr_task *t = lua_touserdata(L, -1);
  lua_pop(L, 2);
  return t;
}

/* Spawn a task running stack[first] with the nargs values after it as
 * arguments.  Pushes the task handle. */
lr_task *lr__spawn(lua_State *L, lr_runtime *rt, int first, int nargs) {
  luaL_checkstack(L, 3, NULL);
  if (lr__rq_reserve(rt, rt->nlive + 1) != 0) luaL_error(L, "not enough memory");
  lr_task *t = lua_newuserdatauv(L, sizeof *t, 1);
  memset(t, 0, sizeof *t);
  t->heap_idx = LR_NO_HEAP;
  t->ref = LUA_NOREF;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->task_mt_ref);
  lua_setmetatable(L, -2);
  lua_State *co = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);
  if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "spawn: too many arguments");
  for (int i = 0; i <= nargs; i++) lua_pushvalue(L, first + i);
  lua_xmove(L, co, nargs + 1);
  t->co = co;
  *(lr_task **)lua_getextraspace(co) = t;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->live_ref);
  lua_pushvalue(L, -2);
  t->ref = (int)(rt->nlive + 1);
  lua_rawseti(L, -2, t->ref);
  lua_pop(L, 1);
  rt->nlive++;
  t->id = rt->next_id++;
  t->state = LR_PENDING;
  if (rt->trace) lr__trace_spawn(L, rt, t, first, nargs);
  lr__rq_push(rt, t);
  return t;
}

/* ---- finishing --------------------------------------------------------- */

/* A task that returned gives up its coroutine (~1 KB, most of a task):
 * its n results move to the handle's uservalue (nothing when n == 0, the
 * value itself when n == 1, else an array) and n to park_data, so a program that keeps many
 * finished handles (gather's list, a fetch per task) keeps only them.  The
 * handle is on top of L; for n > 1, the table made by results_table is
 * below it and the live table. */
static void keep_results(lua_State *L, lr_task *t) {
  lua_State *co = t->co;
  int n = lua_gettop(co);
  luaL_checkstack(L, 3, NULL);
  if (n == 0) {
    lua_pushnil(L);
  } else if (n == 1) {
    lua_xmove(co, L, 1);
  } else {
    lua_pushvalue(L, -3);
    for (int i = n; i >= 1; i--) {
      lua_xmove(co, L, 1);
      lua_rawseti(L, -2, i);
    }
  }
  lua_setiuservalue(L, -2, 1);
  t->co = NULL;
  t->park_data = (void *)(uintptr_t)n;
}

static int new_table(lua_State *L) {
  lua_createtable(L, (int)lua_tointeger(L, 1), 0);
  return 1;
}

/* Pushes a table with room for n results and returns 1, or returns 0 when
 * memory ran out (protected: the driver cannot raise). */
static int results_table(lua_State *L, int n) {
  lua_pushcfunction(L, new_table);
  lua_pushinteger(L, n);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return 1;
  lua_pop(L, 1);
  return 0;
}

static void finish(lr_runtime *rt, lr_task *t, int state) {
  t->state = state;
  if (rt->trace) lr__trace(rt, LR_EV_END, t, state);
  if (t == rt->root && state != LR_DONE && t->cancel_requested && rt->interrupted)
    t->interrupted = 1;
  if (t == rt->root) rt->root_state = state;
  lr__notify_watchers(rt, t);
  /* out of the live array: the last task takes this one's slot */
  lua_State *L = rt->L;
  lua_checkstack(L, 3);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->live_ref);
  if (state == LR_DONE) {
    lua_rawgeti(L, -1, t->ref);
    keep_results(L, t);
    lua_pop(L, 1);
  }
  int last = (int)rt->nlive;
  if (t->ref != last) {
    lua_rawgeti(L, -1, last);
    ((lr_task *)lua_touserdata(L, -1))->ref = t->ref;
    lua_rawseti(L, -2, t->ref);
  }
  lua_pushnil(L);
  lua_rawseti(L, -2, last);
  lua_pop(L, 1);
  rt->nlive--;
  t->ref = LUA_NOREF;
}

/* The results of a DONE task, whose handle is at idx. */
int lr__push_results(lua_State *L, lr_task *t, int idx, int first_only) {
  int n = (int)(uintptr_t)t->park_data;
  idx = lua_absindex(L, idx);
  if (first_only) {
    if (n == 0) { lua_pushnil(L); return 1; }
    lua_getiuservalue(L, idx, 1);
    if (n > 1) { lua_rawgeti(L, -1, 1); lua_remove(L, -2); }
    return 1;
  }
  luaL_checkstack(L, n + 1, "too many results");
  if (n == 0) return 0;
  lua_getiuservalue(L, idx, 1);
  if (n == 1) return 1;
  for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return n;
}

/* Memory is exhausted: every further resume would cost a full collection
 * that frees nothing.  The script ends with "not enough memory", as
 * lua5.4's would: its root task is cancelled and resumed first
 * (lr__run_ready holds the others back meanwhile). */
static void end_for_memory(lr_runtime *rt) {
  lr_task *r = rt->root;
  rt->oom = 1;
  if (!r || lr__finished(r)) return;
  lr__cancel(rt, r);
  for (size_t i = 0; i < rt->rq_len; i++) {  /* to the head of the queue */
    size_t k = (rt->rq_head + i) % rt->rq_cap;
    if (rt->rq[k] == r) {
      rt->rq[k] = rt->rq[rt->rq_head];
      rt->rq[rt->rq_head] = r;
      rt->oom = 2;
      return;
    }
  }
}

/* A task failed for memory: one of a burst is the task's own affair (as
 * in pcall), but a second of nothing else finishing is exhaustion. */
static void thrashing(lr_runtime *rt) {
  uint64_t now = uv_hrtime();
  if (rt->oom_streak++ == 0) rt->oom_since = now;
  else if (rt->oom_streak >= 8 && now - rt->oom_since > 1000000000u) end_for_memory(rt);
}

/* t's coroutine ended with the error st (its value on top of its stack):
 * record its traceback and, if it failed rather than being cancelled, the
 * report for when nobody looks, then finish it. */
static void failed(lr_runtime *rt, lr_task *t, int st) {
  lua_State *co = t->co, *L = rt->L;
  int cancelled = st != LUA_ERRMEM && lr__is_cancel(co, -1), sentinel = 0;
  if (st == LUA_ERRMEM && rt->shutting_down) rt->oom = 1;
  else if (st == LUA_ERRMEM && t != rt->root) thrashing(rt);
  else if (st == LUA_ERRMEM) rt->oom = 1;  /* the script ends for it: the others wait (lr__run_ready) */
  else rt->oom_streak = 0;
  /* its traceback and, if it failed, the report for when nobody looks:
   * built in protected mode, as both allocate and the driver cannot raise */
  if (!(rt->shutting_down && rt->oom) && lua_checkstack(L, 4) && lua_checkstack(co, 4)) {
    lua_pushcfunction(L, lr__precord);
    lua_pushlightuserdata(L, rt);
    lua_pushlightuserdata(L, t);
    lua_pushboolean(L, !cancelled);
    if (lua_pcall(L, 3, 1, 0) == LUA_OK) {
      sentinel = !lua_isnil(L, -1);
    } else {  /* no memory even after an emergency collection: each further
               * failure would cost another */
      if (rt->shutting_down) rt->oom = 1;
      else if (t != rt->root) end_for_memory(rt);
      lua_pop(L, 1);
      lua_pushnil(L);
      lua_rawgeti(co, LUA_REGISTRYINDEX, rt->nomem_ref);
    }
  } else {
    lua_pushnil(L);
    lua_rawgeti(co, LUA_REGISTRYINDEX, rt->nomem_ref);
  }
  /* close its pending to-be-closed variables (a semaphore slot held with
   * <close>, say): move the traceback aside, reset, put it back */
  lua_xmove(co, L, 1);
  lua_resetthread(co);
  lua_xmove(L, co, 1);
  t->park_data = NULL;
  if (sentinel) {  /* below the error and the traceback: lr__push_error's -2 and -1 */
    lua_xmove(L, co, 1);
    lua_insert(co, 1);
    t->park_data = lua_touserdata(co, 1);
    rt->unobserved++;
    rt->nfailed++;
  } else {
    lua_pop(L, 1);
  }
  finish(rt, t, cancelled ? LR_CANCELLED : LR_FAILED);
}

/* Resume a ready task and record what it did: park, finish or fail. */
void lr__resume(lr_runtime *rt, lr_task *t) {
  lua_State *co = t->co, *L = rt->L;
  int nargs = 0, nres = 0, st;
  if (lr__finished(t)) return;
  if (t->state == LR_PENDING) {
    if (t->cancel_requested) {  /* cancelled before it ever ran */
      lua_settop(co, 0);
      lr__push_cancel(co, rt);
      lr__push_never_started(L, rt, t);
      lua_xmove(L, co, 1);
      finish(rt, t, LR_CANCELLED);
      return;
    }
    nargs = lua_gettop(co) - 1;
  }
  if (rt->oom == 2 && t == rt->root) rt->oom = 1;  /* it got its turn: the queue is in order again */
  t->wait = 0;  /* what it was woken with is its continuation's now */
  t->state = LR_RUNNING;
  lr_task *prev_cur = rt->current;
  lua_State *prev_run = rt->running;
  rt->current = t;
  rt->running = co;
  if (rt->trace) lr__trace(rt, LR_EV_RUN, t, 0);
  st = lua_resume(co, L, nargs, &nres);
  if (rt->trace) lr__trace(rt, LR_EV_STOP, t, 0);
  rt->current = prev_cur;
  rt->running = prev_run;
  if (st == LUA_YIELD) {
    if (t->state == LR_RUNNING) {  /* a bare coroutine.yield(): treat as sleep(0) */
      lua_pop(co, nres);
      t->state = LR_READY;
      lr__rq_push(rt, t);
    }
    return;
  }
  if (st == LUA_OK) rt->oom_streak = 0;
  if (st == LUA_OK) {  /* the results are all that is left on its stack */
    if (nres <= 1 || results_table(L, nres)) {
      finish(rt, t, LR_DONE);
      if (nres > 1) lua_pop(L, 1);
      return;
    }
    lua_settop(co, 0);  /* no room for its results: it fails for want of memory */
    lua_rawgeti(co, LUA_REGISTRYINDEX, rt->nomem_ref);
    st = LUA_ERRMEM;
  }
  failed(rt, t, st);
}

/* ---- parking, cancelling ------------------------------------------------ */

int lr__park(lua_State *L, lr_runtime *rt, lr_task *t, const lr_wait_kind *kind,
             void *data, lua_KContext ctx, lua_KFunction k) {
  if (rt->trace) lr__trace(rt, LR_EV_PARK, t, kind->id);
  t->state = LR_WAITING;
  t->wait = kind->id;
  t->park_data = data;
  t->wake = LR_WAKE_OK;
  return lua_yieldk(L, 0, ctx, k);
}

/* The slow path of lr__check_cancel: t was cancelled or deadlocked. */
int lr__raise_wake_error(lua_State *L, lr_runtime *rt, lr_task *t) {
  if (t->cancel_requested) {
    t->cancel_delivered = 1;
    lr__push_cancel(L, rt);
    return lua_error(L);
  }
  if (t->wake == LR_WAKE_DEADLOCK) {
    t->wake = LR_WAKE_OK;
    return luaL_error(L, "deadlock: this task waits for something that can never happen "
                         "(every task is waiting and no timer or I/O is pending)");
  }
  return 0;
}

int lr__cancel(lr_runtime *rt, lr_task *t) {
  if (lr__finished(t)) return 0;
  if (t->cancel_requested) return 1;
  t->cancel_requested = 1;
  if (t->state == LR_WAITING) {
    lr__cleanup(rt, t);
    lr__wake(rt, t, LR_WAKE_CANCEL);
  }
  return 1;
}

/* Run a parked task's cleanup, if it has one left. */
void lr__cleanup(lr_runtime *rt, lr_task *t) {
  const lr_wait_kind *k = lr__wait_kind(t->wait);
  t->wait = 0;
  if (k && k->cleanup) k->cleanup(rt, t);
}

/* The tasks' metatable (prims/task_api.c gives it __index and __tostring)
 * and the tables that names and failures keep. */
void lr__task_open(lua_State *L, lr_runtime *rt) {
  lr__names_open(L);
  lr__failure_open(L);
  luaL_newmetatable(L, LR_TASK_MT);
  if (rt->task_mt != lua_topointer(L, -1)) {  /* (opened again: the same table) */
    rt->task_mt = lua_topointer(L, -1);
    rt->task_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* for the runtime's life: not counted */
  } else {
    lua_pop(L, 1);
  }
}
