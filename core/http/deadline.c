/* A fetch's own deadline, beside curl's CURLOPT_TIMEOUT_MS: libcurl 7.88's
 * multi interface can drop a deadline that falls while it connects (it
 * waits for its happy-eyeballs timer instead: CHANGELOG.md), so this timer
 * fails the transfer itself if curl has not by then. */
#include <stdio.h>
#include <stdlib.h>

#include "base/curl_api.h"
#include "http/http.h"

/* Lifetime: made by lr__deadline_start, freed in its close callback, as
 * libuv wants; the fetch forgets it first (lr__deadline_drop). */
struct lr_deadline {
  uv_timer_t timer;
  lr_fetch *f;  /* NULL once f is gone */
  long ms;
  uint64_t due;  /* uv_hrtime() */
};

static void on_deadline_closed(uv_handle_t *h) { free(h->data); }

void lr__deadline_drop(lr_fetch *f) {
  struct lr_deadline *d = f->deadline;
  if (!d) return;
  f->deadline = NULL;
  d->f = NULL;
  uv_close((uv_handle_t *)&d->timer, on_deadline_closed);
}

static void on_deadline(uv_timer_t *h) {
  struct lr_deadline *d = h->data;
  lr_fetch *f = d->f;
  if (!f || f->finished) return;
  uint64_t now = uv_hrtime();
  if (now < d->due) {  /* libuv's clock is in whole ms: never give up early */
    uv_timer_start(&d->timer, on_deadline, (d->due - now + 999999) / 1000000, 0);
    return;
  }
  lr__curl_remove(f->http, &f->x);
  f->removed = 1;
  f->finished = 1;
  f->result = CURLE_OPERATION_TIMEDOUT;
  snprintf(f->errbuf, sizeof f->errbuf, "Operation timed out after %ld milliseconds with %zu bytes received",
           d->ms, f->body.len);
  lr__deadline_drop(f);
  lr__wake(f->http->rt, f->task, LR_WAKE_OK);
}

int lr__deadline_start(lr_fetch *f, long ms) {
  struct lr_deadline *d = malloc(sizeof *d);
  if (!d) return -1;
  uv_loop_t *loop = &f->http->rt->loop;
  d->f = f;
  d->ms = ms;
  d->due = uv_hrtime() + (uint64_t)ms * 1000000;
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  f->deadline = d;
  uv_update_time(loop);
  uv_timer_start(&d->timer, on_deadline, (uint64_t)ms, 0);
  return 0;
}
