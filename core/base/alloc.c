/* The Lua state's allocator.  A task is a handful of small blocks (its
 * coroutine, its stack, two CallInfos, its handle); malloc adds a header and
 * rounding to each and backs them with 4 KiB pages, one page fault each.
 * Here small blocks come from per-size free lists carved out of arenas that
 * ask for transparent huge pages (one fault per 2 MiB); Lua passes the old
 * size on every call, so blocks need no header.  Blocks up to 128 KiB go
 * to malloc; bigger ones are mappings of their own (big_alloc).
 *
 * A program whose heap grows fast (a million tasks) then spends most of its
 * time in the kernel, which zeroes each fresh page as it is first touched.
 * So once the heap is past 16 MiB, a helper thread asks the kernel to
 * fault in (MADV_POPULATE_WRITE: contents untouched, safe next to the main
 * thread) the next PF_WINDOW of the arena ahead of the bump pointer, on
 * another core; RSS runs at most PF_WINDOW ahead of use.  The first arenas,
 * too small for huge pages, are faulted in SYNC_WINDOW at a time. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lr.h"

#define GRAIN 16                      /* every block is a multiple of this */
#define SMALL_MAX 1024                /* larger blocks: malloc */
#define NCLASS (SMALL_MAX / GRAIN)
#define HUGE_PAGE ((size_t)2 << 20)
#define FIRST_ARENA ((size_t)256 << 10)  /* small programs stay small */
#define MAX_ARENA ((size_t)64 << 20)

/* Arenas are cut into aligned regions, which the bump pointer fills one at
 * a time with blocks of any class.  A region whose blocks are all free
 * (found by sweep, below) goes back to a pool that any class takes from:
 * freed tables can become strings. */
#define REGION ((size_t)64 << 10)
#define REGION_OF(p) ((region *)((uintptr_t)(p) & ~(uintptr_t)(REGION - 1)))
#define RELEASED UINT32_MAX           /* region->free: in the pool */
#define SWEEP_MIN ((size_t)1 << 20)   /* free bytes in the lists before a sweep is worth it */

typedef struct free_block { struct free_block *next; } free_block;
typedef struct region {
  union {
    struct region *next;  /* in the pool */
    size_t carved;        /* else, once filled: bytes handed out as blocks */
  } u;
  uint32_t epoch;         /* the sweep that last counted free_bytes */
  uint32_t free_bytes;
} region;
typedef struct arena { struct arena *next; size_t size; } arena;  /* after its first region's header */

#define PF_WINDOW ((size_t)6 << 20)
#define SYNC_WINDOW ((size_t)64 << 10)
#define PF_FROM ((size_t)16 << 20)  /* first arena it works on: a heap past ~16 MiB */
#define PF_OFF ((char *)UINTPTR_MAX)

typedef struct {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *done, *want, *end;  /* populated up to done; asked up to want, in the arena ending at end */
  int stop, failed;
} prefaulter;

struct lr_alloc {
  free_block *free[NCLASS];
  char *bump, *end;    /* the region being filled */
  char *fresh, *arena_end;  /* the current arena's regions never used yet */
  region *pool;        /* wholly free regions */
  size_t freed;        /* bytes in the free lists */
  size_t sweep_at;     /* sweep when a region is needed and freed is past this */
  uint32_t epoch;
  arena *arenas;
  size_t next_size;
  char *pf_next;       /* a fresh region past this: move the prefault window on */
  prefaulter *pf;      /* started on the first huge arena */
  long long fail_left; /* debug builds: allocations before they fail (LR_FAIL_ALLOC_AFTER), or -1 */
};
/* Faults in the whole pages of [p + from, p + to) with one call, not one
 * fault per 4 KiB page: ~13 us each on a VM, where populating costs ~5 us a
 * page.  The contents are untouched: safe on pages partly in use. */
static void *populate(void *p, size_t from, size_t to) {
#ifdef MADV_POPULATE_WRITE
  uintptr_t b = ((uintptr_t)p + from + 4095) & ~(uintptr_t)4095;
  uintptr_t e = ((uintptr_t)p + to) & ~(uintptr_t)4095;
  if (e > b) madvise((void *)b, e - b, MADV_POPULATE_WRITE);  /* a failure only costs faults */
#endif
  return p;
}

