/* The Lua state's allocator: the arenas (arena.c) when built with
 * LR_ALLOC_ARENAS, else lauxlib's l_alloc (realloc and free), as in lua5.4.
 * Sanitized builds take the plain way, so AddressSanitizer sees every Lua
 * block.  Debug builds can be told to fail (LR_FAIL_ALLOC_AFTER) either way. */
#include <stdlib.h>

#include "base/base.h"

#if defined(__SANITIZE_ADDRESS__)
#undef LR_ALLOC_ARENAS
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#undef LR_ALLOC_ARENAS
#endif
#endif

/* Lifetime: made before lua_newstate, freed after lua_close. */
struct lr_alloc {
  lr_arenas *arenas;    /* NULL: the plain way */
  long long fail_left;  /* debug builds: allocations before they fail, or -1 */
};

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
#ifdef LR_ALLOC_ARENAS
  return lr__arenas_alloc(a->arenas, ptr, osize, nsize);
#else
  (void)a; (void)osize;
  if (nsize == 0) { free(ptr); return NULL; }
  return realloc(ptr, nsize);
#endif
}

lr_alloc *lr__alloc_new(void) {
  lr_alloc *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->fail_left = -1;
#ifndef NDEBUG
  const char *env = getenv("LR_FAIL_ALLOC_AFTER");
  if (env && *env) a->fail_left = strtoll(env, NULL, 10);
#endif
#ifdef LR_ALLOC_ARENAS
  if (!(a->arenas = lr__arenas_new())) { free(a); return NULL; }
#endif
  return a;
}

void lr__alloc_free(lr_alloc *a) {
  if (!a) return;
#ifdef LR_ALLOC_ARENAS
  lr__arenas_free(a->arenas);
#endif
  free(a);
}
