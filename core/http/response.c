/* The response object: a table {status, url, elapsed, http_version, body,
 * headers, header_list} with methods (json) from its metatable; headers
 * and header_list are built on first use. */
#include <string.h>

#include "base/curl_api.h"
#include "http/http.h"

#define RESPONSE_MT "lessonrun.Response"
#define HEADERS_MT "lessonrun.Headers"

/* The response's raw header block ("name\0value\0" pairs, as on_header
 * keeps them) waits under this private key until r.headers or
 * r.header_list is first used (lr__settle for raw walkers): most programs
 * never look, and building the two tables (8 tables and 16 strings for
 * nginx's 5 headers) costs memory for every response a program keeps
 * (bench/README.md: the A/B; -DLR_LAZY_HEADERS=0 builds them at once). */
#ifndef LR_LAZY_HEADERS
#define LR_LAZY_HEADERS 1
#endif
static const char raw_headers_key = 'h';

/* Sets t[name] = the value on top, without metamethods (r_newindex). */
static void rawsetfield(lua_State *L, int t, const char *name) {
  lua_pushstring(L, name);
  lua_insert(L, -2);
  lua_rawset(L, t);
}

/* Builds headers and header_list in the table at t from the "name\0value\0"
 * block s[0..len). */
static void build_headers(lua_State *L, int t, const char *s, size_t len) {
  /* headers: lower-case names -> value (repeats joined with ", ");
   * header_list: every {name, value} in order, repeats kept */
  lua_newtable(L);
  luaL_setmetatable(L, HEADERS_MT);
  lua_newtable(L);
  int n = 0;
  for (size_t i = 0; i < len;) {
    const char *name = s + i;
    size_t nl = strlen(name);
    const char *value = name + nl + 1;
    size_t vl = strlen(value);
    i += nl + vl + 2;
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, name, nl);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, value, vl);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, ++n);
    luaL_Buffer b;  /* the name in lower case, locale-free */
    char *p = luaL_buffinitsize(L, &b, nl);
    for (size_t k = 0; k < nl; k++)
      p[k] = (name[k] >= 'A' && name[k] <= 'Z') ? (char)(name[k] - 'A' + 'a') : name[k];
    luaL_pushresultsize(&b, nl);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -4) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, value, vl);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, value, vl);
    }
    lua_rawset(L, -4);
  }
  rawsetfield(L, t, "header_list");
  rawsetfield(L, t, "headers");
}

/* If the table at idx is a response whose headers wait in their raw block,
 * builds r.headers and r.header_list now (whatever its metatable has become:
 * the raw block is the response's mark).  Also the settler raw walkers call
 * (lr__settle). */
static void response_settle(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, idx, &raw_headers_key) != LUA_TSTRING) {
    lua_pop(L, 1);
    return;
  }
  lua_pushnil(L);  /* first, so that nothing below builds them twice */
  lua_rawsetp(L, idx, &raw_headers_key);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);  /* anchored on the stack meanwhile */
  build_headers(L, idx, s, len);
  lua_pop(L, 1);
}

static void push_response(lua_State *L, lr_fetch *f) {
  CURL *e = f->x.easy;
  long status = 0;
  char *url = NULL;
  curl_off_t us = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);
  curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &us);
  long version = 0;
  curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
  lua_createtable(L, 0, 8);  /* room for headers and header_list too */
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  if (url) lr__push_redacted(L, url, strlen(url));
  else lua_pushliteral(L, "");
  lua_setfield(L, -2, "url");
  lua_pushnumber(L, (lua_Number)us / 1e6);
  lua_setfield(L, -2, "elapsed");
  lua_pushstring(L, version == CURL_HTTP_VERSION_1_0 ? "1.0" : version == CURL_HTTP_VERSION_1_1 ? "1.1"
                    : version == CURL_HTTP_VERSION_2_0 ? "2" : version == CURL_HTTP_VERSION_3 ? "3" : "?");
  lua_setfield(L, -2, "http_version");
  lua_pushlstring(L, f->body.p, f->body.len);
  lua_setfield(L, -2, "body");
  if (LR_LAZY_HEADERS) {
    lua_pushlstring(L, f->hdrs.p, f->hdrs.len);
    lua_rawsetp(L, -2, &raw_headers_key);
  } else {
    build_headers(L, lua_absindex(L, -1), f->hdrs.p, f->hdrs.len);
  }
  luaL_setmetatable(L, RESPONSE_MT);  /* last: the fields above bypass r_newindex */
}

