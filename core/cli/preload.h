/* Loading libcurl early for a script that names fetch (preload.c, built with
 * LR_PRELOAD; without it libcurl loads at the first fetch, as for -e). */
#ifndef LR_PRELOAD_H
#define LR_PRELOAD_H

#include <lua.h>

#ifdef LR_PRELOAD
/* The chunk on the top of L's stack, just loaded: start loading libcurl on
 * a thread if its code names fetch (lr__curl_preload_join before exiting). */
void lr__preload_if_fetching(lua_State *L);
/* 1 if the function at idx (a loaded chunk) has the word among its constants */
int lr__function_mentions(lua_State *L, int idx, const char *word);
#else
static inline void lr__preload_if_fetching(lua_State *L) { (void)L; }
#endif

#endif
