/* The timer queue (core/sched/timerq.c): sleepers wake earliest deadline
 * first, through the heap and the FIFO lane; equal deadlines wake in the
 * order they were set, whichever lanes hold them; a cancelled sleeper
 * (a tombstone in the lane) never wakes and the others keep their places;
 * the virtual clock jumps to the next deadline; on the real clock the one
 * timer is armed for the earliest.  The runtime here is only the queue's
 * fields and the tasks are bare structs: lr__wake, which the queue calls, is
 * this file's, and records the order (so ready.c is not linked in: should
 * timerq.c come to need more of it, the link fails on two lr__wake). */
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"
#include "check.h"

#define S 1000000000ull  /* ns a second */

enum { MAX_WOKEN = 200000 };
static lr_task *woken[MAX_WOKEN];
static size_t nwoken;
static uint64_t woken_at[MAX_WOKEN];  /* the runtime's clock at the wake */

void lr__wake(lr_runtime *rt, lr_task *t, int why) {
  if (nwoken < MAX_WOKEN) {
    woken_at[nwoken] = lr__now_ns(rt);
    woken[nwoken] = t;
  }
  nwoken++;
  CHECK_EQ(why, LR_WAKE_OK);
  CHECK_EQ(t->heap_idx, LR_NO_HEAP);  /* out of the queue before it is woken */
}

static lr_runtime *virtual_rt(void) {
  lr_runtime *rt = calloc(1, sizeof *rt);
  lr__set_virtual_time(rt);
  nwoken = 0;
  return rt;
}

static void close_rt(lr_runtime *rt) {
  lr__timers_close(rt);
  free(rt);
}

static lr_task *tasks(size_t n) {
  lr_task *t = calloc(n, sizeof *t);
  for (size_t i = 0; i < n; i++) t[i].heap_idx = LR_NO_HEAP;
  return t;
}

/* advance the virtual clock until no one sleeps; the number of jumps */
static size_t drain(lr_runtime *rt) {
  size_t jumps = 0;
  while (lr__virtual_advance(rt)) jumps++;
  return jumps;
}

/* Deadlines set out of order go to the heap and come out sorted. */
static void test_heap_order(void) {
  lr_runtime *rt = virtual_rt();
  lr_task *t = tasks(6);
  double secs[] = { 5, 4, 3, 2, 1, 0.5 };  /* each earlier than the last: the heap */
  for (int i = 0; i < 6; i++) CHECK_EQ(lr__timer_add(rt, &t[i], secs[i]), 0);
  CHECK_EQ(rt->heap_len, 5);
  CHECK_EQ(rt->fifo_len, 1);  /* the first, alone in the lane */
  CHECK_EQ(drain(rt), 6);
  CHECK_EQ(nwoken, 6);
  for (int i = 0; i < 6; i++) CHECK_EQ((uintptr_t)woken[i], (uintptr_t)&t[5 - i]);
  CHECK_EQ(rt->vnow, 5 * S);
  CHECK_EQ(rt->heap_len + rt->fifo_len, 0);
  free(t);
  close_rt(rt);
}

/* Sleeps of one duration go to the lane, and out in the order they began. */
static void test_fifo_lane(void) {
  lr_runtime *rt = virtual_rt();
  enum { N = 1000 };
  lr_task *t = tasks(N);
  for (int i = 0; i < N; i++) CHECK_EQ(lr__timer_add(rt, &t[i], 0.25), 0);
  CHECK_EQ(rt->fifo_len, N);
  CHECK_EQ(rt->heap_len, 0);
  for (int i = 0; i < N; i++) CHECK(t[i].in_fifo);
  CHECK_EQ(lr__virtual_advance(rt), 1);  /* one jump wakes all: same deadline */
  CHECK_EQ(nwoken, N);
  size_t out_of_order = 0;
  for (int i = 0; i < N; i++) out_of_order += woken[i] != &t[i];
  CHECK_EQ(out_of_order, 0);
  CHECK_EQ(rt->vnow, S / 4);
  CHECK_EQ(lr__virtual_advance(rt), 0);
  free(t);
  close_rt(rt);
}

/* Equal deadlines in both lanes: the lane holds the older ones, the heap
 * the newer; they wake in the order they were set. */