static int finish_p(lua_State *L) {
  lr_fetch *f = lua_touserdata(L, 1);
  if (lr__is_error_status(f)) return lr__raise_failure(L, f, lua_touserdata(L, 2), lua_touserdata(L, 3));
  push_response(L, f);
  return 1;
}

/* The response, or the error raised, for a transfer that is over; protected,
 * so that f is freed even when building them runs out of memory. */
int lr__finish(lua_State *L, lr_fetch *f, const char *fname, const char *url) {
  lua_pushcfunction(L, finish_p);
  lua_pushlightuserdata(L, f);
  lua_pushlightuserdata(L, (void *)fname);
  lua_pushlightuserdata(L, (void *)url);
  int st = lua_pcall(L, 3, 1, 0);
  lr__fetch_free(f);
  return st == LUA_OK ? 1 : lua_error(L);
}

/* response:json() -> the body decoded; raises {kind="json"} if invalid */
static int r_json(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "body");
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (!s) return luaL_error(L, "json: response has no body");
  if (!lr__json_decode(L, s, len)) {
    lua_getfield(L, 1, "url");
    lr__push_errobj(L, "json", lua_pushfstring(L, "json: %s in the body of %s", lua_tostring(L, -2),
                                               luaL_optstring(L, -1, "?")));
    return lua_error(L);
  }
  return 1;
}

static int is_header_field(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  const char *k = lua_tostring(L, idx);
  return strcmp(k, "headers") == 0 || strcmp(k, "header_list") == 0;
}

/* r.json and the other methods (upvalue 1); r.headers and r.header_list,
 * built on first use */
static int r_index(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL || !is_header_field(L, 2)) return 1;
  response_settle(L, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, 1);
  return 1;
}

/* A program that sets r.headers before reading it replaces the built
 * table, as it would have before headers were lazy. */
static int r_newindex(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 3);
  if (is_header_field(L, 2)) response_settle(L, 1);
  lua_rawset(L, 1);
  return 0;
}

static int r_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

/* pairs(r) lists headers and header_list as before (and never the raw
 * block's private key) */
static int r_pairs(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  response_settle(L, 1);
  lua_pushcfunction(L, r_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int r_tostring(lua_State *L) {
  lua_getfield(L, 1, "status");
  lua_getfield(L, 1, "url");
  lua_getfield(L, 1, "body");
  lua_pushfstring(L, "response %d from %s (%I bytes)", (int)lua_tointeger(L, -3),
                  luaL_optstring(L, -2, "?"), (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

/* headers["Content-Type"] finds "content-type" */
static int h_index(lua_State *L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  size_t n;
  const char *k = lua_tolstring(L, 2, &n);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n);
  for (size_t i = 0; i < n; i++) p[i] = (k[i] >= 'A' && k[i] <= 'Z') ? (char)(k[i] - 'A' + 'a') : k[i];
  luaL_pushresultsize(&b, n);
  lua_rawget(L, 1);
  return 1;
}

void lr__response_open(lua_State *L) {
  lr__settler_register(response_settle);
  if (luaL_newmetatable(L, RESPONSE_MT)) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, r_json);
    lua_setfield(L, -2, "json");
    lua_pushcclosure(L, r_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, r_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, r_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushcfunction(L, r_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, HEADERS_MT)) {
    lua_pushcfunction(L, h_index);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}
