/* The arena allocator (LR_ALLOC_ARENAS).  A task is a handful of small blocks (its
 * coroutine, its stack, two CallInfos, its handle); malloc adds a header and
 * rounding to each and backs them with 4 KiB pages, one page fault each.
 * Here small blocks come from per-size free lists carved out of arenas that
 * ask for transparent huge pages (one fault per 2 MiB); Lua passes the old
 * size on every call, so blocks need no header.  Blocks up to 128 KiB go
 * to malloc; bigger ones are mappings of their own (big_alloc).  Whether it
 * pays: bench/README.md (LR_ALLOC_ARENAS); without it the Lua heap is
 * lauxlib's realloc (alloc.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/base.h"
#include "base/prefault.h"

#define GRAIN 16                      /* every block is a multiple of this */
#define SMALL_MAX 1024                /* larger blocks: malloc */
#define NCLASS (SMALL_MAX / GRAIN)
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

/* Lifetime: one per Lua state, freed after lua_close (every block dead). */
struct lr_arenas {
  free_block *free[NCLASS];
  char *bump, *end;    /* the region being filled */
  char *fresh, *arena_end;  /* the current arena's regions never used yet */
  region *pool;        /* wholly free regions */
  size_t freed;        /* bytes in the free lists */
  size_t sweep_at;     /* sweep when a region is needed and freed is past this */
  uint32_t epoch;
  arena *arenas;
  size_t next_size;
  lr_prefault *pf;     /* NULL: none (built without LR_PREFAULT, or no memory) */
};
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
static int new_arena(lr_arenas *a) {
  size_t size = a->next_size;
  /* a huge arena is aligned to a huge page so all of it can be one */
  char *p = map_aligned(size, size >= LR_HUGE_PAGE ? LR_HUGE_PAGE : REGION);
  if (!p) return -1;
#ifdef MADV_HUGEPAGE
  if (size >= LR_HUGE_PAGE) madvise(p, size, MADV_HUGEPAGE);
#endif
  arena *h = (arena *)(p + sizeof(region));
  h->next = a->arenas;
  h->size = size;
  a->arenas = h;
  a->bump = p + sizeof(region) + ((sizeof *h + GRAIN - 1) & ~(size_t)(GRAIN - 1));
  a->end = p + REGION;
  a->fresh = a->end;
  a->arena_end = p + size;
  lr__prefault_arena(a->pf, p, size);
  if (a->next_size < MAX_ARENA) a->next_size *= 2;
  return 0;
}

/* Counts each filled region's free bytes in the free lists; the regions
 * wholly free leave the lists for the pool.  Linear in the free blocks, and rare:
 * after one, the lists must hold SWEEP_MIN and twice what it left before
 * the next. */
static void sweep(lr_arenas *a) {
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
static int refill(lr_arenas *a) {
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
    lr__prefault_region(a->pf, (char *)r);
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

static inline void *small_alloc(lr_arenas *a, size_t cls) {
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

static inline void small_free(lr_arenas *a, void *p, size_t cls) {
  free_block *b = p;
  b->next = a->free[cls];
  a->free[cls] = b;
  a->freed += (cls + 1) * GRAIN;
}

#define CLASS(n) (((n) + GRAIN - 1) / GRAIN - 1)

/* The Lua heap's big blocks (a big table's slots, a long string): each is a
 * mapping of its own, so growing one is an mremap (no copy into fresh
 * pages), and its new pages are populated at once (LR_PREFAULT), as Lua
 * writes every byte of what it asks for at once.  Lua passes the old size back, so the
 * mapping's length needs no header. */
#define BIG_MIN ((size_t)128 << 10)  /* glibc's own default mmap threshold */
#define PAGES(n) (((n) + 4095) & ~(size_t)4095)

static void *big_alloc(size_t n) {
  void *p = mmap(NULL, PAGES(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  return lr__populate(lr__advise_huge(p, n), 0, n);
}

static void *big_realloc(void *p, size_t o, size_t n) {
  if (PAGES(o) == PAGES(n)) return p;
  void *q = mremap(p, PAGES(o), PAGES(n), MREMAP_MAYMOVE);
  if (q == MAP_FAILED) return NULL;  /* Lua keeps the old block */
  return n > o ? lr__populate(lr__advise_huge(q, n), o, n) : q;
}

/* Three kinds of block by size: small (arenas), medium (malloc), big (own mapping). */
enum { SMALL, MEDIUM, BIG };
#define KIND(n) ((n) <= SMALL_MAX ? SMALL : (n) < BIG_MIN ? MEDIUM : BIG)

static inline void *kind_alloc(lr_arenas *a, size_t n) {
  if (n <= SMALL_MAX) return small_alloc(a, CLASS(n));
  return n < BIG_MIN ? malloc(n) : big_alloc(n);
}

static inline void kind_free(lr_arenas *a, void *p, size_t n) {
  if (n <= SMALL_MAX) small_free(a, p, CLASS(n));
  else if (n < BIG_MIN) free(p);
  else munmap(p, PAGES(n));
}

/* lua_Alloc's contract, with osize meaningful whenever ptr is set */
void *lr__arenas_alloc(lr_arenas *a, void *ptr, size_t osize, size_t nsize) {
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

lr_arenas *lr__arenas_new(void) {
  lr_arenas *a = calloc(1, sizeof *a);
  if (a) {
    a->next_size = FIRST_ARENA;
    a->sweep_at = SWEEP_MIN;
    a->pf = lr__prefault_new();
  }
  return a;
}

/* After lua_close: every block is dead, give the arenas back. */
void lr__arenas_free(lr_arenas *a) {
  if (!a) return;
  lr__prefault_free(a->pf);
  for (arena *h = a->arenas, *next; h; h = next) {
    next = h->next;
    munmap((char *)h - sizeof(region), h->size);
  }
  free(a);
}
