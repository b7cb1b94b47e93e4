/* HTTP's part of a runtime: made on the first fetch or fetch_config, so a
 * script that never fetches pays nothing, and freed by its closer. */
#include <stdlib.h>

#include "base/curl_api.h"
#include "http/http.h"

static void on_timer_closed(uv_handle_t *t) { free(t->data); }

/* The runtime's closer, after every parked fetch's cleanup took its
 * transfer out: the pooled handles go before the multi does, and the state
 * once its timer is closed (the loop still lists the timer until then). */
static void http_close(lr_runtime *rt, void *ud) {
  lr_http *h = ud;
  lr__easy_pool_close(h);
  int timer = h->multi != NULL;
  lr__curl_close(h);
  rt->http = NULL;
  if (!timer) {
    free(h);
    return;
  }
  h->curl_timer.data = h;
  uv_close((uv_handle_t *)&h->curl_timer, on_timer_closed);
}

lr_http *lr__http(lr_runtime *rt) {
  if (rt->http) return rt->http;
  lr_http *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->rt = rt;
  rt->http = h;
  lr__add_closer(rt, http_close, h);
  return h;
}
