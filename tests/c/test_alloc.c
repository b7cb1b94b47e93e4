/* The Lua heap's allocator (core/base/alloc.c), through lua_Alloc as Lua
 * calls it: each size lands in its class (16-byte steps up to 1 KiB), a
 * realloc within a class stays put and one across classes or kinds (small,
 * malloc'd, own mapping) keeps the contents, a freed block is reused by
 * its class and a wholly free region by any class, big blocks are
 * mappings that are unmapped when freed, and running out of memory
 * returns NULL with the old block intact.  The sizes below are alloc.c's. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "check.h"

#define GRAIN 16                      /* every small block is a multiple of this */
#define SMALL_MAX 1024                /* larger: malloc */
#define BIG_MIN ((size_t)128 << 10)   /* from here: a mapping of its own */
#define REGION ((size_t)64 << 10)     /* arenas are cut into regions this big, aligned */
#define CLASS_SIZE(n) (((n) + GRAIN - 1) / GRAIN * GRAIN)
#define HUGE_ASK ((size_t)1 << 60)    /* more than any machine maps */

/* Without the arenas (LR_ALLOC_ARENAS=OFF, the default, or ASan) the Lua
 * heap is plain realloc (alloc.c), so only the checks on what any allocator
 * must do run there. */
#if defined(CHECK_ASAN) || !defined(LR_ALLOC_ARENAS)
#define ARENAS_OR_SKIP() SKIP("the Lua heap is plain realloc here (LR_ALLOC_ARENAS=OFF, or ASan)")
#else
#define ARENAS_OR_SKIP() ((void)0)
#endif

static void *A(lr_alloc *a, void *p, size_t o, size_t n) { return lr__alloc(a, p, o, n); }

static void put(void *p, size_t n, unsigned seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(i * 31 + seed);
}

/* the first byte of p[0..n) that put(p, n, seed) did not write, or n */
static size_t kept(const void *p, size_t n, unsigned seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) if (b[i] != (unsigned char)(i * 31 + seed)) return i;
  return n;
}

/* Every size from 1 to 1 KiB: 16-byte aligned; a realloc anywhere within
 * its class returns the block itself, one past it moves; freed, the block
 * is what the next allocation of any size of that class gets. */
static void test_each_size_in_its_class(void) {
  ARENAS_OR_SKIP();
  lr_alloc *a = lr__alloc_new();
  for (size_t n = 1; n <= SMALL_MAX; n++) {
    size_t top = CLASS_SIZE(n), bottom = top - GRAIN + 1;
    char *p = A(a, NULL, 0, n);
    CHECK(p != NULL);
    CHECK_EQ((uintptr_t)p % GRAIN, 0);
    CHECK_EQ((uintptr_t)A(a, p, n, top), (uintptr_t)p);
    CHECK_EQ((uintptr_t)A(a, p, top, bottom), (uintptr_t)p);
    A(a, p, bottom, 0);
    CHECK_EQ((uintptr_t)A(a, NULL, 0, top), (uintptr_t)p);  /* the class's free list */
    if (top < SMALL_MAX) {
      char *q = A(a, p, top, top + 1);  /* the next class: another block */
      CHECK(q != p);
      A(a, q, top + 1, 0);
    } else {
      A(a, p, top, 0);
    }
  }
  lr__alloc_free(a);
}

/* A fresh allocator fills a region from its start, one block after the
 * other: the distance between two blocks of a size is its class's size, so
 * a block is neither smaller (they would overlap) nor bigger. */
static void test_class_sizes_are_exact(void) {
  ARENAS_OR_SKIP();
  for (size_t n = 1; n <= SMALL_MAX; n += 7) {
    lr_alloc *a = lr__alloc_new();
    char *p = A(a, NULL, 0, n), *q = A(a, NULL, 0, n);
    CHECK_EQ((uintptr_t)(q - p), CLASS_SIZE(n));
    lr__alloc_free(a);
  }
}

/* Blocks of every small size at once, each filled to its last byte: none
 * overwrote another.  (Holds for any allocator: runs under ASan too.) */
