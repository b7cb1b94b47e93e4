/* The wait kinds' registry: one process-wide table, filled as each
 * primitive's open function registers its kinds, read by the scheduler
 * (cleanup), the trace and the warnings (names).  A kind's id is set once,
 * under the lock, before any task of any state parks on it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "sched/sched.h"

static lr_wait_kind *kinds[LR_MAX_WAIT_KINDS];  /* [0]: "not waiting" */
static unsigned nkinds = 1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void lr__wait_kind_register(lr_wait_kind *k) {
  pthread_mutex_lock(&lock);
  if (k->id == 0) {
    if (nkinds == LR_MAX_WAIT_KINDS) {  /* a build that defines too many: fix LR_MAX_WAIT_KINDS */
      fprintf(stderr, "lessonrun: more than %d wait kinds\n", LR_MAX_WAIT_KINDS - 1);
      abort();
    }
    k->id = nkinds;
    kinds[nkinds++] = k;
  }
  pthread_mutex_unlock(&lock);
}

const lr_wait_kind *lr__wait_kind(unsigned id) {
  return id > 0 && id < LR_MAX_WAIT_KINDS ? kinds[id] : NULL;
}
