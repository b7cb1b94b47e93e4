/* Groups: a task waiting for tasks (gather, wait, timeout).  A group costs
 * nothing per child: each unfinished child points to it (lr_task.watch) and
 * it counts them (sched.h says who frees it). */
#include <stdlib.h>

#include "sched/sched.h"

lr_group *lr__group_new(lua_State *L, const char *fname, lr_task *waiter, int failfast) {
  lr_group *g = malloc(sizeof *g);
  if (!g) luaL_error(L, "%s: not enough memory", fname);
  g->waiter = waiter;
  g->first_failed = NULL;
  g->pending = 0;
  g->failfast = failfast;
  return g;
}

/* The waiter lets go: its wait is over or abandoned. */
void lr__group_leave(lr_group *g) {
  g->waiter = NULL;
  if (g->pending == 0) free(g);
}

/* A child lets go (it finished, or the runtime is closing). */
static void group_release(lr_group *g) {
  if (--g->pending == 0 && !g->waiter) free(g);
}

/* Make group g wait for the unfinished task c; 0, or -1 if out of memory.
 * Groups whose waiter has let go are dropped on the way, so that a task
 * waited on with a timeout again and again does not collect them. */
int lr__group_watch(lr_group *g, lr_task *c) {
  if (!c->many_watchers) {
    lr_group *old = c->watch.one;
    if (!old || !old->waiter) {
      if (old) group_release(old);
      c->watch.one = g;
      g->pending++;
      return 0;
    }
    lr_watchers *w = malloc(sizeof *w + 4 * sizeof w->group[0]);
    if (!w) return -1;
    w->n = 1;
    w->cap = 4;
    w->group[0] = old;
    c->watch.many = w;
    c->many_watchers = 1;
  }
  lr_watchers *w = c->watch.many;
  size_t n = 0;
  for (size_t i = 0; i < w->n; i++) {
    if (w->group[i]->waiter) w->group[n++] = w->group[i];
    else group_release(w->group[i]);
  }
  w->n = n;
  if (w->n == w->cap) {
    lr_watchers *bigger = realloc(w, sizeof *w + 2 * w->cap * sizeof w->group[0]);
    if (!bigger) return -1;
    bigger->cap *= 2;
    c->watch.many = w = bigger;
  }
  w->group[w->n++] = g;
  g->pending++;
  return 0;
}

/* Child t has finished: tell the group (if its waiter still waits), let go. */
static void group_notify(lr_runtime *rt, lr_group *g, lr_task *t) {
  if (g->waiter) {
    int failed = t->state != LR_DONE;
    if (failed && !g->first_failed) g->first_failed = t;
    else if (failed && g->failfast) lr__observe(t);  /* gather raises the first: this one is its too (as asyncio's) */
    if (g->pending == 1 || (failed && g->failfast)) lr__wake(rt, g->waiter, LR_WAKE_OK);
  }
  group_release(g);
}

/* Let go of every group waiting for t (t finished, or the runtime closes). */
static void drop_watchers(lr_runtime *rt, lr_task *t) {
  if (t->many_watchers) {
    lr_watchers *w = t->watch.many;
    for (size_t i = 0; i < w->n; i++) {
      if (rt) group_notify(rt, w->group[i], t);
      else group_release(w->group[i]);
    }
    free(w);
    t->many_watchers = 0;
  } else if (t->watch.one) {
    if (rt) group_notify(rt, t->watch.one, t);
    else group_release(t->watch.one);
  }
  t->watch.one = NULL;
}

/* For the runtime's __gc: t will never finish. */
void lr__drop_watchers(lr_task *t) { drop_watchers(NULL, t); }

/* Watch the unfinished task c, or let go of g and raise. */
void lr__group_watch_or_raise(lua_State *L, const char *fname, lr_group *g, lr_task *c) {
  if (lr__group_watch(g, c) != 0) {
    lr__group_leave(g);
    luaL_error(L, "%s: not enough memory", fname);
  }
}

lr_task *lr__group_done(lr_task *t) {
  lr_group *g = t->park_data;
  if (!g) return NULL;
  lr_task *first_failed = g->first_failed;
  lr__group_leave(g);
  t->park_data = NULL;
  return first_failed;
}

/* A parked waiter lets go of its group once: in its continuation, or in
 * this cleanup if the wait is abandoned (cancel, deadlock, shutdown), which
 * the continuation then sees as park_data == NULL. */
void lr__group_cleanup(lr_runtime *rt, lr_task *t) {
  (void)rt;
  if (t->park_data) lr__group_leave(t->park_data);
  t->park_data = NULL;
}

/* t finished: tell every group waiting for it, and let go of them. */
void lr__notify_watchers(lr_runtime *rt, lr_task *t) { drop_watchers(rt, t); }
