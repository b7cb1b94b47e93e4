/* serve() for Lua: a server as a userdata with url, host, port, running and
 * stop (also its __close and __gc). */
#include <stdio.h>
#include <string.h>

#include "base/args.h"
#include "server/internal.h"

#define SERVER_MT "lessonrun.Server"

typedef struct {
  lr_server *srv;           /* NULL once stopped */
  char host[HOST_MAX];
  char url[HOST_MAX + 32];
  lua_Integer port;
} server_ud;

static server_ud *check_server(lua_State *L) { return luaL_checkudata(L, 1, SERVER_MT); }

/* srv:stop(): stops the server (joins its threads, frees everything);
 * requests still waiting are answered or closed.  Idempotent. */
static int srv_stop(lua_State *L) {
  server_ud *u = check_server(L);
  if (u->srv) {
    lr_server *s = u->srv;
    u->srv = NULL;
    lr__server_stop(s);
  }
  return 0;
}

static int srv_index(lua_State *L) {
  server_ud *u = check_server(L);
  size_t klen = 0;
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &klen) : "";
  if (lr__has_nul(k, klen)) k = "";  /* "url\0x" is no field */
  if (strcmp(k, "url") == 0) lua_pushstring(L, u->url);
  else if (strcmp(k, "host") == 0) lua_pushstring(L, u->host);
  else if (strcmp(k, "port") == 0) lua_pushinteger(L, u->port);
  else if (strcmp(k, "running") == 0) lua_pushboolean(L, u->srv != NULL);
  else lua_rawget(L, lua_upvalueindex(1));  /* methods */
  return 1;
}

static int srv_tostring(lua_State *L) {
  server_ud *u = check_server(L);
  lua_pushfstring(L, SERVER_MT " (%s%s)", u->url, u->srv ? "" : ", stopped");
  return 1;
}

static const char *const option_names[] = {"host", "port", NULL};

typedef struct {
  const char *host;         /* anchored by the options table */
  lua_Integer port;
} serve_opts;

static void serve_option(lua_State *L, int which, void *ud) {
  serve_opts *o = ud;
  size_t len;
  if (which < 0) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_argerror(L, 1, "option names must be strings (host, port)");
    const char *k = lua_tolstring(L, -2, &len);
    if (lr__has_nul(k, len)) luaL_argerror(L, 1, "option names must not contain a NUL byte");
    luaL_argerror(L, 1, lua_pushfstring(L, "unknown option '%s' (the options are host and port)", k));
  } else if (which == 0) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, 1, lua_pushfstring(L, "option 'host' must be a string, got %s",
                                          luaL_typename(L, -1)));
    o->host = lua_tolstring(L, -1, &len);
    if (lr__has_nul(o->host, len))  /* "0.0.0.0\0x" would listen everywhere */
      luaL_argerror(L, 1, "option 'host' must not contain a NUL byte");
  } else {
    int isint = 0;
    if (lua_type(L, -1) == LUA_TNUMBER) o->port = lua_tointegerx(L, -1, &isint);
    if (!isint || o->port < 0 || o->port > 65535)
      luaL_argerror(L, 1, "option 'port' must be an integer in 0..65535");
  }
}

/* serve([{host=, port=}]) -> server.  Misuse raises "bad argument";
 * failing to listen (port taken...) raises "serve: cannot listen ...". */
static int l_serve(lua_State *L) {
  serve_opts o = {"127.0.0.1", 0};
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lr__each_option(L, 1, option_names, serve_option, &o);
  }
  const char *host = o.host;
  lua_Integer port = o.port;
  if (!lr__server_host_ok(host))
    return luaL_argerror(L, 1, lua_pushfstring(L, "option 'host' must be a numeric IPv4 or IPv6 "
                                                  "address (e.g. 127.0.0.1 or ::1), got '%s'", host));
  server_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  if (luaL_newmetatable(L, SERVER_MT)) {
    static const luaL_Reg methods[] = {{"stop", srv_stop}, {NULL, NULL}};
    luaL_newlib(L, methods);
    lua_pushcclosure(L, srv_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, srv_stop);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, srv_stop);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, srv_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  char err[512];
  lr_server *s = lr__server_start(host, (int)port, 0, err, sizeof err);
  if (!s) return luaL_error(L, "serve: %s", err);
  u->srv = s;
  snprintf(u->host, sizeof u->host, "%s", s->host);
  snprintf(u->url, sizeof u->url, "%s", s->url);
  u->port = s->port;
  return 1;
}

const luaL_Reg lr__server_funcs[] = {{"serve", l_serve}, {NULL, NULL}};
