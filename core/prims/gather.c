/* Waiting for tasks: gather (core.waitall, core.results), task:wait and
 * timeout (core.wait_for).  The waiter parks on a group (sched/group.c);
 * the children that finish wake it. */
#include <math.h>

#include "prims/prims.h"

static void wait_for_cleanup(lr_runtime *rt, lr_task *t);
static lr_wait_kind gather_kind = {"gather", NULL, lr__group_cleanup, 0};
static lr_wait_kind wait_kind = {"wait", NULL, lr__group_cleanup, 0};
static lr_wait_kind wait_for_kind = {"wait", NULL, wait_for_cleanup, 0};

/* The index in list[1..n] of the task `failed`, else (the list changed
 * meanwhile) of the first failed task there, else 0. */
static lua_Integer failed_index(lua_State *L, int list, lua_Integer n, lr_task *failed) {
  lua_Integer first = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    lr_task *c = lr__totask(L, lr__runtime(L), -1);
    lua_pop(L, 1);
    if (!c || !lr__finished(c) || c->state == LR_DONE) continue;
    if (c == failed) return i;
    if (!first) first = i;
  }
  return first;
}

/* Re-raise a finished task's error in the caller, remembering where it came
 * from so the report shows the child's traceback too. */
static int reraise(lua_State *L, int idx) {
  lr_task *from = lua_touserdata(L, idx);
  lr_task *cur = lr__current(L);
  idx = lua_absindex(L, idx);
  if (cur && cur != from) {
    lr__push_extra(L, lr__runtime(L), cur, 1);
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, "origin");
    lua_pop(L, 1);
  }
  lr__push_error(L, from);
  return lua_error(L);
}

static int waitall_k(lua_State *L, int status, lua_KContext ctx) {
  lr_task *t = lr__current(L);
  (void)status; (void)ctx;
  lr_task *failed = lr__group_done(t);
  lr__check_cancel(L, lr__runtime(L), t);
  lua_Integer i = failed ? failed_index(L, 1, luaL_checkinteger(L, 2), failed) : 0;
  if (i) lua_pushinteger(L, i);
  else lua_pushnil(L);
  return 1;
}

/* core.waitall(list, n, failfast) -> index of the first failed task or nil.
 * Waits until every task in list[1..n] has finished or, with failfast, until
 * one fails. */
static int l_waitall(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 2);
  int failfast = lua_toboolean(L, 3);
  luaL_argcheck(L, n >= 0 && n <= INT32_MAX, 2, "out of range");
  lr_runtime *rt = lr__runtime(L);
  lr_task *t = lr__current(L);
  /* one look at each (a million of them miss the cache): check, and count */
  int pending = 0, first_failed = 0, self = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lr_task *c = lr__totask(L, rt, -1);
    lua_pop(L, 1);
    if (!c) return luaL_error(L, "waitall: item %I is not a task", i);
    if (c == t) self = 1;
    if (!lr__finished(c)) pending++;
    else if (c->state != LR_DONE && !first_failed) first_failed = (int)i;
  }
  int nres;
  if (!lr__wait_enter(L, rt, "gather", l_waitall, lua_gettop(L), &nres)) return nres;
  if (self) return luaL_error(L, "gather: a task cannot wait for itself");
  if (pending == 0 || (failfast && first_failed)) {
    if (first_failed) lua_pushinteger(L, first_failed);
    else lua_pushnil(L);
    return 1;
  }
  lr__wait_yieldable(L, "gather");
  lr_group *g = lr__group_new(L, "gather", t, failfast);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lr_task *c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!lr__finished(c)) lr__group_watch_or_raise(L, "gather", g, c);
  }
  return lr__park(L, rt, t, &gather_kind, g, (lua_KContext)g, waitall_k);
}

/* c is the task at stack index 1 */
int lr__wait_finished(lua_State *L, lr_task *c) {
  if (c->state == LR_DONE) return lr__push_results(L, c, 1, 0);
  return reraise(L, 1);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  lr_task *t = lr__current(L);
  (void)status; (void)ctx;
  lr__group_done(t);
  lr__check_cancel(L, lr__runtime(L), t);
  return lr__wait_finished(L, lr__checktask(L, 1));
}

