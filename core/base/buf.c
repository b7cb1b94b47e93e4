/* lr_buf's growth (buf.h). */
#include <stdlib.h>

#include "base/buf.h"

#define FIRST_CAP 256  /* the first allocation of a buffer that had no room */

char *lr__buf_grow(lr_buf *b, size_t n) {
  if (b->err) return NULL;
  if (n > b->max - b->len) {
    b->err = LR_BUF_FULL;
    return NULL;
  }
  if (n >= SIZE_MAX - b->len) {  /* the NUL would not fit in a size_t */
    b->err = LR_BUF_NOMEM;
    return NULL;
  }
  size_t need = b->len + n + 1;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : FIRST_CAP;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!p) {
      b->err = LR_BUF_NOMEM;
      return NULL;
    }
    if (!b->heap && b->p) memcpy(p, b->p, b->len + 1);  /* out of the owner's room */
    b->p = p;
    b->cap = cap;
    b->heap = 1;
  }
  return b->p + b->len;
}

void lr__buf_free(lr_buf *b) {
  if (b->heap) free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  b->heap = 0;
}
