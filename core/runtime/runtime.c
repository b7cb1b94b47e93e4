/* The runtime: one per Lua state, held in the registry (as luv does).  It owns
 * the libuv loop, the ready queue and the sleepers, and drives them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"


static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void lr__add_closer(lr_runtime *rt, void (*fn)(lr_runtime *rt, void *ud), void *ud) {
  if (rt->nclosers == LR_MAX_CLOSERS) {  /* a build with more subsystems: raise LR_MAX_CLOSERS */
    fprintf(stderr, "lessonrun: more than %d closers\n", LR_MAX_CLOSERS);
    abort();
  }
  rt->closers[rt->nclosers].fn = fn;
  rt->closers[rt->nclosers++].ud = ud;
}

/* __gc: by now lua_close (or the collector) has no more Lua to run for us, so
 * we only release C resources: close every handle, let the closes finish. */
static int runtime_gc(lua_State *L) {
  lr_runtime *rt = luaL_checkudata(L, 1, "lessonrun.Runtime");
  if (rt->closed) return 0;
  rt->closed = 1;
  lr__sigint_restore(rt);
  /* parked tasks, and woken ones that never ran again, hold C resources
   * (easy handles, heap slots, jobs): let go */
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
  lr__unref(L, rt, rt->nomem_ref);
  rt->nomem_ref = LUA_NOREF;
  rt->cancel_ref = rt->trace_names_ref = rt->warned_ref = rt->live_ref = LUA_NOREF;
#ifndef NDEBUG
  if (rt->nrefs != 0) {  /* a path that took a ref and never let it go */
    fprintf(stderr, "lessonrun: %ld registry reference(s) leaked\n", rt->nrefs);
    abort();
  }
#endif
  while (rt->nclosers > 0) {
    struct lr_closer c = rt->closers[--rt->nclosers];
    c.fn(rt, c.ud);
  }
  /* luv's idiom: close what is left, run until the closes (and any thread
   * pool work still out) have finished, and the loop can go */
  uv_walk(&rt->loop, close_walk, NULL);
  while (uv_loop_close(&rt->loop) == UV_EBUSY) uv_run(&rt->loop, UV_RUN_ONCE);
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
  } else if (rt->shutting_down) {  /* cancelling what the script left: the exit status says so */
    rt->interrupted = 1;
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
  /* if an allocation below fails, __gc must not unref what was never ref'd */
  rt->live_ref = rt->cancel_ref = rt->trace_names_ref = rt->warned_ref = rt->nomem_ref = LUA_NOREF;
  rt->closed = 1;  /* until the loop is up: __gc must not touch it */
  if (luaL_newmetatable(L, "lessonrun.Runtime")) {
    lua_pushcfunction(L, runtime_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lr__std_fds_open();  /* a host started with >&- : libuv must not get fd 0-2 */
  /* libuv 1.44 abort()s when its first loop cannot make its signal pipe:
   * the loop needs about four descriptors, so see that they are there */
  int probe[4] = {-1, -1, -1, -1}, probe_err = 0;
  if (pipe2(probe, O_CLOEXEC) != 0 || pipe2(probe + 2, O_CLOEXEC) != 0) probe_err = errno;
  for (int k = 0; k < 4; k++)
    if (probe[k] >= 0) close(probe[k]);
  if (probe_err) luaL_error(L, "lessonrun: cannot create the event loop: %s", strerror(probe_err));
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
  lua_newtable(L);
  rt->live_ref = lr__ref(L, rt);
  rt->warn_blocking = 1;
  rt->warn_pending = 1;
  rt->root_state = LR_DONE;
  lua_pushliteral(L, "not enough memory");  /* (Lua's own message) */
  rt->nomem_ref = lr__ref(L, rt);
  lr__timers_init(rt);
  lr__trace_init(rt);
  err = uv_async_init(&rt->loop, &rt->sigint_async, sigint_async_cb);
  if (err) luaL_error(L, "lessonrun: cannot create the event loop: %s", uv_strerror(err));
  rt->sigint_async.data = rt;
  rt->drive_hold = lr__drive_hold;
  uv_unref((uv_handle_t *)&rt->sigint_async);
  lua_setfield(L, LUA_REGISTRYINDEX, LR_RUNTIME_KEY);
  lr__push_cancel(L, rt);  /* made now, so the reference count is steady */
  lua_pop(L, 1);
  return rt;
}

/* While shutting down: the allocator, counting its failures.  Near the
 * limit a failed allocation makes Lua collect everything and try again,
 * which often works: no error says memory ran out, yet each cancelled task
 * costs a full collection. */
/* not on the stack (still valid should an error unwind past the shutdown);
 * per thread, as a state is used by one thread at a time */
static _Thread_local struct {
  lua_Alloc f;
  int failed;
} counted;

static void *alloc_counted(void *ud, void *ptr, size_t osize, size_t nsize) {
  void *p = counted.f(ud, ptr, osize, nsize);
  if (!p && nsize > 0) counted.failed = 1;
  return p;
}

/* Out of memory, each resume costs a full collection: at shutdown, stop;
 * when the script is being ended for it (task.c), run only its root, then
 * stop once it has finished. */
static int stop_for_memory(lr_runtime *rt) {
  if (rt->shutting_down && counted.failed) rt->oom = 1;
  if (!rt->oom) return 0;
  if (rt->shutting_down) return 1;
  if (rt->oom == 2) return rt->rq[rt->rq_head] != rt->root;
  return rt->root && lr__finished(rt->root);
}

/* Resume every task that is ready now (not those woken meanwhile: they wait
 * for the next round, after the loop has polled once). */
void lr__run_ready(lr_runtime *rt) {
  size_t n = rt->rq_len;
  while (n-- > 0 && rt->rq_len > 0 && !stop_for_memory(rt)) lr__resume(rt, lr__rq_pop(rt));
  if (rt->unobserved && rt->nfailed != rt->nfailed_collected && rt->rq_len == 0)
    lr__collect_unobserved(rt);
}

/* A task failed and nobody has looked at its error yet: if its handle is
 * garbage already, a collection reports it now rather than at some later
 * collection or at exit.  Run when nothing is ready (a waiter that will look
 * has had its turn), once per batch of failures, and at most a twentieth of
 * the time, whatever the heap's size. */
void lr__collect_unobserved(lr_runtime *rt) {
  uint64_t t0 = uv_hrtime();
  if (t0 < rt->collect_after || rt->shutting_down) return;
  rt->nfailed_collected = rt->nfailed;
  lua_gc(rt->L, LUA_GCCOLLECT);
  uint64_t t1 = uv_hrtime();
  rt->collect_after = t1 + 20 * (t1 - t0);
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

void lr__step(lr_runtime *rt, int what, lr_task *until) {
  if (what & LR_STEP_READY) lr__run_ready(rt);
  if (until && lr__finished(until)) return;  /* don't wait for unrelated timers */
  if (what & LR_STEP_POLL) lr__poll(rt, 1);
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
    lr__step(rt, LR_STEP_READY | LR_STEP_POLL, t);
  }
  if (--rt->driving == 0) lr__sigint_restore(rt);
  return rc;
}

/* Where a parked task is, for the warning below: its innermost frame in Lua
 * code that is not lessonrun's own ("x.lua:7"), looking a few frames down. */
static void where_waiting(lr_task *t, char *buf, size_t n) {
  lua_Debug ar;
  snprintf(buf, n, "%s", t->state == LR_PENDING ? "not started" : "in C code");
  if (!t->co || t->state == LR_PENDING) return;
  for (int level = 0; level < 16 && lua_getstack(t->co, level, &ar); level++) {
    if (lua_getinfo(t->co, "Sl", &ar) && ar.currentline > 0 &&
        !lr__our_source(ar.source, strlen(ar.source))) {
      snprintf(buf, n, "at %s:%d", ar.short_src, ar.currentline);
      return;
    }
  }
}

/* The script ended with tasks still running: name a few, and where they are
 * (they are cancelled next, which a script may mean: pending_warnings(false)). */
static void warn_pending(lr_runtime *rt) {
  lua_State *L = rt->L;
  size_t n = 0, shown = 0;
  for (size_t i = 1; i <= rt->nlive; i++) {
    lr_task *t = lr__live_at(rt, i);
    if (t != rt->root && !t->cancel_requested) n++;  /* (cancel() asked for: the script's choice) */
  }
  if (n == 0 || !lua_checkstack(L, 8)) return;
  fprintf(stderr, "lessonrun: warning: the script ended with %zu task%s still running; cancelling %s:\n",
          n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
  for (size_t i = 1; i <= rt->nlive && shown < 5; i++) {
    lr_task *t = lr__live_at(rt, i);
    if (t == rt->root || t->cancel_requested) continue;
    char where[LUA_IDSIZE + 32];
    where_waiting(t, where, sizeof where);
    lr__push_name(L, rt, t, 0);
    size_t len;
    const char *name = lua_tolstring(L, -1, &len);
    lr__push_redacted(L, name, len);  /* a name the script gave may hold a URL */
    fprintf(stderr, "  %s, %s\n", lua_tostring(L, -1), where);
    lua_pop(L, 2);
    shown++;
  }
  if (n > shown) fprintf(stderr, "  and %zu more\n", n - shown);
  fprintf(stderr, "  (wait for %s, or call pending_warnings(false) if leaving %s is intended)\n",
          n == 1 ? "it" : "them", n == 1 ? "it" : "them");
  fflush(stderr);
}

/* After the root task: cancel what is left and let it unwind (as asyncio.run
 * does), so cleanups run and nothing is left parked.  If memory runs out
 * meanwhile, stop: each further task would cost a full emergency collection,
 * and lua_close still lets go of what they hold. */
void lr__shutdown_tasks(lr_runtime *rt) {
  if (rt->warn_pending && rt->nlive > 0 && !rt->interrupted && rt->root_state == LR_DONE) warn_pending(rt);
  if (rt->driving++ == 0) lr__sigint_install(rt);
  rt->shutting_down = 1;
  int ran_out = rt->oom;  /* during the script: kept for its exit status (state.c) */
  rt->oom = 0;
  void *ud;
  lua_Alloc f = lua_getallocf(rt->L, &ud);
  if (f != alloc_counted) {
    counted.f = f;
    lua_setallocf(rt->L, alloc_counted, ud);
  }
  counted.failed = 0;
  for (int round = 0; rt->nlive > 0 && round < 1000 && !rt->oom; round++) {
    for (size_t i = rt->nlive; i >= 1; i--) lr__cancel(rt, lr__live_at(rt, i));
    if (rt->rq_len == 0 && !uv_loop_alive(&rt->loop) && !(rt->virtual_time && (rt->heap_len || rt->fifo_len)) &&
        !break_deadlock(rt, 1))
      break;
    lr__run_ready(rt);
    if (rt->nlive == 0 || rt->oom) break;
    lr__poll(rt, 1);
  }
  if (rt->oom && rt->nlive > 0) {
    fprintf(stderr, "lessonrun: not enough memory to cancel the %zu task%s left at exit\n", rt->nlive,
            rt->nlive == 1 ? "" : "s");
    fflush(stderr);
  }
  if (f != alloc_counted) lua_setallocf(rt->L, f, ud);
  rt->oom |= counted.failed;
  rt->shutting_down = 0;
  rt->oom |= ran_out;
  if (--rt->driving == 0) lr__sigint_restore(rt);
}
