/* The host interface: what an executable that drives the runtime itself
 * between its own reads (the REPL) asks of it, so that it never sets the
 * runtime's fields.  Scripts are run by lr__exec (embed/state.c) and need
 * only the setters at the end. */
#include "runtime/runtime.h"

void lr__host_begin(lr_runtime *rt, lr_host_sigint on_sigint, void *ud) {
  rt->on_sigint = on_sigint;
  rt->on_sigint_ud = ud;
  rt->driving++;
  lr__sigint_install(rt);
}

void lr__host_end(lr_runtime *rt) {
  rt->on_sigint = NULL;
  rt->driving--;
  lr__sigint_restore(rt);
  lr__shutdown_tasks(rt);
}

/* lua_CFunction(rt, what, until): the step, protected: resuming tasks and
 * the loop's callbacks push Lua values, and may run out of memory. */
static int pstep(lua_State *L) {
  lr_runtime *rt = lua_touserdata(L, 1);
  int what = (int)lua_tointeger(L, 2);
  lr_task *until = lua_touserdata(L, 3);
  lr__step(rt, what, until);
  return 0;
}

int lr__host_step(lr_runtime *rt, int what, lr_task *until) {
  lua_State *L = rt->L;
  lua_pushcfunction(L, pstep);
  lua_pushlightuserdata(L, rt);
  lua_pushinteger(L, what);
  lua_pushlightuserdata(L, until);
  int st = lua_pcall(L, 3, 0, 0);
  if (st != LUA_OK) rt->polling = 0;  /* the error may have left uv_run */
  return st;
}

size_t lr__host_ready(lr_runtime *rt) { return rt->rq_len; }

void lr__host_root_begin(lr_runtime *rt, lr_task *t) { rt->root = t; }

void lr__host_root_end(lr_runtime *rt) {
  rt->root = NULL;
  rt->interrupted = 0;
  lr__host_sigint_forget(rt);
}

void lr__host_sigint_forget(lr_runtime *rt) { lr__sigint_count = rt->sigint_handled; }

void lr__host_interrupt(lr_runtime *rt, lr_task *t) {
  t->interrupted = 1;
  lr__cancel(rt, t);
}

int lr__host_interrupted(lr_runtime *rt, lr_task *t) { return t->interrupted || rt->interrupted; }

int lr__host_poll_init(lr_runtime *rt, uv_poll_t *h, int fd) {
  return uv_poll_init(&rt->loop, h, fd);
}

void lr__host_close(lr_runtime *rt, uv_handle_t *h) {
  uv_close(h, NULL);
  uv_run(&rt->loop, UV_RUN_NOWAIT);
}

void lr__host_set_trace(lr_runtime *rt, int on) { rt->trace = on; }

void lr__host_set_blocking_warnings(lr_runtime *rt, int on) { rt->warn_blocking = on; }

void lr__host_set_virtual_time(lr_runtime *rt) { lr__set_virtual_time(rt); }