static void test_equal_deadlines(void) {
  lr_runtime *rt = virtual_rt();
  lr_task *t = tasks(7);
  enum { P, Q, R, S5, T, U, V };
  double secs[] = { 3, 1, 3, 5, 3, 3, 5 };
  for (int i = 0; i < 7; i++) CHECK_EQ(lr__timer_add(rt, &t[i], secs[i]), 0);
  CHECK(t[P].in_fifo && t[R].in_fifo && t[S5].in_fifo && t[V].in_fifo);
  CHECK(!t[Q].in_fifo && !t[T].in_fifo && !t[U].in_fifo);
  CHECK_EQ(drain(rt), 3);  /* 1, 3 and 5 s */
  int want[] = { Q, P, R, T, U, S5, V };
  CHECK_EQ(nwoken, 7);
  for (int i = 0; i < 7; i++) CHECK_EQ((uintptr_t)woken[i], (uintptr_t)&t[want[i]]);
  free(t);
  close_rt(rt);
}

/* A deadline equal to the heap's latest goes to the heap, even with the
 * lane empty: in the lane it would wake before the older one. */
static void test_equal_deadline_lane_empty(void) {
  lr_runtime *rt = virtual_rt();
  lr_task *t = tasks(3);
  lr__timer_add(rt, &t[0], 1);    /* the lane */
  lr__timer_add(rt, &t[1], 0.5);  /* the heap */
  lr__timer_remove(rt, &t[0]);    /* the lane is empty again */
  CHECK_EQ(rt->fifo_len, 0);
  lr__timer_add(rt, &t[2], 0.5);  /* equal to the heap's latest */
  CHECK(!t[2].in_fifo);
  CHECK_EQ(drain(rt), 1);
  CHECK_EQ(nwoken, 2);
  CHECK_EQ((uintptr_t)woken[0], (uintptr_t)&t[1]);
  CHECK_EQ((uintptr_t)woken[1], (uintptr_t)&t[2]);
  free(t);
  close_rt(rt);
}

/* Cancelled sleepers leave tombstones in the lane: never woken; the head's
 * go at once, and when they are most of the lane it is compacted; the
 * others keep their order and can still be cancelled after. */
static void test_tombstones(void) {
  lr_runtime *rt = virtual_rt();
  enum { N = 600 };
  lr_task *t = tasks(N);
  for (int i = 0; i < N; i++) lr__timer_add(rt, &t[i], 1);
  lr__timer_remove(rt, &t[0]);             /* the head: popped at once */
  CHECK_EQ(rt->fifo_dead, 0);
  CHECK_EQ(rt->fifo_len, N - 1);
  lr__timer_remove(rt, &t[10]);            /* inside: a tombstone */
  CHECK_EQ(rt->fifo_dead, 1);
  CHECK_EQ(rt->fifo_len, N - 1);
  CHECK(!t[10].in_fifo);
  CHECK_EQ(t[10].heap_idx, LR_NO_HEAP);
  lr__timer_remove(rt, &t[10]);            /* twice: nothing */
  CHECK_EQ(rt->fifo_dead, 1);
  for (int i = 11; i < N; i += 3) lr__timer_remove(rt, &t[i]);  /* a third of the rest */
  CHECK(rt->fifo_dead < rt->fifo_len);
  for (int i = 12; i < N; i += 3) lr__timer_remove(rt, &t[i]);  /* two thirds: compacted */
  CHECK(rt->fifo_dead * 2 <= rt->fifo_len);
  CHECK(rt->fifo_len < N - 1);             /* the tombstones went */
  lr__timer_remove(rt, &t[13 + 3 * 50]);   /* one kept through the compaction */
  CHECK_EQ(drain(rt), 1);
  size_t expect = 0, wrong = 0;
  for (int i = 1; i < N; i++) {
    if (i == 10 || (i > 10 && (i - 11) % 3 != 2) || i == 13 + 3 * 50) continue;
    if (expect >= nwoken || woken[expect] != &t[i]) wrong++;
    expect++;
  }
  CHECK_EQ(nwoken, expect);
  CHECK_EQ(wrong, 0);
  CHECK_EQ(rt->fifo_dead, 0);
  free(t);
  close_rt(rt);
}

