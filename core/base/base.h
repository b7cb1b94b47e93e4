/* base: what every layer may use; calls nothing above it (the allocator, dl, the embedded files). */
#ifndef LR_BASE_H
#define LR_BASE_H

#include <stddef.h>
#include <stdint.h>

/* dl.c */
/* dlopen(soname) and dlsym each of the n names into syms (dl.c): 0, or -1
 * with the reason in err (the library, or the first name it lacks) */
int lr__dl_bind(const char *soname, const char *const *names, void **syms, size_t n, char *err,
                size_t errlen);

/* alloc.c: the Lua state's allocator (small blocks from huge-page arenas) */
typedef struct lr_alloc lr_alloc;
lr_alloc *lr__alloc_new(void);
void lr__alloc_free(lr_alloc *a);
void *lr__alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void *lr__advise_huge(void *p, size_t n);  /* madvise(MADV_HUGEPAGE) what it can; returns p */
void *lr__ring_shrink(void *ring, size_t size, size_t *head, size_t len, size_t cap);


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
