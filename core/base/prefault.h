/* The arenas' prefault helper (prefault.c), for arena.c only.  Built with
 * LR_PREFAULT; without it these do nothing and pages are faulted in as they
 * are first touched. */
#ifndef LR_PREFAULT_H
#define LR_PREFAULT_H

#include <stddef.h>

typedef struct lr_prefault lr_prefault;

#ifdef LR_PREFAULT
/* The state for one allocator: NULL (no prefaulting) when out of memory.
 * The helper thread starts on the first big arena (not with
 * LESSONRUN_PREFAULT=0: then only the small arenas are populated);
 * lr__prefault_free (after the last allocation) stops it and frees it all. */
lr_prefault *lr__prefault_new(void);
void lr__prefault_free(lr_prefault *pf);
/* A new arena [p, p + size) is being filled from p on. */
void lr__prefault_arena(lr_prefault *pf, char *p, size_t size);
/* A fresh region at `at` of the current arena is about to be filled. */
void lr__prefault_region(lr_prefault *pf, char *at);
/* Faults in the whole pages of [p + from, p + to) now, contents untouched;
 * returns p. */
void *lr__populate(void *p, size_t from, size_t to);
#else
static inline lr_prefault *lr__prefault_new(void) { return NULL; }
static inline void lr__prefault_free(lr_prefault *pf) { (void)pf; }
static inline void lr__prefault_arena(lr_prefault *pf, char *p, size_t size) { (void)pf; (void)p; (void)size; }
static inline void lr__prefault_region(lr_prefault *pf, char *at) { (void)pf; (void)at; }
static inline void *lr__populate(void *p, size_t from, size_t to) { (void)from; (void)to; return p; }
#endif

#endif
