/* The uv thread: the timers of /delay (see internal.h).  Delays come in
 * through a queue under s->mu, wait in a heap by due time with one timerfd
 * armed for the earliest, and leave by resuming their connection. */
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/heap.h"
#include "server/internal.h"

struct lr_delay {
  struct MHD_Connection *conn;
  uint64_t due;             /* ns on uv_hrtime's clock (CLOCK_MONOTONIC) */
  lr_delay *next;           /* in the queue */
};

static void resume(lr_delay *d) {
  MHD_resume_connection(d->conn);
  free(d);
}

#define DUE_BEFORE(x, y) ((*(x))->due < (*(y))->due)
LR_HEAP_DEFINE(delays, lr_delay *, DUE_BEFORE, LR_HEAP_UNTRACKED)

static int heap_push(lr_server *s, lr_delay *d) {
  if (s->heap_len == s->heap_cap) {
    size_t cap = s->heap_cap ? 2 * s->heap_cap : 64;
    lr_delay **h = realloc(s->heap, cap * sizeof *h);
    if (!h) return -1;
    s->heap = h;
    s->heap_cap = cap;
  }
  delays_push(s->heap, &s->heap_len, d);
  return 0;
}

static lr_delay *heap_pop(lr_server *s) {
  lr_delay *top = s->heap[0];
  delays_remove(s->heap, &s->heap_len, 0);
  return top;
}

/* Arms the timerfd for the earliest delay (absolute), or disarms it. */
static void arm(lr_server *s) {
  struct itimerspec its = {0};
  if (s->heap_len) {
    uint64_t due = s->heap[0]->due ? s->heap[0]->due : 1;  /* 0 would disarm */
    its.it_value.tv_sec = (time_t)(due / 1000000000u);
    its.it_value.tv_nsec = (long)(due % 1000000000u);
  }
  if (timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
    /* cannot wait: answer now rather than never */
    while (s->heap_len) resume(heap_pop(s));
  }
}

static void on_due(uv_poll_t *p, int status, int events) {
  lr_server *s = p->data;
  (void)status; (void)events;
  uint64_t expirations;
  if (read(s->tfd, &expirations, sizeof expirations) < 0) { /* EAGAIN: spurious */ }
  uint64_t now = uv_hrtime();
  while (s->heap_len && s->heap[0]->due <= now) resume(heap_pop(s));
  arm(s);
}

static void on_async(uv_async_t *a) {
  lr_server *s = a->data;
  uv_mutex_lock(&s->mu);
  lr_delay *q = s->queue_head;
  s->queue_head = s->queue_tail = NULL;
  int stopping = s->stopping;
  uv_mutex_unlock(&s->mu);
  while (q) {
    lr_delay *d = q;
    q = q->next;
    if (stopping || heap_push(s, d) != 0) resume(d);
  }
  if (stopping) {
    /* MHD must not be stopped with suspended connections: resume them all,
     * then close the handles so uv_run returns */
    while (s->heap_len) resume(heap_pop(s));
    uv_close((uv_handle_t *)&s->tpoll, NULL);
    uv_close((uv_handle_t *)&s->async, NULL);
    return;
  }
  arm(s);
}

void *lr__delays_main(void *arg) {
  lr_server *s = arg;
  (void)prctl(PR_SET_TIMERSLACK, 1UL);  /* the default 50 us is late for a latency server */
  (void)uv_run(&s->loop, UV_RUN_DEFAULT);  /* returns once stopping closed every handle */
  return NULL;
}

int lr__delays_open(lr_server *s) {
  int rc = uv_loop_init(&s->loop);
  if (rc != 0) return rc;
  if ((rc = uv_async_init(&s->loop, &s->async, on_async)) != 0) goto fail_async;
  if ((rc = uv_poll_init(&s->loop, &s->tpoll, s->tfd)) != 0) goto fail_poll;
  (void)uv_poll_start(&s->tpoll, UV_READABLE, on_due);  /* an initialised poll: cannot fail */
  s->async.data = s;
  s->tpoll.data = s;
  return 0;

fail_poll:
  uv_close((uv_handle_t *)&s->async, NULL);
  (void)uv_run(&s->loop, UV_RUN_DEFAULT);  /* runs the close */
fail_async:
  (void)uv_loop_close(&s->loop);  /* nothing open: cannot fail */
  return rc;
}

void lr__delays_close(lr_server *s) {
  uv_close((uv_handle_t *)&s->async, NULL);
  uv_close((uv_handle_t *)&s->tpoll, NULL);
  (void)uv_run(&s->loop, UV_RUN_DEFAULT);  /* runs the closes */
  (void)uv_loop_close(&s->loop);
}

/* Wakes the uv thread to resume everything and exit, then joins it. */
int lr__delays_stop(lr_server *s) {
  uv_mutex_lock(&s->mu);
  s->stopping = 1;
  int rc = uv_async_send(&s->async);
  uv_mutex_unlock(&s->mu);
  if (rc != 0 || pthread_join(s->thread, NULL) != 0) return -1;
  return uv_loop_close(&s->loop) == 0 ? 0 : -1;
}

int lr__delays_stopping(lr_server *s) {
  uv_mutex_lock(&s->mu);
  int stopping = s->stopping;
  uv_mutex_unlock(&s->mu);
  return stopping;
}

int lr__delays_add(lr_server *s, struct MHD_Connection *c, uint64_t due) {
  lr_delay *d = calloc(1, sizeof *d);
  if (!d) return -2;
  d->conn = c;
  d->due = due;
  /* Suspending under the lock means the uv thread, which must take it to
   * see this delay, cannot resume the connection before it is suspended. */
  uv_mutex_lock(&s->mu);
  if (s->stopping || uv_async_send(&s->async) != 0) {
    uv_mutex_unlock(&s->mu);
    free(d);
    return -1;
  }
  if (s->queue_tail) s->queue_tail->next = d;
  else s->queue_head = d;
  s->queue_tail = d;
  MHD_suspend_connection(c);
  uv_mutex_unlock(&s->mu);
  return 0;
}
