/* Creating threads that take no signals (thread.h). */
#include "base/thread.h"

void lr__sigmask_block_all(lr_sigmask *m) {
  sigset_t all;
  sigfillset(&all);
  m->masked = pthread_sigmask(SIG_SETMASK, &all, &m->old) == 0;
}

void lr__sigmask_restore(const lr_sigmask *m) {
  if (m->masked) pthread_sigmask(SIG_SETMASK, &m->old, NULL);
}

int lr__thread_create_masked(pthread_t *t, void *(*fn)(void *), void *arg) {
  lr_sigmask m;
  lr__sigmask_block_all(&m);
  int rc = pthread_create(t, NULL, fn, arg);
  lr__sigmask_restore(&m);
  return rc;
}
