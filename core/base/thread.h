/* Threads of ours take no signals: SIGINT (and the CLI's SIGTERM) must reach
 * the main thread, the runtime's handler or the CLI's sigwait, wherever it
 * is waiting.  A new thread inherits its creator's mask, so each is created
 * with every signal blocked (thread.c). */
#ifndef LR_THREAD_H
#define LR_THREAD_H

#include <pthread.h>
#include <signal.h>

/* The calling thread's mask while threads that must take no signals are
 * being made (by us or by a library, e.g. MHD_start_daemon). */
typedef struct {
  sigset_t old;
  int masked;   /* old holds the mask to restore */
} lr_sigmask;

void lr__sigmask_block_all(lr_sigmask *m);
void lr__sigmask_restore(const lr_sigmask *m);

/* pthread_create(t, NULL, fn, arg) with every signal blocked in the new
 * thread; pthread_create's result (0 or an errno value). */
int lr__thread_create_masked(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
