/* A script whose code names fetch (a constant of the loaded chunk: not a
 * comment) gets libcurl loading on a thread from the start, as an import at
 * its top would load it, rather than at its first request: dlopen of
 * libcurl and its ~30 libraries is a sizeable part of the lesson's short
 * run of fetches (bench/README.md, LR_PRELOAD).  Anything else (-e, the
 * REPL, scripts that never name fetch) starts as before. */
#include <string.h>

#include <lua.h>

#include "base/curl_api.h"
#include "preload.h"

typedef struct {
  const char *word;
  size_t len;
  int found;
} scan_t;

/* lua_dump writes each constant string in one piece: a global or field
 * named fetch shows up whole. */
static int scan(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  scan_t *s = ud;
  if (!s->found && sz >= s->len && memmem(p, sz, s->word, s->len)) s->found = 1;
  return s->found;  /* non-zero stops the dump */
}

int lr__function_mentions(lua_State *L, int idx, const char *word) {
  scan_t s = {word, strlen(word), 0};
  lua_pushvalue(L, idx);
  lua_dump(L, scan, &s, 1);  /* stripped: constants only, not a path or a local named fetch */
  lua_pop(L, 1);
  return s.found;
}

void lr__preload_if_fetching(lua_State *L) {
  if (lr__function_mentions(L, -1, "fetch")) lr__curl_preload();
}
