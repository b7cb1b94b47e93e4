/* Easy handles are reused: creating one and freeing it costs more than the
 * rest of a small fetch's bookkeeping (curl keeps its connections in the
 * multi, so a reset handle loses nothing).  A handle that served a plain
 * GET goes back still set up for the next one (lr__keep_plain). */
#include <stdlib.h>
#include <string.h>

#include "base/curl_api.h"
#include "http/http.h"

/* *plain: the handle is still set up for a plain GET */
CURL *lr__easy_get(lr_http *h, int *plain) {
  *plain = 0;
  if (h->easy_npool == 0) return curl_easy_init();
  struct lr_pooled_easy *p = &h->easy_pool[--h->easy_npool];
  *plain = p->plain;
  return p->easy;
}

/* plain: e served a plain GET that succeeded, and keeps its options for the
 * next one; any other handle goes back reset, as new. */
void lr__easy_put(lr_http *h, CURL *e, int plain) {
  if (h->easy_npool == h->easy_cappool && h->easy_cappool < 1024) {
    size_t n = h->easy_cappool ? h->easy_cappool * 2 : 16;
    struct lr_pooled_easy *p = realloc(h->easy_pool, n * sizeof *p);
    if (p) { h->easy_pool = p; h->easy_cappool = n; }
  }
  if (h->easy_npool < h->easy_cappool) {
    if (plain) curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);  /* f's goes now */
    else curl_easy_reset(e);
    h->easy_pool[h->easy_npool].easy = e;
    h->easy_pool[h->easy_npool++].plain = plain;
  } else {
    curl_easy_cleanup(e);
  }
}

/* The closer's part (state.c), before the multi goes */
void lr__easy_pool_close(lr_http *h) {
  if (h->blocking_easy) curl_easy_cleanup(h->blocking_easy);
  h->blocking_easy = NULL;
  while (h->easy_npool > 0) curl_easy_cleanup(h->easy_pool[--h->easy_npool].easy);
  free(h->easy_pool);
  h->easy_pool = NULL;
  h->easy_cappool = 0;
}

/* A GET with every option at its default, to a URL without user:password@:
 * what lr__setup leaves on a handle for it is the same every time, but for
 * the URL and the lr_fetch's own pointers (lr__keep_plain).  Anything else,
 * and the handle is reset and set up in full. */
#ifndef LR_FETCH_PLAIN
#define LR_FETCH_PLAIN 1
#endif
int lr__is_plain(const lr_request *r) {
  return LR_FETCH_PLAIN && !r->method && !r->body && !r->headers_idx && !r->timeout_ms &&
         !r->connect_timeout_ms && r->follow && r->max_redirects == 10 && r->max_body == LR_DEFAULT_MAX_BODY &&
         r->verify && !strchr(r->url, '@');
}
