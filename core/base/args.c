/* Argument checks shared by the layers and the server (args.h). */
#include <stdarg.h>

#include "base/args.h"

int lr__opterror(lua_State *L, int arg, const char *fname, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

const char *lr__push_key_name(lua_State *L, int idx) {
  size_t n;
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: break;
    case LUA_TNUMBER:  /* a copy: lua_tolstring would change the key in place */
      lua_pushvalue(L, idx);
      return lua_tostring(L, -1);
    case LUA_TBOOLEAN: return lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
    default:  /* no metamethod runs: the message cannot fail or lie */
      return lua_pushfstring(L, "(a %s)", luaL_typename(L, idx));
  }
  const char *s = lua_tolstring(L, idx, &n);
  if (!lr__has_nul(s, n)) {
    lua_pushvalue(L, idx);
    return s;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    if (s[i]) luaL_addchar(&b, s[i]);
    else luaL_addstring(&b, "\\0");
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

static int option_index(lua_State *L, const char *const *names) {
  if (lua_type(L, -2) != LUA_TSTRING) return -1;
  size_t kl;
  const char *k = lua_tolstring(L, -2, &kl);
  for (int i = 0; names[i]; i++)
    if (strlen(names[i]) == kl && memcmp(names[i], k, kl) == 0) return i;
  return -1;
}

int lr__each_option(lua_State *L, int idx, const char *const *names, lr_option_fn each, void *ud) {
  int n = 0;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    each(L, option_index(L, names), ud);
    lua_pop(L, 1);
  }
  return n;
}
