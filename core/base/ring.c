/* Growable rings (the ready queue, the FIFO lane of sleepers) and huge pages
 * for big blocks.  How the rings use these: base.h, under ring.c. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/base.h"

#define FIRST_CAP 256

/* Ask for huge pages on the whole block: a part would split its mapping, and
 * mremap (growing without copying) refuses a split mapping.  Only blocks of
 * two huge pages or more: smaller ones are rarely mappings of their own. */
void *lr__advise_huge(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
  if (p && n >= 2 * LR_HUGE_PAGE) {
    uintptr_t b = (uintptr_t)p & ~(uintptr_t)4095;
    uintptr_t e = ((uintptr_t)p + n + 4095) & ~(uintptr_t)4095;
    madvise((void *)b, e - b, MADV_HUGEPAGE);
  }
#endif
  return p;
}

/* realloc (mremap for big rings: no copy, no second copy resident), then
 * move the part that wrapped around to just after the old end, so the
 * elements keep their offsets from the head. */
void *lr__ring_grow(void *ring, size_t size, size_t head, size_t len, size_t *cap, size_t need) {
  size_t old = *cap, n = old ? old : FIRST_CAP;
  if (need <= old) return ring;
  while (n < need) {
    if (n > SIZE_MAX / 2 / size) return NULL;
    n *= 2;
  }
  char *r = lr__advise_huge(realloc(ring, n * size), n * size);
  if (!r) return NULL;  /* (the old block still holds the ring) */
  size_t wrapped = head + len > old ? head + len - old : 0;
  memcpy(r + old * size, r, wrapped * size);  /* (n >= 2 * old: no overlap) */
  *cap = n;
  return r;
}

/* In place: the elements move below cap / 2, then realloc shrinks the block
 * (a mapping: mremap, no copy, no second block resident). */
void *lr__ring_shrink(void *ring, size_t size, size_t *head, size_t len, size_t *cap) {
  size_t half = *cap / 2, h = *head;
  char *r = ring;
  *head = 0;
  if (len == 0) { free(ring); *cap = 0; return NULL; }
  if (h + len > *cap) {         /* wrapped: the part up to the end moves down to end at half */
    size_t s = *cap - h;
    memmove(r + (half - s) * size, r + h * size, s * size);
    *head = half - s;
  } else if (h + len > half) {  /* in one piece, above half: to the front */
    memmove(r, r + h * size, len * size);
  } else {
    *head = h;
  }
  *cap = half;
  char *n = realloc(r, half * size);
  return n ? n : r;  /* (if not, the old block still holds the ring, in its first half) */
}