static void test_blocks_do_not_overlap(void) {
  lr_alloc *a = lr__alloc_new();
  enum { N = 20000 };
  static char *p[N];
  static size_t sz[N];
  for (size_t i = 0; i < N; i++) {
    sz[i] = 1 + (i * 7919) % (2 * SMALL_MAX);  /* small and medium, mixed */
    p[i] = A(a, NULL, 0, sz[i]);
    CHECK(p[i] != NULL);
    put(p[i], sz[i], (unsigned)i);
  }
  size_t bad = 0;
  for (size_t i = 0; i < N; i++) {
    if (kept(p[i], sz[i], (unsigned)i) != sz[i]) bad++;
    A(a, p[i], sz[i], 0);
  }
  CHECK_EQ(bad, 0);
  lr__alloc_free(a);
}

/* One block taken through every kind and back: small, malloc'd, its own
 * mapping (grown by mremap), and down again; the contents it had survive
 * each step.  (Any allocator: runs under ASan too.) */
static void test_realloc_across_classes(void) {
  lr_alloc *a = lr__alloc_new();
  size_t steps[] = { 10, 16, 17, 100, 1024, 1025, 4000, BIG_MIN - 1, BIG_MIN, 1 << 20,
                     (size_t)8 << 20, 200000, 100000, 1000, 33, 5 };
  size_t n = steps[0];
  char *p = A(a, NULL, 0, n);
  put(p, n, 7);
  for (size_t i = 1; i < sizeof steps / sizeof *steps; i++) {
    size_t m = steps[i];
    p = A(a, p, n, m);
    CHECK(p != NULL);
    if (!p) break;
    CHECK_EQ(kept(p, n < m ? n : m, 7), n < m ? n : m);
    put(p, m, 7);  /* the whole block is writable */
    n = m;
  }
  if (p) A(a, p, n, 0);
  lr__alloc_free(a);
}

/* Freed blocks go back to their class, last freed first out; another class
 * does not take them while they are few. */
static void test_free_and_reuse(void) {
  ARENAS_OR_SKIP();
  lr_alloc *a = lr__alloc_new();
  enum { N = 1000 };
  char *p[N];
  for (int i = 0; i < N; i++) p[i] = A(a, NULL, 0, 48);
  for (int i = 0; i < N; i++) A(a, p[i], 48, 0);
  char *other = A(a, NULL, 0, 64);  /* another class: not one of them */
  size_t in_freed = 0;
  for (int i = 0; i < N; i++) in_freed += other == p[i];
  CHECK_EQ(in_freed, 0);
  for (int i = N - 1; i >= 0; i--) {  /* sizes 33..48: class 48, in reverse order of freeing */
    char *q = A(a, NULL, 0, 33 + (size_t)i % 16);
    CHECK_EQ((uintptr_t)q, (uintptr_t)p[i]);
  }
  lr__alloc_free(a);
}

static int cmp_ptr(const void *x, const void *y) {
  uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;
  return a < b ? -1 : a > b;
}

/* A MiB and more of small blocks freed makes their wholly free regions
 * available to any class: blocks of another size then come from them
 * (freed tables can become strings). */
static void test_free_regions_serve_any_class(void) {
  ARENAS_OR_SKIP();
  lr_alloc *a = lr__alloc_new();
  enum { N = 40000, M = 2000 };  /* 40,000 x 32 B freed; 2,000 x 512 B asked */
  static uintptr_t region[N];
  static char *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = A(a, NULL, 0, 32);
    region[i] = (uintptr_t)p[i] & ~(uintptr_t)(REGION - 1);
  }
  for (int i = 0; i < N; i++) A(a, p[i], 32, 0);
  qsort(region, N, sizeof *region, cmp_ptr);
  size_t reused = 0;
  for (int i = 0; i < M; i++) {
    uintptr_t r = (uintptr_t)A(a, NULL, 0, 512) & ~(uintptr_t)(REGION - 1);
    reused += bsearch(&r, region, N, sizeof *region, cmp_ptr) != NULL;
  }
  CHECK(reused >= M / 2);
  lr__alloc_free(a);
}

/* From 128 KiB a block is a mapping of its own, page-aligned, grown and
 * shrunk in place or moved by mremap, and unmapped when freed. */
