/* One transfer's memory: the lr_fetch, its body and header buffers
 * (base/buf.h), and curl's callbacks that fill them. */
#include <stdlib.h>
#include <string.h>

#include "base/curl_api.h"
#include "http/http.h"

_Static_assert(sizeof(lr_fetch) <= 1024, "lr_fetch outgrew malloc's per-thread cache");

lr_fetch *lr__fetch_new(void) {
  lr_fetch *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  lr__buf_init(&f->body, f->body_room, sizeof f->body_room);
  lr__buf_init(&f->hdrs, f->hdrs_room, sizeof f->hdrs_room);
  return f;
}

void lr__fetch_free(lr_fetch *f) {
  lr__deadline_drop(f);
  if (f->http && f->x.easy)  /* out of the multi by now */
    lr__easy_put(f->http, f->x.easy);
  curl_slist_free_all(f->headers);
  lr__buf_free(&f->body);
  lr__buf_free(&f->hdrs);
  free(f);
}

size_t lr__on_body(char *ptr, size_t size, size_t n, void *ud) {
  lr_fetch *f = ud;
  size_t len = size * n;
  if ((curl_off_t)(f->body.len + len) > f->max_body) {
    f->too_large = 1;
    return 0;  /* aborts the transfer: CURLE_WRITE_ERROR */
  }
  if (lr__buf_add(&f->body, ptr, len) == 0) return len;
  f->nomem = 1;
  return 0;
}

size_t lr__on_header(char *ptr, size_t size, size_t n, void *ud) {
  lr_fetch *f = ud;
  size_t len = size * n, nl = len;
  while (nl > 0 && (ptr[nl - 1] == '\n' || ptr[nl - 1] == '\r')) nl--;
  if (nl >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {  /* a new response: keep only the last */
    lr__buf_reset(&f->hdrs);
    f->headers_done = 0;
    return len;
  }
  if (nl == 0) {
    f->headers_done = 1;
    return len;
  }
  const char *colon = memchr(ptr, ':', nl);
  if (!colon || colon == ptr) return len;
  const char *v = colon + 1, *end = ptr + nl;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
  lr__buf_add(&f->hdrs, ptr, (size_t)(colon - ptr));  /* a failure is sticky: checked once */
  lr__buf_add(&f->hdrs, "", 1);
  lr__buf_add(&f->hdrs, v, (size_t)(end - v));
  if (lr__buf_add(&f->hdrs, "", 1) != 0) {
    f->nomem = 1;
    return 0;
  }
  return len;
}
