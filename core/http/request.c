/* A request's options (fetch(url, opts), blocking_fetch, fetch_all's
 * check): one table of option names and their checks, in the order they
 * are read, so that the first bad option is the one reported. */
#include <string.h>

#include "base/curl_api.h"
#include "http/http.h"
#include "base/args.h"
#include "base/http_token.h"

/* Each reads the option's value at idx into r, or raises; slot 3 keeps the
 * headers table and slot 4 the body string for the caller. */
typedef void (*opt_reader)(lua_State *L, lr_request *r, int idx, const char *name);

/* An integer option in [lo, hi]: an integer, or a float with an exact
 * integer value (2^20, 1e6, 5.0), as lauxlib takes them; else msg. */
static lua_Integer check_int(lua_State *L, lr_request *r, int idx, lua_Integer lo, lua_Integer hi,
                             const char *msg) {
  int isint = 0;
  lua_Integer v = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &isint) : 0;
  if (!isint || v < lo || v > hi) lr__opterror(L, 2, r->fname, "%s", msg);
  return v;
}

static long check_ms(lua_State *L, lr_request *r, int idx, const char *name) {
  if (!lua_isnumber(L, idx) || lua_type(L, idx) == LUA_TSTRING)
    lr__opterror(L, 2, r->fname, "option '%s' must be a number of seconds", name);
  lua_Number s = lua_tonumber(L, idx);
  if (!(s > 0) || s > 1e6) lr__opterror(L, 2, r->fname, "option '%s' must be > 0 and at most 1e6 seconds", name);
  long ms = (long)(s * 1000.0 + 0.5);
  return ms > 0 ? ms : 1;
}

static int check_bool(lua_State *L, lr_request *r, int idx, const char *name) {
  if (!lua_isboolean(L, idx)) lr__opterror(L, 2, r->fname, "option '%s' must be a boolean", name);
  return lua_toboolean(L, idx);
}

static void read_method(lua_State *L, lr_request *r, int idx, const char *name) {
  (void)name;
  if (lua_type(L, idx) != LUA_TSTRING) lr__opterror(L, 2, r->fname, "option 'method' must be a string");
  size_t ml;
  r->method = lua_tolstring(L, idx, &ml);
  if (ml == 0) lr__opterror(L, 2, r->fname, "option 'method' must not be empty");
  if (lr__has_nul(r->method, ml)) lr__opterror(L, 2, r->fname, "option 'method' contains a NUL byte");
  for (const char *p = r->method; *p; p++)
    if (!lr__http_tchar((unsigned char)*p))
      lr__opterror(L, 2, r->fname, "method '%s' is not a valid HTTP method", r->method);
}

static void read_headers(lua_State *L, lr_request *r, int idx, const char *name) {
  (void)name;
  if (!lua_istable(L, idx)) lr__opterror(L, 2, r->fname, "option 'headers' must be a table");
  lr__check_headers(L, r, idx);
  lua_copy(L, idx, 3);
  r->headers_idx = 3;
}

static void read_body(lua_State *L, lr_request *r, int idx, const char *name) {
  (void)name;
  if (lua_type(L, idx) != LUA_TSTRING) lr__opterror(L, 2, r->fname, "option 'body' must be a string");
  lua_copy(L, idx, 4);
  r->body = lua_tolstring(L, 4, &r->body_len);
}

static void read_json(lua_State *L, lr_request *r, int idx, const char *name) {
  char err[256];
  (void)name;
  if (r->body) lr__opterror(L, 2, r->fname, "give either 'body' or 'json', not both");
  if (!lr__json_encode(L, idx, err, sizeof err)) lr__opterror(L, 2, r->fname, "option 'json': %s", err);
  lua_copy(L, -1, 4);
  r->body = lua_tolstring(L, 4, &r->body_len);
  r->json = 1;
}

static void read_timeout(lua_State *L, lr_request *r, int idx, const char *name) {
  r->timeout_ms = check_ms(L, r, idx, name);
}

static void read_connect_timeout(lua_State *L, lr_request *r, int idx, const char *name) {
  r->connect_timeout_ms = check_ms(L, r, idx, name);
}

static void read_follow(lua_State *L, lr_request *r, int idx, const char *name) {
  r->follow = check_bool(L, r, idx, name);
}

static void read_max_redirects(lua_State *L, lr_request *r, int idx, const char *name) {
  (void)name;
  r->max_redirects = (long)check_int(L, r, idx, 0, 1000, "option 'max_redirects' must be an integer from 0 to 1000");
}

static void read_max_body(lua_State *L, lr_request *r, int idx, const char *name) {
  (void)name;
  r->max_body = (curl_off_t)check_int(L, r, idx, 0, LUA_MAXINTEGER,
                                      "option 'max_body' must be a non-negative integer (bytes)");
}

static void read_verify(lua_State *L, lr_request *r, int idx, const char *name) {
  r->verify = check_bool(L, r, idx, name);
}

static const char *const opt_names[] = {
  "method", "headers", "body", "json", "timeout", "connect_timeout",
  "follow", "max_redirects", "max_body", "verify", NULL
};
/* the same order: the body before json, which refuses both */
static const opt_reader opt_readers[] = {
  read_method, read_headers, read_body, read_json, read_timeout, read_connect_timeout,
  read_follow, read_max_redirects, read_max_body, read_verify
};

static void known_option(lua_State *L, int which, void *ud) {
  lr_request *r = ud;
  if (which < 0) lr__opterror(L, 2, r->fname, "unknown option '%s'", lr__push_key_name(L, -2));
}

static void request_defaults(lr_request *r, const char *fname, int check_only) {
  memset(r, 0, sizeof *r);
  r->fname = fname;
  r->check_only = check_only;
  r->follow = 1;
  r->max_redirects = 10;
  r->max_body = LR_DEFAULT_MAX_BODY;
  r->verify = 1;
}

void lr__parse_request(lua_State *L, const char *fname, lr_request *r, int check_only) {
  request_defaults(r, fname, check_only);
  if (lua_type(L, 1) != LUA_TSTRING) luaL_typeerror(L, 1, "string");
  r->url = lua_tolstring(L, 1, &r->url_len);
  if (!r->check_only) lr__check_url(L, r);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 4);  /* 3: the headers, 4: the body */
  int nopts = 0;
  if (lua_istable(L, 2)) {
    nopts = lr__each_option(L, 2, opt_names, known_option, r);
    if (lua_getmetatable(L, 2)) {  /* options may come through __index */
      lua_pop(L, 1);
      nopts++;
    }
  }
  if (nopts == 0) return;  /* {} costs no lookups (fetch_all's options, for one) */
  for (int i = 0; opt_names[i]; i++) {
    if (lua_getfield(L, 2, opt_names[i]) != LUA_TNIL) opt_readers[i](L, r, 5, opt_names[i]);
    lua_settop(L, 4);
  }
}
