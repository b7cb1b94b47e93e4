/* The ring helpers (core/base/ring.c): growth keeps every element's offset
 * from the head across the wrap-around, shrinking keeps the order, an empty
 * ring is freed, and running out of memory changes nothing.  Element i from
 * the head is ring[(head + i) % cap] (base.h); the tests fill element i with
 * i and read them all back. */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "check.h"

/* An odd element size, so that a helper mixing up bytes and elements shows */
typedef struct { uint32_t v; char pad[8]; } elem12;

typedef struct {
  elem12 *ring;
  size_t head, len, cap;
} ring;

static void fill(ring *r) {
  for (size_t i = 0; i < r->len; i++) {
    elem12 *e = &r->ring[(r->head + i) % r->cap];
    e->v = (uint32_t)i;
    memset(e->pad, (int)(i & 0x7f), sizeof e->pad);
  }
}

/* the number of elements that are not where they should be (0: all kept) */
static size_t misplaced(const ring *r) {
  size_t bad = 0;
  for (size_t i = 0; i < r->len; i++) {
    const elem12 *e = &r->ring[(r->head + i) % r->cap];
    if (e->v != (uint32_t)i || e->pad[0] != (char)(i & 0x7f) || e->pad[7] != (char)(i & 0x7f)) bad++;
  }
  return bad;
}

static int grow(ring *r, size_t need) {
  elem12 *n = lr__ring_grow(r->ring, sizeof *r->ring, r->head, r->len, &r->cap, need);
  if (!n) return -1;
  r->ring = n;
  return 0;
}

/* A ring of cap elements, len of them from head on, filled */
static ring make(size_t cap, size_t head, size_t len) {
  ring r = { malloc(cap * sizeof(elem12)), head, len, cap };
  fill(&r);
  return r;
}

static void test_grow_from_nothing(void) {
  ring r = { NULL, 0, 0, 0 };
  CHECK_EQ(grow(&r, 1), 0);
  CHECK(r.ring != NULL);
  CHECK_EQ(r.cap, 256);  /* the first capacity */
  elem12 *same = r.ring;
  CHECK_EQ(grow(&r, 256), 0);  /* it fits: nothing changes */
  CHECK_EQ((uintptr_t)r.ring, (uintptr_t)same);
  CHECK_EQ(r.cap, 256);
  CHECK_EQ(grow(&r, 257), 0);
  CHECK_EQ(r.cap, 512);
  CHECK_EQ(grow(&r, 3000), 0);  /* doubled until it fits */
  CHECK_EQ(r.cap, 4096);
  free(r.ring);
  ring big = { NULL, 0, 0, 0 };
  CHECK_EQ(grow(&big, 1000), 0);
  CHECK_EQ(big.cap, 1024);
  free(big.ring);
}

/* Every head and length of a full or partly wrapped ring of 256, grown */
static void test_grow_keeps_order(void) {
  size_t lens[] = { 0, 1, 100, 255, 256 };
  for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
    for (size_t head = 0; head < 256; head++) {
      ring r = make(256, head, lens[l]);
      size_t need = lens[l] == 256 ? 257 : 600;
      CHECK_EQ(grow(&r, need), 0);
      CHECK_EQ(r.cap, need == 257 ? 512 : 1024);
      CHECK_EQ(r.head, head);
      CHECK_EQ(r.len, lens[l]);
      CHECK_EQ(misplaced(&r), 0);
      free(r.ring);
    }
  }
}

/* grow, push, grow again with the ring wrapped at the new capacity */
static void test_grow_twice_wrapped(void) {
  ring r = make(256, 250, 256);          /* wrapped: 6 at the end, 250 at the start */
  CHECK_EQ(grow(&r, 257), 0);
  CHECK_EQ(r.cap, 512);
  r.len = 512;                           /* fill up, wrapping at 512 now */
  fill(&r);
  CHECK_EQ(grow(&r, 513), 0);
  CHECK_EQ(r.cap, 1024);
  CHECK_EQ(r.head, 250);
  CHECK_EQ(misplaced(&r), 0);
  free(r.ring);
}

static void test_grow_out_of_memory(void) {
  ring r = make(256, 200, 256);
  elem12 *old = r.ring;
  CHECK_EQ(grow(&r, SIZE_MAX / sizeof(elem12)), -1);      /* cap * size would overflow */
  CHECK_EQ(grow(&r, (SIZE_MAX / 8) / sizeof(elem12)), -1);  /* realloc fails */
  CHECK_EQ((uintptr_t)r.ring, (uintptr_t)old);
  CHECK_EQ(r.cap, 256);
  CHECK_EQ(r.head, 200);
  CHECK_EQ(misplaced(&r), 0);
  free(r.ring);
}

