/* The ready queue: a ring of the tasks that will be resumed, in order, and
 * waking a parked task onto it.  The driver (runtime/) pops from it. */
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"

/* A task is in the ready queue at most once, and only while unfinished, so
 * a queue with room for every live task never has to grow where growing
 * could fail without a way to say so (a wake in a libuv callback, the
 * cancellations at shutdown): spawn makes that room, or raises. */
int lr__rq_reserve(lr_runtime *rt, size_t n) {
  lr_task **q = lr__ring_grow(rt->rq, sizeof *q, rt->rq_head, rt->rq_len, &rt->rq_cap, n);
  if (!q) return -1;
  rt->rq = q;
  return 0;
}

void lr__rq_push(lr_runtime *rt, lr_task *t) {
  /* rq_len < nlive <= rq_cap: see lr__rq_reserve */
  rt->rq[(rt->rq_head + rt->rq_len) % rt->rq_cap] = t;
  rt->rq_len++;
}

lr_task *lr__rq_pop(lr_runtime *rt) {
  lr_task *t = rt->rq[rt->rq_head];
  rt->rq_head = (rt->rq_head + 1) % rt->rq_cap;
  rt->rq_len--;
  /* (never below the live tasks, nor gone while any is live: lr__rq_reserve) */
  if (rt->rq_len <= rt->rq_cap / 4 && rt->nlive <= rt->rq_cap / 2 && (rt->rq_len || !rt->nlive) &&
      rt->rq_cap * sizeof *rt->rq > LR_SHRINK_BYTES) {
    rt->rq = lr__ring_shrink(rt->rq, sizeof *rt->rq, &rt->rq_head, rt->rq_len, &rt->rq_cap);
  }
  return t;
}

void lr__wake(lr_runtime *rt, lr_task *t, int why) {
  if (t->state != LR_WAITING) return;
  if (rt->trace) lr__trace(rt, LR_EV_WAKE, t, 0);
  /* t->wait stays until its cleanup runs: if it never does (out of memory at
   * shutdown), the runtime's close still lets go of what it was given */
  t->wake = why;
  t->state = LR_READY;
  lr__rq_push(rt, t);
  if (rt->polling) uv_stop(&rt->loop);  /* let the driver run it now */
}
