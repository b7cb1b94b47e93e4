/* The runtime: one per Lua state, held in the registry (as luv does).  It owns
 * the libuv loop, the ready queue and the sleepers, and drives them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lr.h"

#define LR_RUNTIME_KEY "lessonrun.runtime"

lr_runtime *lr__runtime(lua_State *L) {
  return (lr_runtime *)lua_touserdata(L, lua_upvalueindex(1));
}

static void on_close(uv_handle_t *h) {
  lr_runtime *rt = h->data;
  rt->handles_open--;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, on_close);
}

/* __gc: by now lua_close (or the collector) has no more Lua to run for us, so
 * we only release C resources: close every handle, let the closes finish. */
static int runtime_gc(lua_State *L) {
  lr_runtime *rt = luaL_checkudata(L, 1, "lessonrun.Runtime");
  if (rt->closed) return 0;
  rt->closed = 1;
  lr__sigint_restore(rt);
  /* parked tasks hold C resources (easy handles, heap slots): let go */
  for (size_t i = 1; i <= rt->nlive; i++) {
    lr_task *t = lr__live_at(rt, i);
    if (t) lr__cleanup(rt, t);
  }
  /* then the groups waiting for them let go (freed when abandoned) */
  for (size_t i = 1; i <= rt->nlive; i++) {
    lr_task *t = lr__live_at(rt, i);
    lr__drop_watchers(t);
    t->ref = LUA_NOREF;
  }
  lr__unref(L, rt, rt->live_ref);
  lr__unref(L, rt, rt->cancel_ref);
  lr__unref(L, rt, rt->trace_names_ref);
  lr__unref(L, rt, rt->warned_ref);
  rt->cancel_ref = rt->trace_names_ref = rt->warned_ref = rt->live_ref = LUA_NOREF;
#ifndef NDEBUG
  if (rt->nrefs != 0) {  /* a path that took a ref and never let it go */
    fprintf(stderr, "lessonrun: %ld registry reference(s) leaked\n", rt->nrefs);
    abort();
  }
#endif
  lr__fetch_close(rt);
  lr__curl_close(rt);
  uv_walk(&rt->loop, close_walk, NULL);
  while ((rt->handles_open > 0 || rt->jobs > 0) && uv_run(&rt->loop, UV_RUN_ONCE) != 0) {}
  uv_run(&rt->loop, UV_RUN_NOWAIT);
  uv_loop_close(&rt->loop);
  lr__timers_close(rt);
  lr__trace_close(rt);
  free(rt->rq);
  rt->rq = NULL;
  return 0;
}

static void sigint_async_cb(uv_async_t *h) {
  lr_runtime *rt = h->data;
  if (rt->sigint_handled == (int)lr__sigint_count) return;
  rt->sigint_handled = (int)lr__sigint_count;
  if (rt->on_sigint) {
    rt->on_sigint(rt, rt->on_sigint_ud);
  } else if (rt->root) {
    rt->interrupted = 1;
    rt->root->interrupted = 1;
    lr__cancel(rt, rt->root);
  }
}

