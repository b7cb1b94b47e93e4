/* The timer queue: every sleeper's deadline, in one binary min-heap and a
 * FIFO lane, behind one uv_timer_t armed for the earliest, so a sleeping
 * task costs a slot, not a handle and a malloc; under --virtual-time the
 * driver moves the clock instead (lr__virtual_advance). */
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"
#include "base/heap.h"

/* ---- the heap ------------------------------------------------------------ */

/* equal deadlines leave in the order they came (seq) */
#define SLEEPER_BEFORE(x, y) \
  ((x)->deadline < (y)->deadline || ((x)->deadline == (y)->deadline && (x)->seq < (y)->seq))
#define SLEEPER_MOVED(a, i) ((a)[i].task->heap_idx = (uint32_t)(i))
LR_HEAP_DEFINE(sleepers, lr_sleeper, SLEEPER_BEFORE, SLEEPER_MOVED)

static void heap_remove(lr_runtime *rt, size_t i) {
  rt->heap[i].task->heap_idx = LR_NO_HEAP;
  if (rt->heap_len == 1) {
    rt->heap_len = 0;
    rt->heap_max = 0;
    if (rt->heap_cap * sizeof *rt->heap > LR_SHRINK_BYTES) {
      free(rt->heap);
      rt->heap = NULL;
      rt->heap_cap = 0;
    }
    return;
  }
  sleepers_remove(rt->heap, &rt->heap_len, i);
}

/* ---- the FIFO lane ------------------------------------------------------- */

/* Sleeps of one duration end in the order they began, so their deadlines
 * arrive sorted: they go to a ring, in and out in O(1), instead of sifting
 * through the heap (each step of which writes to another task's memory).
 * Only a deadline earlier than the last one queued goes to the heap.  A
 * cancelled sleeper leaves a tombstone (task NULL), dropped when it reaches
 * the head or when tombstones are half the ring.
 *
 * Entries carry no seq.  Equal deadlines still wake in the order they were
 * set: a sleeper joins the ring only with a deadline later than any in the
 * heap (heap_max), so on a tie the ring's head is the older, and wins. */

#define FIFO_AT(rt, off) ((rt)->fifo[((rt)->fifo_head + (off)) % (rt)->fifo_cap])

static int fifo_push(lr_runtime *rt, lr_fifo_sleeper e) {
  if (rt->fifo_len == rt->fifo_cap) {
    lr_fifo_sleeper *q = lr__ring_grow(rt->fifo, sizeof *q, rt->fifo_head, rt->fifo_len, &rt->fifo_cap,
                                       rt->fifo_len + 1);
    if (!q) return -1;
    rt->fifo = q;
  }
  FIFO_AT(rt, rt->fifo_len) = e;
  e.task->heap_idx = rt->fifo_base + (uint32_t)rt->fifo_len;
  e.task->in_fifo = 1;
  rt->fifo_len++;
  return 0;
}

static void fifo_pop(lr_runtime *rt) {
  lr_fifo_sleeper *e = &rt->fifo[rt->fifo_head];
  if (e->task) { e->task->heap_idx = LR_NO_HEAP; e->task->in_fifo = 0; }
  else rt->fifo_dead--;
  rt->fifo_head = (rt->fifo_head + 1) % rt->fifo_cap;
  rt->fifo_len--;
  rt->fifo_base++;
  if (rt->fifo_len <= rt->fifo_cap / 4 && rt->fifo_cap * sizeof *rt->fifo > LR_SHRINK_BYTES) {
    /* (positions count from the head: they stay right) */
    rt->fifo = lr__ring_shrink(rt->fifo, sizeof *rt->fifo, &rt->fifo_head, rt->fifo_len, &rt->fifo_cap);
  }
}

static void fifo_compact(lr_runtime *rt) {
  size_t n = 0;
  for (size_t i = 0; i < rt->fifo_len; i++) {
    lr_fifo_sleeper e = FIFO_AT(rt, i);
    if (!e.task) continue;
    FIFO_AT(rt, n) = e;
    e.task->heap_idx = rt->fifo_base + (uint32_t)n;
    n++;
  }
  rt->fifo_len = n;
  rt->fifo_dead = 0;
}

static void fifo_remove(lr_runtime *rt, lr_task *t) {
  FIFO_AT(rt, (uint32_t)(t->heap_idx - rt->fifo_base)).task = NULL;
  t->heap_idx = LR_NO_HEAP;
  t->in_fifo = 0;
  rt->fifo_dead++;
  while (rt->fifo_len > 0 && !rt->fifo[rt->fifo_head].task) fifo_pop(rt);
  if (rt->fifo_dead > 64 && rt->fifo_dead * 2 > rt->fifo_len) fifo_compact(rt);
}

enum { NO_LANE, HEAP_LANE, FIFO_LANE };

/* Which lane holds the sleeper due first, and its deadline. */
static int earliest(lr_runtime *rt, uint64_t *deadline) {
  if (rt->fifo_len && (!rt->heap_len || rt->fifo[rt->fifo_head].deadline <= rt->heap[0].deadline)) {
    *deadline = rt->fifo[rt->fifo_head].deadline;
    return FIFO_LANE;
  }
  if (rt->heap_len) {
    *deadline = rt->heap[0].deadline;
    return HEAP_LANE;
  }
  return NO_LANE;
}

