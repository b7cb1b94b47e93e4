/* base: what every layer may use; calls nothing above it (the allocator, rings, dl, the embedded files). */
#ifndef LR_BASE_H
#define LR_BASE_H

#include <stddef.h>
#include <stdint.h>

/* dl.c */
/* dlopen(soname) and dlsym each of the n names into syms (dl.c): 0, or -1
 * with the reason in err (the library, or the first name it lacks) */
int lr__dl_bind(const char *soname, const char *const *names, void **syms, size_t n, char *err,
                size_t errlen);

/* alloc.c: the Lua state's allocator, a lua_Alloc (ud: the lr_alloc): the
 * arenas (arena.c) when built with LR_ALLOC_ARENAS, else lauxlib's
 * realloc/free.  lr__alloc_free after lua_close. */
typedef struct lr_alloc lr_alloc;
lr_alloc *lr__alloc_new(void);
void lr__alloc_free(lr_alloc *a);
void *lr__alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* arena.c, for alloc.c: small blocks from huge-page arenas */
typedef struct lr_arenas lr_arenas;
lr_arenas *lr__arenas_new(void);
void lr__arenas_free(lr_arenas *a);
void *lr__arenas_alloc(lr_arenas *a, void *ptr, size_t osize, size_t nsize);
#define LR_HUGE_PAGE ((size_t)2 << 20)

/* ring.c: a ring is four fields of its owner, T *ring and size_t head, len,
 * cap; element i (from the head) is ring[(head + i) % cap].  Both helpers
 * keep every element's offset from the head, so an index kept as "offset
 * from the head" (the FIFO lane's heap_idx - fifo_base) stays right, and
 * neither reads or writes the elements otherwise.  The owner decides when:
 *   grow before a push that may not fit (the ready queue: room for every
 *   live task at spawn; the FIFO lane: when len == cap, need = len + 1):
 *     T *r = lr__ring_grow(o->ring, sizeof *r, o->head, o->len, &o->cap, need);
 *     if (!r) return -1;  (nothing changed)
 *     o->ring = r;
 *   shrink after a pop, once len <= cap / 4 and the ring is worth it (the
 *   ready queue also keeps room for its live tasks):
 *     o->ring = lr__ring_shrink(o->ring, sizeof *o->ring, &o->head, o->len, &o->cap);
 */
/* Room for need elements: cap becomes the least 256 * 2^k (or cap * 2^k)
 * >= need.  Returns the ring (moved, perhaps), or NULL when out of memory
 * with the old ring and cap untouched; the ring itself when need <= cap. */
void *lr__ring_grow(void *ring, size_t size, size_t head, size_t len, size_t *cap, size_t need);
/* Halve a ring holding len <= cap / 4 elements, in place; frees it (NULL,
 * cap 0) when len is 0.  Updates head and cap; never fails. */
void *lr__ring_shrink(void *ring, size_t size, size_t *head, size_t len, size_t *cap);
/* madvise(MADV_HUGEPAGE) a big block (2 huge pages or more); returns p, NULL too */
void *lr__advise_huge(void *p, size_t n);

/* json_quote.c: UTF-8 and JSON strings without jansson */
/* length of the valid UTF-8 sequence at s (n bytes left), or 0: no overlongs,
 * no surrogates, nothing past U+10FFFF */
size_t lr__utf8_len(const unsigned char *s, size_t n);
char *lr__utf8_put(char *d, unsigned long cp);  /* writes cp's UTF-8 at d; returns the end */
/* s[0..n) as a quoted JSON string in dst (LR_JSON_QUOTE_MAX(n) bytes); 0 on invalid UTF-8 unless replace */
size_t lr__json_quote(char *dst, const char *s, size_t n, int replace, size_t *bad);
#define LR_JSON_QUOTE_MAX(n) (6 * (n) + 2)

/* t + s seconds, in ns (s >= 0), saturating at UINT64_MAX: a deadline */
static inline uint64_t lr__after_seconds(uint64_t t, double s) {
  double ns = s * 1e9;
  return ns >= (double)(UINT64_MAX - t) ? UINT64_MAX : t + (uint64_t)ns;
}

/* parse_uint.c: a whole non-negative decimal integer up to max, no sign, no
 * spaces, no overflow: 1 with it in *out, else 0 */
int lr__parse_uint(const char *p, uint64_t max, uint64_t *out);

/* stdfds.c: 0-2 on /dev/null where closed */
void lr__std_fds_open(void);

/* embed.c (generated) */
typedef struct {
  const char *name, *chunkname;
  const char *src;       /* the file's text */
  size_t len;
  const char *bytecode;  /* the same, compiled by the Lua lessonrun was built with */
  size_t bclen;
} lr_embedded;
extern const lr_embedded lr__embedded[];
/* 1 if a source ("@/x/lessonrun/api.lua", "lessonrun/timeline.lua") is one of
 * those files, built in or a copy on disk (sources.c) */
int lr__our_source(const char *src, size_t len);

#endif