lr_runtime *lr__get_runtime(lua_State *L) {
  lr_runtime *rt;
  if (lua_getfield(L, LUA_REGISTRYINDEX, LR_RUNTIME_KEY) == LUA_TUSERDATA) {
    rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return rt;
  }
  lua_pop(L, 1);
  rt = lua_newuserdatauv(L, sizeof *rt, 0);
  memset(rt, 0, sizeof *rt);
  rt->closed = 1;  /* until the loop is up: __gc must not touch it */
  if (luaL_newmetatable(L, "lessonrun.Runtime")) {
    lua_pushcfunction(L, runtime_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  int err = uv_loop_init(&rt->loop);
  if (err) luaL_error(L, "lessonrun: cannot create the event loop: %s", uv_strerror(err));
  rt->closed = 0;
  rt->loop.data = rt;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  rt->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  /* Tasks are found through their thread's extra space; threads copy the main
   * thread's, so it must say "no task". */
  *(lr_task **)lua_getextraspace(rt->L) = NULL;
  rt->next_id = 1;
  rt->cancel_ref = LUA_NOREF;
  lua_newtable(L);
  rt->live_ref = lr__ref(L, rt);
  rt->trace_names_ref = LUA_NOREF;
  rt->warned_ref = LUA_NOREF;
  rt->warn_blocking = 1;
  lr__timers_init(rt);
  uv_async_init(&rt->loop, &rt->sigint_async, sigint_async_cb);
  rt->sigint_async.data = rt;
  uv_unref((uv_handle_t *)&rt->sigint_async);
  rt->handles_open++;
  lua_setfield(L, LUA_REGISTRYINDEX, LR_RUNTIME_KEY);
  lr__push_cancel(L, rt);  /* made now, so the reference count is steady */
  lua_pop(L, 1);
  return rt;
}

/* Resume every task that is ready now (not those woken meanwhile: they wait
 * for the next round, after the loop has polled once). */
void lr__run_ready(lr_runtime *rt) {
  size_t n = rt->rq_len;
  while (n-- > 0 && rt->rq_len > 0) lr__resume(rt, lr__rq_pop(rt));
}

/* Run the loop once: without blocking if a task is ready, else until an
 * event comes.  A callback that readies a task stops the loop (lr__wake),
 * so an overdue timer does not leave its task waiting for the next one. */
void lr__poll(lr_runtime *rt, int may_block) {
  if (rt->virtual_time && rt->rq_len == 0 && may_block && lr__virtual_advance(rt))
    may_block = 0;  /* simulated time: never wait for a timer */
  rt->polling = 1;
  uv_run(&rt->loop, rt->rq_len > 0 || !may_block ? UV_RUN_NOWAIT : UV_RUN_ONCE);
  rt->polling = 0;
}

void lr__drive_step(lr_runtime *rt, int may_block) {
  lr__run_ready(rt);
  lr__poll(rt, may_block);
}

/* Nothing is ready and no handle can fire: every waiting task waits forever.
 * Wake the newest waiting task (the live array's last, children before
 * parents) with a deadlock error and let that play out: whoever waits for it
 * then sees its error, so a settle over two tasks waiting on each other
 * collects their errors instead of raising one itself.  At shutdown (all)
 * wake every one. */
static int break_deadlock(lr_runtime *rt, int all) {
  int woke = 0;
  for (size_t i = rt->nlive; i >= 1 && (all || !woke); i--) {
    lr_task *t = lr__live_at(rt, i);
    if (t->state == LR_WAITING) {
      lr__cleanup(rt, t);
      lr__wake(rt, t, LR_WAKE_DEADLOCK);
      woke++;
    }
  }
  return woke;
}

/* Drive the loop until task t has finished.  Returns 0, or -1 when a deadlock
 * could not be broken (t will never finish). */
int lr__run_until(lr_runtime *rt, lr_task *t) {
  int rc = 0;
  if (rt->driving++ == 0) lr__sigint_install(rt);
  while (!lr__finished(t)) {
    if (rt->rq_len == 0 && !uv_loop_alive(&rt->loop) && !(rt->virtual_time && (rt->heap_len || rt->fifo_len))) {
      if (!break_deadlock(rt, 0)) { rc = -1; break; }
    }
    lr__run_ready(rt);
    if (lr__finished(t)) break;  /* don't wait for unrelated timers */
    lr__poll(rt, 1);
  }
  if (--rt->driving == 0) lr__sigint_restore(rt);
  return rc;
}

/* After the root task: cancel what is left and let it unwind (as asyncio.run
 * does), so cleanups run and nothing is left parked. */
void lr__shutdown_tasks(lr_runtime *rt) {
  if (rt->driving++ == 0) lr__sigint_install(rt);
  for (int round = 0; rt->nlive > 0 && round < 1000; round++) {
    for (size_t i = rt->nlive; i >= 1; i--) lr__cancel(rt, lr__live_at(rt, i));
    if (rt->rq_len == 0 && !uv_loop_alive(&rt->loop) && !(rt->virtual_time && (rt->heap_len || rt->fifo_len)) &&
        !break_deadlock(rt, 1))
      break;
    lr__run_ready(rt);
    if (rt->nlive == 0) break;
    lr__poll(rt, 1);
  }
  if (--rt->driving == 0) lr__sigint_restore(rt);
}