/* Every head and every length up to cap / 4 of a ring of 64, halved */
static void test_shrink_keeps_order(void) {
  for (size_t head = 0; head < 64; head++) {
    for (size_t len = 1; len <= 16; len++) {
      ring r = make(64, head, len);
      r.ring = lr__ring_shrink(r.ring, sizeof *r.ring, &r.head, r.len, &r.cap);
      CHECK(r.ring != NULL);
      CHECK_EQ(r.cap, 32);
      CHECK(r.head < r.cap);
      CHECK_EQ(misplaced(&r), 0);
      free(r.ring);
    }
  }
}

/* The three cases of ring.c by name, on a ring of 1024 */
static void test_shrink_cases(void) {
  struct { size_t head, len, head_after; } cases[] = {
    { 10, 200, 10 },    /* in one piece below half: stays */
    { 600, 200, 0 },    /* in one piece above half: to the front */
    { 1000, 24, 0 },    /* ends at the end exactly: in one piece, to the front */
    { 900, 256, 388 },  /* wrapped: the 124 at the end move down to end at 512 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ring r = make(1024, cases[i].head, cases[i].len);
    r.ring = lr__ring_shrink(r.ring, sizeof *r.ring, &r.head, r.len, &r.cap);
    CHECK_EQ(r.cap, 512);
    CHECK_EQ(r.head, cases[i].head_after);
    CHECK_EQ(misplaced(&r), 0);
    free(r.ring);
  }
}

static size_t heap_in_use(void) {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

static void test_empty_ring_is_freed(void) {
  size_t before = heap_in_use();
  ring r = { NULL, 0, 0, 0 };
  CHECK_EQ(grow(&r, 100000), 0);  /* big enough to be a mapping of its own */
  r.head = 77;
  r.ring = lr__ring_shrink(r.ring, sizeof *r.ring, &r.head, 0, &r.cap);
  CHECK(r.ring == NULL);
  CHECK_EQ(r.cap, 0);
  CHECK_EQ(r.head, 0);
#ifndef CHECK_ASAN  /* (ASan keeps its own counts; its leak check covers this there) */
  CHECK_EQ(heap_in_use(), before);
#else
  (void)before;
#endif
  CHECK_EQ(grow(&r, 1), 0);  /* and it can start again */
  CHECK_EQ(r.cap, 256);
  free(r.ring);
}

/* A FIFO queue used the way the ready queue and the FIFO lane use the
 * helpers (grow when full, shrink once a quarter full), against a model:
 * bursts of pushes and pops, so it grows and shrinks many times across the
 * wrap-around; values come out in the order they went in. */
static void test_queue_model(void) {
  ring r = { NULL, 0, 0, 0 };
  uint32_t next_in = 0, next_out = 0;
  size_t grows = 0, shrinks = 0, wrong = 0, max_cap = 0;
  uint64_t seed = 12345;
  for (int round = 0; round < 400; round++) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    size_t burst = (size_t)(seed >> 33) % 3000;
    int push = (round % 4) != 3 ? (seed >> 20) & 1 : 0;  /* every fourth: drain */
    if (round % 4 == 3) burst = r.len;
    for (size_t k = 0; k < burst; k++) {
      if (push) {
        if (r.len == r.cap) {
          size_t old = r.cap;
          if (grow(&r, r.len + 1) != 0) { wrong++; break; }
          if (r.cap != old) grows++;
        }
        r.ring[(r.head + r.len) % r.cap].v = next_in++;
        r.len++;
      } else {
        if (r.len == 0) break;
        if (r.ring[r.head].v != next_out) wrong++;
        next_out++;
        r.head = (r.head + 1) % r.cap;
        r.len--;
        if (r.len <= r.cap / 4 && (r.cap > 256 || r.len == 0)) {
          r.ring = lr__ring_shrink(r.ring, sizeof *r.ring, &r.head, r.len, &r.cap);
          shrinks++;
        }
      }
      if (r.cap > max_cap) max_cap = r.cap;
    }
  }
  CHECK_EQ(wrong, 0);
  CHECK_EQ(next_in, next_out + r.len);
  CHECK(grows >= 10);   /* the run exercised what it is meant to */
  CHECK(shrinks >= 10);
  CHECK(max_cap >= 2048);
  free(r.ring);
}

int main(void) {
  RUN(test_grow_from_nothing);
  RUN(test_grow_keeps_order);
  RUN(test_grow_twice_wrapped);
  RUN(test_grow_out_of_memory);
  RUN(test_shrink_keeps_order);
  RUN(test_shrink_cases);
  RUN(test_empty_ring_is_freed);
  RUN(test_queue_model);
  return check_done();
}