static void timer_cb(uv_timer_t *h);

/* (Re)arm the one timer for the earliest deadline. */
static void arm(lr_runtime *rt) {
  if (rt->virtual_time) return;  /* the driver advances the clock itself */
  uint64_t d;
  if (earliest(rt, &d) == NO_LANE) {
    if (rt->timer_armed) uv_timer_stop(&rt->timer);
    rt->timer_armed = 0;
    return;
  }
  if (rt->timer_armed == d) return;
  uv_update_time(&rt->loop);
  uint64_t now = uv_hrtime();
  uint64_t ms = d > now ? (d - now + 999999) / 1000000 : 0;
  uv_timer_start(&rt->timer, timer_cb, ms, 0);
  rt->timer_armed = d;
}

/* Wake every sleeper due by now, earliest first. */
static void wake_due(lr_runtime *rt, uint64_t now) {
  uint64_t d;
  int lane;
  while ((lane = earliest(rt, &d)) != NO_LANE && d <= now) {
    lr_task *t;
    if (lane == HEAP_LANE) {
      t = rt->heap[0].task;
      heap_remove(rt, 0);
    } else {
      t = rt->fifo[rt->fifo_head].task;
      fifo_pop(rt);
      while (rt->fifo_len > 0 && !rt->fifo[rt->fifo_head].task) fifo_pop(rt);
    }
    lr__wake(rt, t, LR_WAKE_OK);
  }
}

static void timer_cb(uv_timer_t *h) {
  lr_runtime *rt = h->data;
  uint64_t now = uv_hrtime();
  rt->timer_armed = 0;
  wake_due(rt, now);
  arm(rt);
}

/* Sleepers whose time has come (they are held up if nothing runs them). */
static size_t overdue(lr_runtime *rt, size_t i, uint64_t now) {
  if (i >= rt->heap_len || rt->heap[i].deadline > now) return 0;
  return 1 + overdue(rt, 2 * i + 1, now) + overdue(rt, 2 * i + 2, now);
}

size_t lr__overdue(lr_runtime *rt) {
  uint64_t now = lr__now_ns(rt);
  size_t n = overdue(rt, 0, now);
  for (size_t i = 0; i < rt->fifo_len && FIFO_AT(rt, i).deadline <= now; i++)
    n += FIFO_AT(rt, i).task != NULL;
  return n;
}

/* Virtual clock: nothing is ready, so jump to the earliest deadline and
 * wake everyone due then.  Returns 0 if no one sleeps. */
int lr__virtual_advance(lr_runtime *rt) {
  uint64_t d;
  if (earliest(rt, &d) == NO_LANE) return 0;
  if (d > rt->vnow) rt->vnow = d;
  wake_due(rt, rt->vnow);
  return 1;
}

void lr__set_virtual_time(lr_runtime *rt) {
  rt->virtual_time = 1;
  rt->vnow = 0;
  rt->t0 = 0;
}

void lr__timers_init(lr_runtime *rt) {
  uv_timer_init(&rt->loop, &rt->timer);
  rt->timer.data = rt;
  rt->t0 = uv_hrtime();
}

void lr__timers_close(lr_runtime *rt) {
  free(rt->heap);
  rt->heap = NULL;
  rt->heap_len = rt->heap_cap = 0;
  free(rt->fifo);
  rt->fifo = NULL;
  rt->fifo_len = rt->fifo_cap = rt->fifo_head = rt->fifo_dead = 0;
}

/* Put t among the sleepers, to be woken after s seconds (s finite, >= 0):
 * in the FIFO lane if its deadline is not before the last one there (every
 * sleep of one duration) and after every one in the heap, else in the heap. */
int lr__timer_add(lr_runtime *rt, lr_task *t, lua_Number s) {
  uint64_t d = lr__after_seconds(lr__now_ns(rt), s);
  if (rt->heap_len + rt->fifo_len >= LR_NO_HEAP - 1) return -1;
  if ((rt->fifo_len == 0 || FIFO_AT(rt, rt->fifo_len - 1).deadline <= d) &&
      (rt->heap_len == 0 || rt->heap_max < d)) {
    lr_fifo_sleeper e = { d, t };
    if (fifo_push(rt, e) != 0) return -1;
  } else {
    lr_sleeper e = { d, rt->heap_seq++, t };
    if (rt->heap_len == rt->heap_cap) {
      size_t cap = rt->heap_cap ? rt->heap_cap * 2 : 64;
      lr_sleeper *h = lr__advise_huge(realloc(rt->heap, cap * sizeof *h), cap * sizeof *h);
      if (!h) return -1;
      rt->heap = h;
      rt->heap_cap = cap;
    }
    sleepers_push(rt->heap, &rt->heap_len, e);
    if (d > rt->heap_max) rt->heap_max = d;
  }
  arm(rt);
  return 0;
}

void lr__timer_remove(lr_runtime *rt, lr_task *t) {
  if (t->heap_idx == LR_NO_HEAP) return;
  if (t->in_fifo) fifo_remove(rt, t);
  else heap_remove(rt, t->heap_idx);
  arm(rt);
}
