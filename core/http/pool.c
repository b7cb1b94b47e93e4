/* Easy handles are reused: creating one and freeing it costs more than the
 * rest of a small fetch's bookkeeping (curl keeps its connections in the
 * multi, so a reset handle loses nothing).  (A handle kept set up for the
 * next plain GET saved no time: bench/README.md.) */
#include <stdlib.h>

#include "base/curl_api.h"
#include "http/http.h"

CURL *lr__easy_get(lr_http *h) {
  if (h->easy_npool == 0) return curl_easy_init();
  return h->easy_pool[--h->easy_npool];
}

/* e goes back reset, as new (a pool of at most 1024) */
void lr__easy_put(lr_http *h, CURL *e) {
  if (h->easy_npool == h->easy_cappool && h->easy_cappool < 1024) {
    size_t n = h->easy_cappool ? h->easy_cappool * 2 : 16;
    CURL **p = realloc(h->easy_pool, n * sizeof *p);
    if (p) { h->easy_pool = p; h->easy_cappool = n; }
  }
  if (h->easy_npool < h->easy_cappool) {
    curl_easy_reset(e);
    h->easy_pool[h->easy_npool++] = e;
  } else {
    curl_easy_cleanup(e);
  }
}

/* The closer's part (state.c), before the multi goes */
void lr__easy_pool_close(lr_http *h) {
  if (h->blocking_easy) curl_easy_cleanup(h->blocking_easy);
  h->blocking_easy = NULL;
  while (h->easy_npool > 0) curl_easy_cleanup(h->easy_pool[--h->easy_npool]);
  free(h->easy_pool);
  h->easy_pool = NULL;
  h->easy_cappool = 0;
}
