/* The settlers' registry (prims.h): a few C functions, process-wide, each
 * added once by the layer whose tables build fields on first read, before
 * any such table exists. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "prims/prims.h"

#define MAX_SETTLERS 4

static lr_settle_fn settlers[MAX_SETTLERS];
static int nsettlers;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void lr__settler_register(lr_settle_fn fn) {
  pthread_mutex_lock(&lock);
  int known = 0;
  for (int i = 0; i < nsettlers; i++) known |= settlers[i] == fn;
  if (!known) {
    if (nsettlers == MAX_SETTLERS) {  /* a build with more lazy tables: raise MAX_SETTLERS */
      fprintf(stderr, "lessonrun: more than %d settlers\n", MAX_SETTLERS);
      abort();
    }
    settlers[nsettlers++] = fn;
  }
  pthread_mutex_unlock(&lock);
}

void lr__settle(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  for (int i = 0; i < nsettlers; i++) settlers[i](L, idx);
}
