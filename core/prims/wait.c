/* The start of every wait point (sleep, gather, wait, timeout, acquire,
 * offload, fetch): find the calling task and deliver a pending cancellation.
 * Called outside any task with no loop being driven (a stock lua5.4 prompt,
 * a plain Lua main chunk), the call runs as a task and the loop is driven
 * until it is done: that is the runtime's job, so the scheduler never
 * drives the loop itself. */
#include "prims/prims.h"

void lr__drive_task(lua_State *L, lr_runtime *rt, lr_task *t, const char *fname) {
  lr_task *saved_root = rt->root;
  if (!saved_root) rt->root = t;
  int rc = lr__run_until(rt, t);
  rt->root = saved_root;
  if (rc < 0) luaL_error(L, "%s: deadlock", fname);
}

/* Outside any task: self(stack[1..nargs]) as a task, driven to its end;
 * returns its results, or raises its error. */
static int drive_call(lua_State *L, lr_runtime *rt, const char *fname, lua_CFunction self, int nargs) {
  if (rt->driving)
    return luaL_error(L, "%s: must be called from a task (this is a plain coroutine or a "
                         "callback; use spawn to start a task)", fname);
  lua_settop(L, nargs);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, self, 1);
  lua_insert(L, 1);
  lr_task *t = lr__spawn(L, rt, 1, nargs);
  lr__drive_task(L, rt, t, fname);
  if (t->state == LR_DONE) return lr__push_results(L, t, lua_gettop(L), 0);
  lr__push_error(L, t);
  return lua_error(L);
}

lr_task *lr__wait_enter(lua_State *L, lr_runtime *rt, const char *fname, lua_CFunction self, int nargs,
                        int *nres) {
  lr_task *t = lr__current(L);
  if (!t) {
    *nres = drive_call(L, rt, fname, self, nargs);
    return NULL;
  }
  lr__check_cancel(L, rt, t);
  return t;
}

void lr__wait_yieldable(lua_State *L, const char *fname) {
  if (!lua_isyieldable(L))
    luaL_error(L, "%s: cannot wait here (inside a metamethod or a C function that cannot yield)", fname);
}