static void *prefault_main(void *arg) {
  prefaulter *pf = arg;
  pthread_mutex_lock(&pf->mu);
  while (!pf->stop) {
    if (pf->done >= pf->want) {
      pthread_cond_wait(&pf->cv, &pf->mu);
      continue;
    }
    char *from = pf->done, *to = from + HUGE_PAGE < pf->want ? from + HUGE_PAGE : pf->want;
    pthread_mutex_unlock(&pf->mu);
    /* whole pages (the arena's end is one): a page partly in use is only
     * faulted in, never written */
    char *page = (char *)((uintptr_t)from & ~(uintptr_t)4095);
    char *page_end = (char *)(((uintptr_t)to + 4095) & ~(uintptr_t)4095);
    int rc = madvise(page, (size_t)(page_end - page), MADV_POPULATE_WRITE);
    int err = errno;
    pthread_mutex_lock(&pf->mu);
    if (rc != 0 && err != EINTR && err != EAGAIN) pf->failed = 1;  /* old kernel (EINVAL), or no memory */
    if (pf->failed) break;
    if (pf->done == from) pf->done = to;  /* unless the main thread moved it meanwhile */
  }
  pthread_mutex_unlock(&pf->mu);
  return NULL;
}

static int prefault_start(lr_alloc *a, char *at) {
  const char *env = getenv("LESSONRUN_PREFAULT");
  if (env && strcmp(env, "0") == 0) return -1;
  prefaulter *pf = calloc(1, sizeof *pf);
  if (!pf) return -1;
  pthread_mutex_init(&pf->mu, NULL);
  pthread_cond_init(&pf->cv, NULL);
  pf->done = pf->want = pf->end = at;
  sigset_t all, old;  /* signals (Ctrl-C) stay with the main thread */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&pf->thread, NULL, prefault_main, pf);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    pthread_cond_destroy(&pf->cv);
    pthread_mutex_destroy(&pf->mu);
    free(pf);
    return -1;
  }
  a->pf = pf;
  return 0;
}

/* A fresh region at `at` passed pf_next.  In the first, small arenas (4 KiB
 * pages; start-up lives there): fault the next SYNC_WINDOW in now.  In big
 * ones: ask the helper for [at, at + PF_WINDOW). */
static void prefault_ahead(lr_alloc *a, char *at) {
  char *end = a->arena_end;
  if (a->arenas->size < HUGE_PAGE) {
    char *to = (size_t)(end - at) > SYNC_WINDOW ? at + SYNC_WINDOW : end;
    populate(at, 0, (size_t)(to - at));
    a->pf_next = to;
    return;
  }
  a->pf_next = at + HUGE_PAGE;  /* the next call, 2 MiB further on */
  if (!a->pf && prefault_start(a, at) != 0) { a->pf_next = PF_OFF; return; }
  prefaulter *pf = a->pf;
  char *want = (size_t)(end - at) > PF_WINDOW ? at + PF_WINDOW : end;
  pthread_mutex_lock(&pf->mu);
  if (pf->failed) {
    a->pf_next = PF_OFF;
  } else {
    if (pf->end != end || pf->done < at) pf->done = at;  /* a new arena, or overtaken */
    pf->end = end;
    pf->want = want;
    pthread_cond_signal(&pf->cv);
  }
  pthread_mutex_unlock(&pf->mu);
}

static void prefault_stop(lr_alloc *a) {
  prefaulter *pf = a->pf;
  if (!pf) return;
  pthread_mutex_lock(&pf->mu);
  pf->stop = 1;
  pthread_cond_signal(&pf->cv);
  pthread_mutex_unlock(&pf->mu);
  pthread_join(pf->thread, NULL);
  pthread_cond_destroy(&pf->cv);
  pthread_mutex_destroy(&pf->mu);
  free(pf);
  a->pf = NULL;
}

/* An anonymous mapping of size bytes aligned to align (a power of two, at
 * least a page). */