static void test_big_blocks_are_mappings(void) {
  ARENAS_OR_SKIP();
  lr_alloc *a = lr__alloc_new();
  size_t n = BIG_MIN;
  char *p = A(a, NULL, 0, n);
  CHECK(p != NULL);
  CHECK_EQ((uintptr_t)p % 4096, 0);
  put(p, n, 3);
  char *q = A(a, p, n, (size_t)4 << 20);
  CHECK(q != NULL);
  CHECK_EQ((uintptr_t)q % 4096, 0);
  CHECK_EQ(kept(q, n, 3), n);
  q = A(a, q, (size_t)4 << 20, 300000);
  CHECK_EQ(kept(q, n, 3), n);
  A(a, q, 300000, 0);
  unsigned char vec[1];
  CHECK_EQ(mincore(q, 4096, vec), -1);  /* no longer mapped */
  CHECK_EQ(errno, ENOMEM);
  lr__alloc_free(a);
}

/* A request that cannot be met returns NULL, and a block that could not
 * grow is still there, whole, and can be freed.  (Any allocator.) */
static void test_too_big_is_null(void) {
  lr_alloc *a = lr__alloc_new();
  CHECK(A(a, NULL, 0, HUGE_ASK) == NULL);
  size_t sizes[] = { 100, 5000, 1 << 20 };  /* small, malloc'd, own mapping */
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    size_t n = sizes[i];
    char *p = A(a, NULL, 0, n);
    put(p, n, 9);
    CHECK(A(a, p, n, HUGE_ASK) == NULL);
    CHECK_EQ(kept(p, n, 9), n);
    A(a, p, n, 0);
  }
  lr__alloc_free(a);
}

/* With the address space limited, small blocks run out: NULL, not a crash;
 * a block freed then is still given out again.  In a child process, as
 * setrlimit cannot be undone for the rest of the tests. */
static void test_arenas_run_out(void) {
  ARENAS_OR_SKIP();
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = { (rlim_t)64 << 20, (rlim_t)64 << 20 };
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f || fscanf(f, "%lu", &pages) != 1) _exit(2);
    fclose(f);
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * 4096 + ((rlim_t)32 << 20);  /* 32 MiB more */
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(2);
    lr_alloc *a = lr__alloc_new();
    if (!a) _exit(3);
    char *last = NULL;
    size_t got = 0;
    for (; got < ((size_t)1 << 20); got++) {  /* 1 GiB of 1 KiB blocks: far past the limit */
      char *p = A(a, NULL, 0, 1024);
      if (!p) break;
      last = p;
    }
    if (got == ((size_t)1 << 20) || got == 0) _exit(4);  /* never ran out, or never started */
    A(a, last, 1024, 0);
    if (A(a, NULL, 0, 1009) != last) _exit(5);  /* the freed block (1009..1024: its class), memory or not */
    _exit(0);
  }
  CHECK(pid > 0);
  int status = -1;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
}

/* Debug builds: LR_FAIL_ALLOC_AFTER=N makes every allocation after the
 * first N fail (the out-of-memory sweeps rely on it); shrinking and freeing
 * still work. */
static void test_fail_after(void) {
#ifdef NDEBUG
  SKIP("LR_FAIL_ALLOC_AFTER is for debug builds");
#else
  setenv("LR_FAIL_ALLOC_AFTER", "3", 1);
  lr_alloc *a = lr__alloc_new();
  unsetenv("LR_FAIL_ALLOC_AFTER");
  char *p[3];
  for (int i = 0; i < 3; i++) CHECK((p[i] = A(a, NULL, 0, 40)) != NULL);
  CHECK(A(a, NULL, 0, 40) == NULL);
  put(p[0], 40, 1);
  CHECK(A(a, p[0], 40, 80) == NULL);       /* growing fails */
  CHECK_EQ(kept(p[0], 40, 1), 40);
  char *s = A(a, p[0], 40, 8);             /* shrinking does not */
  CHECK(s != NULL);
  CHECK_EQ(kept(s, 8, 1), 8);
  A(a, s, 8, 0);
  A(a, p[1], 40, 0);
  A(a, p[2], 40, 0);
  lr__alloc_free(a);
#endif
}

int main(void) {
  RUN(test_each_size_in_its_class);
  RUN(test_class_sizes_are_exact);
  RUN(test_blocks_do_not_overlap);
  RUN(test_realloc_across_classes);
  RUN(test_free_and_reuse);
  RUN(test_free_regions_serve_any_class);
  RUN(test_big_blocks_are_mappings);
  RUN(test_too_big_is_null);
  RUN(test_arenas_run_out);
  RUN(test_fail_after);
  return check_done();
}
