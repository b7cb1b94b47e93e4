/* Prefaulting the arenas (arena.c).  A program whose heap grows fast (a
 * million tasks) spends most of its time in the kernel, which zeroes each
 * fresh page as it is first touched.  So once the heap is past PF_FROM, a
 * helper thread asks the kernel to fault in (MADV_POPULATE_WRITE: contents
 * untouched, safe next to the main thread) the next PF_WINDOW of the arena
 * ahead of the regions in use, on another core; RSS runs at most PF_WINDOW
 * ahead of use.  The first arenas, too small for huge pages, are faulted in
 * SYNC_WINDOW at a time, one call instead of a fault per page.  Whether it
 * pays: bench/README.md (LR_PREFAULT). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/base.h"
#include "base/prefault.h"
#include "base/thread.h"

#define PF_WINDOW ((size_t)6 << 20)
#define SYNC_WINDOW ((size_t)64 << 10)
#define PF_FROM ((size_t)16 << 20)  /* first arena it works on: a heap past ~16 MiB */
#define PF_OFF ((char *)UINTPTR_MAX)

/* Lifetime: made with the allocator, freed after its last block (the thread
 * joined first).  mu guards done, want, end, stop and failed, which the
 * thread reads; the rest is the main thread's. */
struct lr_prefault {
  char *next;            /* a fresh region past this: move the window on */
  char *arena, *arena_end;
  int started;           /* the thread runs */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *done, *want, *end;  /* populated up to done; asked up to want, in the arena ending at end */
  int stop, failed;
};

void *lr__populate(void *p, size_t from, size_t to) {
#ifdef MADV_POPULATE_WRITE
  uintptr_t b = ((uintptr_t)p + from + 4095) & ~(uintptr_t)4095;
  uintptr_t e = ((uintptr_t)p + to) & ~(uintptr_t)4095;
  if (e > b) madvise((void *)b, e - b, MADV_POPULATE_WRITE);  /* a failure only costs faults */
#endif
  return p;
}

static void *prefault_main(void *arg) {
  lr_prefault *pf = arg;
  pthread_mutex_lock(&pf->mu);
  while (!pf->stop) {
    if (pf->done >= pf->want) {
      pthread_cond_wait(&pf->cv, &pf->mu);
      continue;
    }
    char *from = pf->done, *to = from + LR_HUGE_PAGE < pf->want ? from + LR_HUGE_PAGE : pf->want;
    pthread_mutex_unlock(&pf->mu);
    /* whole pages (the arena's end is one): a page partly in use is only
     * faulted in, never written */
    char *page = (char *)((uintptr_t)from & ~(uintptr_t)4095);
    char *page_end = (char *)(((uintptr_t)to + 4095) & ~(uintptr_t)4095);
    int rc = -1, err = EINVAL;
#ifdef MADV_POPULATE_WRITE
    rc = madvise(page, (size_t)(page_end - page), MADV_POPULATE_WRITE);
    err = errno;
#endif
    pthread_mutex_lock(&pf->mu);
    if (rc != 0 && err != EINTR && err != EAGAIN) pf->failed = 1;  /* old kernel (EINVAL), or no memory */
    if (pf->failed) break;
    if (pf->done == from) pf->done = to;  /* unless the main thread moved it meanwhile */
  }
  pthread_mutex_unlock(&pf->mu);
  return NULL;
}

static int start(lr_prefault *pf, char *at) {
  const char *env = getenv("LESSONRUN_PREFAULT");  /* (tests compare with and without) */
  if (env && strcmp(env, "0") == 0) return -1;
  pf->done = pf->want = pf->end = at;
  if (lr__thread_create_masked(&pf->thread, prefault_main, pf) != 0) return -1;
  pf->started = 1;
  return 0;
}

/* A fresh region at `at` passed next.  In the first, small arenas (4 KiB
 * pages; start-up lives there): fault the next SYNC_WINDOW in now.  In big
 * ones: ask the helper for [at, at + PF_WINDOW). */
static void ahead(lr_prefault *pf, char *at) {
  char *end = pf->arena_end;
  if ((size_t)(end - pf->arena) < LR_HUGE_PAGE) {
    char *to = (size_t)(end - at) > SYNC_WINDOW ? at + SYNC_WINDOW : end;
    lr__populate(at, 0, (size_t)(to - at));
    pf->next = to;
    return;
  }
  pf->next = at + LR_HUGE_PAGE;  /* the next call, 2 MiB further on */
  if (!pf->started && start(pf, at) != 0) { pf->next = PF_OFF; return; }
  char *want = (size_t)(end - at) > PF_WINDOW ? at + PF_WINDOW : end;
  pthread_mutex_lock(&pf->mu);
  if (pf->failed) {
    pf->next = PF_OFF;
  } else {
    if (pf->end != end || pf->done < at) pf->done = at;  /* a new arena, or overtaken */
    pf->end = end;
    pf->want = want;
    pthread_cond_signal(&pf->cv);
  }
  pthread_mutex_unlock(&pf->mu);
}

/* Small programs never start the thread: only huge arenas, and not after it
 * failed. */
void lr__prefault_arena(lr_prefault *pf, char *p, size_t size) {
  if (!pf) return;
  pf->arena = p;
  pf->arena_end = p + size;
  if (size < LR_HUGE_PAGE) pf->next = p;  /* (populated SYNC_WINDOW at a time) */
  else if (pf->next != PF_OFF) pf->next = size >= PF_FROM ? p : PF_OFF - 1;
  if (p >= pf->next) ahead(pf, p);
}

void lr__prefault_region(lr_prefault *pf, char *at) {
  if (pf && at >= pf->next) ahead(pf, at);
}

lr_prefault *lr__prefault_new(void) {
  lr_prefault *pf = calloc(1, sizeof *pf);
  if (!pf) return NULL;
  pthread_mutex_init(&pf->mu, NULL);
  pthread_cond_init(&pf->cv, NULL);
  pf->next = PF_OFF - 1;
  return pf;
}

void lr__prefault_free(lr_prefault *pf) {
  if (!pf) return;
  if (pf->started) {
    pthread_mutex_lock(&pf->mu);
    pf->stop = 1;
    pthread_cond_signal(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->thread, NULL);
  }
  pthread_cond_destroy(&pf->cv);
  pthread_mutex_destroy(&pf->mu);
  free(pf);
}
