/* Tab completion at the REPL's prompt: globals and their fields, as
 * "lessonrun.fe" or "t:wa" (a task's methods), found with raw access only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "rl.h"

static lua_State *complete_L;  /* readline's completion function takes no user data */

/* Replaces the value on top by the table to look into: itself if a table,
 * else its metatable's __index when that is one (task handles, responses:
 * their methods), and returns 1; else pops it and returns 0.  Raw access
 * only: completing must never run a metamethod. */
static int as_table(lua_State *L) {
  for (int depth = 0; depth < 4; depth++) {
    if (lua_istable(L, -1)) return 1;
    if (!lua_getmetatable(L, -1)) break;
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return 0;
}

/* Adds to the table at t the keys of the table on top (and of its
 * metatable's __index tables) that start with prefix, as head .. key. */
static void add_keys(lua_State *L, int t, const char *head, size_t headlen, const char *prefix, int depth) {
  size_t plen = strlen(prefix);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    size_t klen;
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &klen) : NULL;
    if (k && klen >= plen && memcmp(k, prefix, plen) == 0) {
      lua_pushlstring(L, head, headlen);
      lua_pushvalue(L, -2);
      lua_concat(L, 2);
      lua_pushboolean(L, 1);
      lua_rawset(L, t);
    }
  }
  if (depth < 4 && lua_getmetatable(L, -1)) {
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    if (lua_istable(L, -1)) add_keys(L, t, head, headlen, prefix, depth + 1);
    lua_pop(L, 2);
  }
}

/* lua_CFunction(text): a set {candidate = true} of completions of text */
static int collect(lua_State *L) {
  const char *text = lua_touserdata(L, 1);
  lua_newtable(L);
  int t = lua_gettop(L);
  const char *sep = NULL;
  for (const char *p = text; *p; p++)
    if (*p == '.' || *p == ':') sep = p;
  lua_pushglobaltable(L);
  if (sep) {  /* walk a.b.c to the table holding the last part */
    const char *seg = text;
    while (seg < sep) {
      const char *e = seg;
      while (e < sep && *e != '.' && *e != ':') e++;
      if (!as_table(L)) return 1;
      lua_pushlstring(L, seg, (size_t)(e - seg));
      lua_rawget(L, -2);
      lua_remove(L, -2);
      seg = e + 1;
    }
    if (!as_table(L)) return 1;
  }
  const char *prefix = sep ? sep + 1 : text;
  add_keys(L, t, text, (size_t)(prefix - text), prefix, 0);
  lua_settop(L, t);
  return 1;
}

static char **complete(const char *text, int start, int end) {
  (void)start; (void)end;
  *lr__rl.rl_attempted_completion_over = 1;  /* no file names */
  lua_State *L = complete_L;
  int top = lua_gettop(L);
  char **out = NULL;
  lua_pushcfunction(L, collect);
  lua_pushlightuserdata(L, (void *)text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) { lua_pop(L, 1); n++; }
    if (n > 0 && (out = calloc(n + 2, sizeof *out))) {
      /* out[0]: what the matches share, readline inserts it */
      size_t i = 1, common = SIZE_MAX;
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        lua_pop(L, 1);
        const char *m = lua_tostring(L, -1);
        if (!(out[i] = strdup(m))) break;
        size_t c = 0;
        if (i == 1) common = strlen(m);
        else while (c < common && out[1][c] == m[c]) c++;
        if (i > 1) common = c;
        i++;
      }
      out[0] = i > 1 ? strndup(out[1], common) : NULL;
      if (!out[0]) {
        for (size_t j = 1; j < i; j++) free(out[j]);
        free(out);
        out = NULL;
      } else if (i == 2) {  /* one match: it alone */
        free(out[0]);
        out[0] = out[1];
        out[1] = NULL;
      }
    }
  }
  lua_settop(L, top);
  return out;
}
void lr__complete_setup(lua_State *L) {
  complete_L = L;
  *lr__rl.rl_attempted_completion_function = complete;
  *lr__rl.rl_completion_append_character = '\0';
  *lr__rl.rl_completer_word_break_characters = " \t\n\"'`<>=;|&{}()[],+-*/%^#~";
}