static char *map_aligned(size_t size, size_t align) {
  char *raw = mmap(NULL, size + align - 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  char *p = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  if (p > raw) munmap(raw, (size_t)(p - raw));
  if (p + size < raw + size + align - 4096) munmap(p + size, (size_t)(raw + size + align - 4096 - (p + size)));
  return p;
}

/* A new arena; its first region (which holds the arena's header, so never
 * goes to the pool) becomes the one being filled. */
static int new_arena(lr_alloc *a) {
  size_t size = a->next_size;
  /* a huge arena is aligned to a huge page so all of it can be one */
  char *p = map_aligned(size, size >= HUGE_PAGE ? HUGE_PAGE : REGION);
  if (!p) return -1;
#ifdef MADV_HUGEPAGE
  if (size >= HUGE_PAGE) madvise(p, size, MADV_HUGEPAGE);
#endif
  arena *h = (arena *)(p + sizeof(region));
  h->next = a->arenas;
  h->size = size;
  a->arenas = h;
  a->bump = p + sizeof(region) + ((sizeof *h + GRAIN - 1) & ~(size_t)(GRAIN - 1));
  a->end = p + REGION;
  a->fresh = a->end;
  a->arena_end = p + size;
  /* small programs never start the prefaulter: only huge arenas, and not
   * after it failed or was turned off */
  if (size < HUGE_PAGE) a->pf_next = p;  /* (populated SYNC_WINDOW at a time) */
  else if (a->pf_next != PF_OFF) a->pf_next = size >= PF_FROM ? p : PF_OFF - 1;
  if (p >= a->pf_next) prefault_ahead(a, p);
  if (a->next_size < MAX_ARENA) a->next_size *= 2;
  return 0;
}

/* Counts each filled region's free bytes in the free lists; the regions
 * wholly free leave the lists for the pool.  Linear in the free blocks, and rare:
 * after one, the lists must hold SWEEP_MIN and twice what it left before
 * the next. */
static void sweep(lr_alloc *a) {
  uint32_t epoch = ++a->epoch;
  for (size_t c = 0; c < NCLASS; c++) {
    for (free_block *b = a->free[c]; b; b = b->next) {
      region *r = REGION_OF(b);
      if (r->epoch != epoch) { r->epoch = epoch; r->free_bytes = 0; }
      r->free_bytes += (uint32_t)((c + 1) * GRAIN);
    }
  }
  for (size_t c = 0; c < NCLASS; c++) {
    for (free_block **pp = &a->free[c], *b; (b = *pp);) {
      region *r = REGION_OF(b);
      if (r->free_bytes != RELEASED && r->free_bytes == r->u.carved) {
        r->free_bytes = RELEASED;
        r->u.next = a->pool;
        a->pool = r;
      }
      if (r->free_bytes == RELEASED) {
        *pp = b->next;
        a->freed -= (c + 1) * GRAIN;
      } else {
        pp = &b->next;
      }
    }
  }
  a->sweep_at = 2 * a->freed + SWEEP_MIN;
}

/* The region being filled has less than the block asked for left: it is
 * done (the rest is left unused: a block there would be one more that must
 * be freed before the region can go back), fill another: from the pool,
 * fresh from the arena, or a new arena. */
static int refill(lr_alloc *a) {
  if (a->end) {  /* (an arena's first region counts its header: never wholly free) */
    region *cur = (region *)(a->end - REGION);
    cur->u.carved = (size_t)(a->bump - (char *)(cur + 1));
  }
  if (!a->pool && a->freed >= a->sweep_at) sweep(a);
  region *r = a->pool;
  if (r) {
    a->pool = r->u.next;
  } else if (a->fresh < a->arena_end) {
    r = (region *)a->fresh;
    a->fresh += REGION;
    if ((char *)r >= a->pf_next) prefault_ahead(a, (char *)r);
  } else if (new_arena(a) == 0) {
    return 0;
  } else {  /* no memory for an arena: whatever the lists give back */
    if (a->freed) sweep(a);
    if (!(r = a->pool)) return -1;
    a->pool = r->u.next;
  }
  a->bump = (char *)r + sizeof *r;
  a->end = (char *)r + REGION;
  return 0;
}

static inline void *small_alloc(lr_alloc *a, size_t cls) {
  size_t sz = (cls + 1) * GRAIN;
  free_block *b = a->free[cls];
  if (b) {
    a->free[cls] = b->next;
    a->freed -= sz;
    return b;
  }
  if ((size_t)(a->end - a->bump) < sz && refill(a) != 0) return NULL;
  void *p = a->bump;
  a->bump += sz;
  return p;
}

static inline void small_free(lr_alloc *a, void *p, size_t cls) {
  free_block *b = p;
  b->next = a->free[cls];
  a->free[cls] = b;
  a->freed += (cls + 1) * GRAIN;
}

#define CLASS(n) (((n) + GRAIN - 1) / GRAIN - 1)

/* The Lua heap's big blocks (a big table's slots, a long string): each is a
 * mapping of its own, so growing one is an mremap (no copy into fresh
 * pages), and its new pages are populated at once, as Lua writes every byte
 * of what it asks for at once.  Lua passes the old size back, so the
 * mapping's length needs no header. */
#define BIG_MIN ((size_t)128 << 10)  /* glibc's own default mmap threshold */
#define PAGES(n) (((n) + 4095) & ~(size_t)4095)

static void *big_alloc(size_t n) {
  void *p = mmap(NULL, PAGES(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  return populate(lr__advise_huge(p, n), 0, n);
}

static void *big_realloc(void *p, size_t o, size_t n) {
  if (PAGES(o) == PAGES(n)) return p;
  void *q = mremap(p, PAGES(o), PAGES(n), MREMAP_MAYMOVE);
  if (q == MAP_FAILED) return NULL;  /* Lua keeps the old block */
  return n > o ? populate(lr__advise_huge(q, n), o, n) : q;
}

/* Three kinds of block by size: small (arenas), medium (malloc), big (own mapping). */
enum { SMALL, MEDIUM, BIG };
#define KIND(n) ((n) <= SMALL_MAX ? SMALL : (n) < BIG_MIN ? MEDIUM : BIG)

static inline void *kind_alloc(lr_alloc *a, size_t n) {
  if (n <= SMALL_MAX) return small_alloc(a, CLASS(n));
  return n < BIG_MIN ? malloc(n) : big_alloc(n);
}

static inline void kind_free(lr_alloc *a, void *p, size_t n) {
  if (n <= SMALL_MAX) small_free(a, p, CLASS(n));
  else if (n < BIG_MIN) free(p);
  else munmap(p, PAGES(n));
}

#if defined(__SANITIZE_ADDRESS__)
#define LR_PLAIN_MALLOC 1  /* let AddressSanitizer see every Lua block */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LR_PLAIN_MALLOC 1
#endif
#endif

/* lua_Alloc: as lauxlib's l_alloc, with osize meaningful whenever ptr is set */
void *lr__alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lr_alloc *a = ud;
#ifndef NDEBUG
  /* LR_FAIL_ALLOC_AFTER=N: every allocation after the first N fails, so an
   * out-of-memory sweep is deterministic (and runs under ASan) */
  if (a->fail_left >= 0 && nsize > 0 && (!ptr || nsize > osize)) {
    if (a->fail_left == 0) return NULL;
    a->fail_left--;
  }
#endif
#ifdef LR_PLAIN_MALLOC
  (void)a; (void)osize;
  if (nsize == 0) { free(ptr); return NULL; }
  return realloc(ptr, nsize);
#endif
  if (nsize == 0) {
    if (ptr) kind_free(a, ptr, osize);
    return NULL;
  }
  if (!ptr) return kind_alloc(a, nsize);
  int kind = KIND(osize);
  if (kind == KIND(nsize)) {
    if (kind == MEDIUM) return realloc(ptr, nsize);
    if (kind == BIG) return big_realloc(ptr, osize, nsize);
    if (CLASS(osize) == CLASS(nsize)) return ptr;
  }
  void *n = kind_alloc(a, nsize);
  if (!n) {
    /* Lua expects shrinking to succeed: a small block can stay where it
     * is (its extra bytes are lost until it is freed); else Lua keeps the
     * old block and raises */
    return kind == SMALL && nsize < osize ? ptr : NULL;
  }
  memcpy(n, ptr, osize < nsize ? osize : nsize);
  kind_free(a, ptr, osize);
  return n;
}

lr_alloc *lr__alloc_new(void) {
  lr_alloc *a = calloc(1, sizeof *a);
  if (a) {
    a->next_size = FIRST_ARENA;
    a->pf_next = PF_OFF - 1;
    a->sweep_at = SWEEP_MIN;
    a->fail_left = -1;
#ifndef NDEBUG
    const char *env = getenv("LR_FAIL_ALLOC_AFTER");
    if (env && *env) a->fail_left = strtoll(env, NULL, 10);
#endif
  }
  return a;
}

/* After lua_close: every block is dead, give the arenas back. */
void lr__alloc_free(lr_alloc *a) {
  if (!a) return;
  prefault_stop(a);
  for (arena *h = a->arenas, *next; h; h = next) {
    next = h->next;
    munmap((char *)h - sizeof(region), h->size);
  }
  free(a);
}
