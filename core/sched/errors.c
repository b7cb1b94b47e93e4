/* Error values that carry a kind (cancelled, timeout, the HTTP failures...):
 * a table {kind=, message=, ...} with a shared metatable, so pcall can tell
 * them apart from ordinary error strings. */
#include <string.h>

#include "sched/sched.h"
#include "base/url.h"

#define ERROR_MT "lessonrun.Error"

static int err_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_getfield(L, 1, "kind");
  }
  lua_pushstring(L, luaL_optstring(L, -1, "error"));
  return 1;
}

static void push_mt(lua_State *L) {
  if (luaL_newmetatable(L, ERROR_MT)) {
    lua_pushcfunction(L, err_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushstring(L, ERROR_MT);
    lua_setfield(L, -2, "__name");
  }
}

/* The cancellation error: one object per runtime, made once (so that
 * cancelling costs no allocation); it is told by its kind (lr__is_cancel),
 * as a copy of it made by error() or offload must count too. */
void lr__push_cancel(lua_State *L, lr_runtime *rt) {
  if (rt->cancel_ref == LUA_NOREF) {
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "cancelled");
    lua_setfield(L, -2, "kind");
    lua_pushliteral(L, "task cancelled");
    lua_setfield(L, -2, "message");
    push_mt(L);
    lua_setmetatable(L, -2);
    rt->cancel_ref = lr__ref(L, rt);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->cancel_ref);
}

volatile sig_atomic_t lr__sigint_count = 0;

int lr__raise_interrupt(lua_State *L, lr_runtime *rt, int unhook) {
  if (unhook) lua_sethook(L, NULL, 0, 0);
  lr_task *t = lr__current(L);
  if (t) t->interrupted = 1;
  rt->interrupted = 1;
  lr__push_cancel(L, rt);
  return lua_error(L);
}

static int is_error(lua_State *L, int idx) {
  int r = 0;
  if (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, ERROR_MT);
    r = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return r;
}

int lr__is_cancel(lua_State *L, int idx) {
  int r = 0;
  idx = lua_absindex(L, idx);
  if (is_error(L, idx)) {
    r = lua_getfield(L, idx, "kind") == LUA_TSTRING && strcmp(lua_tostring(L, -1), "cancelled") == 0;
    lua_pop(L, 1);
  }
  return r;
}

/* Pushes a new error value {kind=, message=}. */
void lr__push_errobj(lua_State *L, const char *kind, const char *msg) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  push_mt(L);
  lua_setmetatable(L, -2);
}

/* Where the authority of a URL in a message ends: at its path, query or
 * fragment, or where the text around it resumes. */
#define TEXT_AUTHORITY_END "/?#\\ \t\r\n\"'<>()[]{}|`"

/* Secrets stay out of messages: every URL in s (an error message may quote
 * several, and curl's own text too) loses its password, or its user name
 * when that is all there is (often a token). */
const char *lr__push_redacted(lua_State *L, const char *s, size_t n) {
  if (!memchr(s, '@', n)) return lua_pushlstring(L, s, n);  /* no userinfo: every fetch's r.url */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t from = 0;
  for (size_t i = 0; i + 3 <= n; i++) {
    if (memcmp(s + i, "://", 3) != 0) continue;
    size_t start = i + 3, at, end = lr__url_authority(s, n, start, TEXT_AUTHORITY_END, &at);
    if (at == start) continue;  /* no userinfo */
    at--;                       /* the '@' */
    const char *colon = memchr(s + start, ':', at - start);
    size_t keep = colon ? (size_t)(colon + 1 - s) : start;
    luaL_addlstring(&b, s + from, keep - from);
    luaL_addstring(&b, "***");
    from = at;
    i = end > 0 ? end - 1 : end;
  }
  luaL_addlstring(&b, s + from, n - from);
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Ctrl-C stops a __tostring that never returns: the SIGINT handler hooks
 * only a running task, and a report runs outside any. */
static int sigint_seen;
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if ((int)lr__sigint_count != sigint_seen) luaL_error(L, "interrupted");
}

/* lua_CFunction(v): v as text, as lua.c's msghandler makes it.  The
 * __tostring runs in a protected call with the loop marked as driven, so an
 * error in it is reported, a wait in it is refused (primitives outside a task
 * would otherwise drive the loop from inside whatever is reporting) and
 * Ctrl-C ends a loop in it. */
static int perrtext(lua_State *L) {
  lua_settop(L, 1);
  if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
    lua_tostring(L, 1);
    return 1;
  }
  if (luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL) {
    /* (an offload worker's state has no runtime: no loop to wait on there) */
    lr_runtime *rt = lua_getfield(L, LUA_REGISTRYINDEX, LR_RUNTIME_KEY) == LUA_TUSERDATA ?
                     lua_touserdata(L, -1) : NULL;
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    lua_Hook hook = lua_gethook(L);
    int mask = lua_gethookmask(L), count = lua_gethookcount(L);
    if (rt) {
      rt->drive_hold(rt, 1);  /* after the run too: Ctrl-C must reach the hook */
      sigint_seen = (int)lr__sigint_count;
      lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1000);  /* (the old one is put back below) */
    }
    int st = lua_pcall(L, 1, 1, 0);
    if (rt) {
      rt->drive_hold(rt, 0);
      lua_sethook(L, hook, mask, count);
    }
    if (st == LUA_OK && lua_type(L, -1) == LUA_TSTRING) return 1;
    if (st != LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
      lua_pushfstring(L, "(error object is a %s value; its __tostring failed: %s)", luaL_typename(L, 1),
                      lua_tostring(L, -1));
      return 1;
    }
  }
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  return 1;
}

const char *lr__errtext(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (!lua_checkstack(L, 2)) return lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : "not enough memory";
  lua_pushcfunction(L, perrtext);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK && lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushliteral(L, "not enough memory");  /* interned by Lua itself: no allocation */
  }
  lua_replace(L, idx);
  return lua_tostring(L, idx);
}

/* core.error(kind, message [, fields]) -> an error value (not raised) */
static int l_error(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  const char *msg = luaL_checkstring(L, 2);
  if (lua_istable(L, 3)) lua_settop(L, 3);
  else { lua_settop(L, 2); lua_newtable(L); }
  lua_pushstring(L, kind);
  lua_setfield(L, 3, "kind");
  lua_pushstring(L, msg);
  lua_setfield(L, 3, "message");
  push_mt(L);
  lua_setmetatable(L, 3);
  return 1;
}

/* iscancelled(err) -> true if err is the cancellation error */
static int l_iscancelled(lua_State *L) {
  lua_pushboolean(L, lr__is_cancel(L, 1));
  return 1;
}

/* errorkind(err) -> "cancelled", "timeout", ... for lessonrun errors, or nil */
static int l_errorkind(lua_State *L) {
  if (is_error(L, 1)) lua_getfield(L, 1, "kind");
  else lua_pushnil(L);
  return 1;
}

void lr__function_expected(lua_State *L, int arg, const char *fname) {
  int ty = lua_type(L, arg);
  if (ty == LUA_TLIGHTUSERDATA || (ty > LUA_TSTRING && ty != LUA_TTABLE)) return;
  luaL_argerror(L, arg, lua_pushfstring(L, "function expected, got %s; pass the function and its arguments: "
                                        "%s(f, a), not %s(f(a))", luaL_typename(L, arg), fname, fname));
}

const luaL_Reg lr__error_funcs[] = {
  {"error", l_error}, {"iscancelled", l_iscancelled}, {"errorkind", l_errorkind}, {NULL, NULL}
};