/* task:wait() -> the task's results, or raises its error. */
int lr__task_wait(lua_State *L) {
  lr_task *c = lr__checktask(L, 1);
  lr_task *t = lr__current(L);
  lr_runtime *rt = lr__runtime(L);
  lua_settop(L, 1);
  if (!t) {
    if (!lr__finished(c)) {
      if (rt->driving)
        return luaL_error(L, "wait: must be called from a task (this is a plain coroutine or a callback)");
      lr__drive_task(L, rt, c, "wait");
    }
    return lr__wait_finished(L, c);
  }
  if (c == t) return luaL_error(L, "wait: a task cannot wait for itself");
  lr__check_cancel(L, rt, t);
  if (lr__finished(c)) return lr__wait_finished(L, c);
  lr__wait_yieldable(L, "wait");
  lr_group *g = lr__group_new(L, "wait", t, 0);
  lr__group_watch_or_raise(L, "wait", g, c);
  return lr__park(L, rt, t, &wait_kind, g, (lua_KContext)g, wait_k);
}

/* core.wait_for(task, seconds) -> true if the task finished in time, false
 * if the time ran out first (the task goes on; the caller decides). */
static void wait_for_cleanup(lr_runtime *rt, lr_task *t) {
  lr__group_cleanup(rt, t);
  lr__timer_remove(rt, t);
}

static int wait_for_k(lua_State *L, int status, lua_KContext ctx) {
  lr_task *t = lr__current(L);
  (void)status; (void)ctx;
  lr_runtime *rt = lr__runtime(L);
  lr__group_done(t);
  lr__timer_remove(rt, t);
  lr__check_cancel(L, rt, t);
  lua_pushboolean(L, lr__finished(lr__checktask(L, 1)));
  return 1;
}

static int l_wait_for(lua_State *L) {
  lr_task *c = lr__checktask(L, 1);
  lua_Number s = luaL_checknumber(L, 2);
  luaL_argcheck(L, s >= 0, 2, "seconds must be >= 0");
  lua_settop(L, 2);
  if (c == lr__current(L)) return luaL_error(L, "timeout: a task cannot wait for itself");
  lr_runtime *rt = lr__runtime(L);
  int nres;
  lr_task *t = lr__wait_enter(L, rt, "timeout", l_wait_for, 2, &nres);
  if (!t) return nres;
  if (lr__finished(c)) { lua_pushboolean(L, 1); return 1; }
  lr__wait_yieldable(L, "timeout");
  lr_group *g = lr__group_new(L, "timeout", t, 0);
  lr__group_watch_or_raise(L, "timeout", g, c);
  if (!isinf(s) && lr__timer_add(rt, t, s) != 0) {
    lr__group_leave(g);
    return luaL_error(L, "timeout: not enough memory");
  }
  return lr__park(L, rt, t, &wait_for_kind, g, (lua_KContext)g, wait_for_k);
}

/* core.results(list, n) -> table of each task's first result (all DONE) */
static int l_results(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 2);
  lua_createtable(L, n > 0 && n < INT32_MAX ? (int)n : 0, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lr_task *t = lr__checktask(L, -1);
    if (!lr__finished(t))  /* the list was changed while gather waited */
      return luaL_error(L, "gather: item %I has not finished", i);
    if (t->state != LR_DONE) return reraise(L, -1);
    lr__push_results(L, t, -1, 1);
    lua_rawseti(L, -3, i);
    lua_pop(L, 1);
  }
  return 1;
}

/* core.reraise(task): raise a finished task's error in the caller */
static int l_reraise(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  luaL_argcheck(L, t->state == LR_FAILED || t->state == LR_CANCELLED, 1, "task did not fail");
  return reraise(L, 1);
}

const luaL_Reg lr__gather_funcs[] = {
  {"waitall", l_waitall}, {"results", l_results}, {"reraise", l_reraise}, {"wait_for", l_wait_for},
  {NULL, NULL}
};

void lr__gather_open(void) {
  lr__wait_kind_register(&gather_kind);
  lr__wait_kind_register(&wait_kind);
  lr__wait_kind_register(&wait_for_kind);
}