/* Cancelling from the heap: the rest still come out sorted. */
static void test_heap_remove(void) {
  lr_runtime *rt = virtual_rt();
  enum { N = 200 };
  lr_task *t = tasks(N);
  for (int i = 0; i < N; i++) lr__timer_add(rt, &t[i], (double)((i * 37) % N + 1) / 100);
  for (int i = 0; i < N; i += 4) lr__timer_remove(rt, &t[i]);
  drain(rt);
  CHECK_EQ(nwoken, N - N / 4);
  size_t unsorted = 0, cancelled = 0;
  for (size_t i = 0; i < nwoken; i++) {
    size_t k = (size_t)(woken[i] - t);
    cancelled += k % 4 == 0;
    if (i && woken_at[i] < woken_at[i - 1]) unsorted++;
    if (woken_at[i] != lr__after_seconds(0, (double)((k * 37) % N + 1) / 100)) unsorted++;
  }
  CHECK_EQ(unsorted, 0);
  CHECK_EQ(cancelled, 0);
  free(t);
  close_rt(rt);
}

/* Random sleeps (few durations, so ties are common) set at many points of
 * the virtual clock, some cancelled, against a model: the order is
 * (deadline, the order they were set), with the cancelled ones missing. */
typedef struct { uint64_t deadline; size_t seq; int cancelled; } model;
static model *cmp_base;
static int by_deadline(const void *x, const void *y) {
  const model *a = &cmp_base[*(const size_t *)x], *b = &cmp_base[*(const size_t *)y];
  if (a->deadline != b->deadline) return a->deadline < b->deadline ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void test_random_against_model(void) {
  lr_runtime *rt = virtual_rt();
  enum { N = 50000 };
  lr_task *t = tasks(N);
  model *m = calloc(N, sizeof *m);
  size_t *order = calloc(N, sizeof *order);
  uint64_t seed = 42;
  size_t added = 0;
  double durations[] = { 0, 0.001, 0.01, 0.01, 0.1, 0.1, 0.1, 0.5, 1, 2.5 };
  while (added < N) {
    size_t burst = 1 + (size_t)((seed >> 40) % 500);
    for (size_t k = 0; k < burst && added < N; k++, added++) {
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      double s = durations[(seed >> 33) % 10];
      m[added].deadline = lr__after_seconds(rt->vnow, s);
      m[added].seq = added;
      CHECK_EQ(lr__timer_add(rt, &t[added], s), 0);
      if ((seed >> 20) % 7 == 0 && added > 0) {  /* cancel an earlier one still asleep */
        size_t v = (size_t)((seed >> 8) % added);
        if (t[v].heap_idx != LR_NO_HEAP) { lr__timer_remove(rt, &t[v]); m[v].cancelled = 1; }
      }
    }
    if ((seed >> 50) % 3) lr__virtual_advance(rt);  /* the clock moves on now and then */
  }
  drain(rt);
  size_t n = 0;
  for (size_t i = 0; i < N; i++) if (!m[i].cancelled) order[n++] = i;
  cmp_base = m;
  qsort(order, n, sizeof *order, by_deadline);
  CHECK_EQ(nwoken, n);
  size_t wrong = 0, early = 0;
  for (size_t i = 0; i < n && i < nwoken; i++) {
    if (woken[i] != &t[order[i]]) wrong++;
    if (woken_at[i] < m[woken[i] - t].deadline) early++;
  }
  CHECK_EQ(wrong, 0);
  CHECK_EQ(early, 0);
  CHECK(rt->heap_len + rt->fifo_len == 0);
  free(order);
  free(m);
  free(t);
  close_rt(rt);
}

/* The virtual clock jumps to the earliest deadline, exactly, and never back;
 * sleep(0) is due at once; nothing asleep: no jump. */
static void test_virtual_clock(void) {
  lr_runtime *rt = virtual_rt();
  lr_task *t = tasks(4);
  CHECK_EQ(lr__virtual_advance(rt), 0);
  CHECK_EQ(rt->vnow, 0);
  lr__timer_add(rt, &t[0], 1.5);
  lr__timer_add(rt, &t[1], 0.25);
  CHECK_EQ(lr__virtual_advance(rt), 1);
  CHECK_EQ(rt->vnow, S / 4);
  CHECK_EQ(nwoken, 1);
  CHECK_EQ((uintptr_t)woken[0], (uintptr_t)&t[1]);
  lr__timer_add(rt, &t[2], 0);           /* due now: woken without moving the clock */
  CHECK_EQ(lr__virtual_advance(rt), 1);
  CHECK_EQ(rt->vnow, S / 4);
  CHECK_EQ((uintptr_t)woken[1], (uintptr_t)&t[2]);
  rt->vnow = 2 * S;                      /* the clock moved past t[0] (blocking_sleep) */
  lr__timer_add(rt, &t[3], 1);
  CHECK_EQ(lr__virtual_advance(rt), 1);  /* t[0] is overdue: no jump back */
  CHECK_EQ(rt->vnow, 2 * S);
  CHECK_EQ((uintptr_t)woken[2], (uintptr_t)&t[0]);
  CHECK_EQ(lr__virtual_advance(rt), 1);
  CHECK_EQ(rt->vnow, 3 * S);
  CHECK_EQ(nwoken, 4);
  lr__timer_add(rt, &t[0], 1e300);       /* saturates, does not wrap */
  CHECK_EQ(lr__virtual_advance(rt), 1);
  CHECK_EQ(rt->vnow, UINT64_MAX);
  free(t);
  close_rt(rt);
}

/* A burst of a hundred thousand sleepers, drained: the lane's ring and the
 * heap give their memory back as they empty. */
static void test_memory_follows_down(void) {
  lr_runtime *rt = virtual_rt();
  enum { N = 100000 };
  lr_task *t = tasks(2 * N);
  for (int i = 0; i < N; i++) lr__timer_add(rt, &t[i], 1);
  for (int i = 0; i < N; i++) lr__timer_add(rt, &t[N + i], 0.5 - i * 1e-9);  /* heap */
  CHECK_EQ(rt->fifo_len, N);
  CHECK_EQ(rt->heap_len, N);
  size_t fifo_cap = rt->fifo_cap;
  drain(rt);
  CHECK_EQ(nwoken, 2 * N);
  CHECK(rt->fifo_cap * sizeof *rt->fifo <= LR_SHRINK_BYTES);
  CHECK(rt->fifo_cap < fifo_cap);
  CHECK(rt->heap == NULL);
  CHECK_EQ(rt->heap_cap, 0);
  free(t);
  close_rt(rt);
}

/* The real clock: the one timer is armed for the earliest deadline, moved
 * when that one is cancelled, stopped when no one sleeps; run, it wakes
 * them in order and none before its deadline. */
static void test_real_clock_timer(void) {
  lr_runtime *rt = calloc(1, sizeof *rt);
  nwoken = 0;
  CHECK_EQ(uv_loop_init(&rt->loop), 0);
  lr__timers_init(rt);
  lr_task *t = tasks(4);
  uint64_t t0 = uv_hrtime();
  lr__timer_add(rt, &t[0], 0.030);
  lr__timer_add(rt, &t[1], 0.010);
  uint64_t first = rt->timer_armed;
  CHECK(first >= t0 + 10000000 && first < t0 + 30000000);
  CHECK(uv_is_active((uv_handle_t *)&rt->timer));
  lr__timer_remove(rt, &t[1]);
  CHECK(rt->timer_armed > first);        /* now for t[0] */
  lr__timer_remove(rt, &t[0]);
  CHECK_EQ(rt->timer_armed, 0);
  CHECK(!uv_is_active((uv_handle_t *)&rt->timer));
  lr__timer_add(rt, &t[2], 0.020);      /* alone in the lane */
  lr__timer_add(rt, &t[3], 0.005);      /* earlier: the heap */
  CHECK(rt->fifo_len == 1 && rt->heap_len == 1);
  uint64_t d2 = rt->fifo[rt->fifo_head].deadline, d3 = rt->heap[0].deadline;
  CHECK_EQ(rt->timer_armed, d3);
  CHECK_EQ(uv_run(&rt->loop, UV_RUN_DEFAULT), 0);  /* returns when the timer is done */
  CHECK_EQ(nwoken, 2);
  CHECK_EQ((uintptr_t)woken[0], (uintptr_t)&t[3]);
  CHECK_EQ((uintptr_t)woken[1], (uintptr_t)&t[2]);
  CHECK(woken_at[0] >= d3);
  CHECK(woken_at[1] >= d2);
  CHECK_EQ(rt->timer_armed, 0);
  uv_close((uv_handle_t *)&rt->timer, NULL);
  uv_run(&rt->loop, UV_RUN_DEFAULT);
  CHECK_EQ(uv_loop_close(&rt->loop), 0);
  free(t);
  close_rt(rt);
}

int main(void) {
  RUN(test_heap_order);
  RUN(test_fifo_lane);
  RUN(test_equal_deadlines);
  RUN(test_equal_deadline_lane_empty);
  RUN(test_tombstones);
  RUN(test_heap_remove);
  RUN(test_random_against_model);
  RUN(test_virtual_clock);
  RUN(test_memory_follows_down);
  RUN(test_real_clock_timer);
  return check_done();
}
