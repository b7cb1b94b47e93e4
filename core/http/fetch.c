/* fetch (async, on the shared curl multi) and blocking_fetch (the curl easy
 * interface, one persistent handle, like requests.Session): the same
 * options, the same response, the same errors.
 *
 * Contract: an HTTP status (404, 500...) is a response.  A transport failure
 * raises an error value {kind=, message=, url=} where kind is one of "url",
 * "dns", "connect", "tls", "timeout", "too_large", "redirect", "protocol",
 * "connection" or "other".  Misuse (bad option, header injection, a header
 * that frames the request) raises an ordinary argument error.  Every URL in
 * a message or an error value has its password hidden (lr__push_redacted). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/curl_api.h"
#include "http/http.h"
#include "base/args.h"

/* ---- fetch (async) ------------------------------------------------------- */

static void fetch_done(lr_transfer *x, int result) {
  lr_fetch *f = (lr_fetch *)x;
  f->result = result;
  f->finished = 1;
  lr__deadline_drop(f);
  lr__wake(f->http->rt, f->task, LR_WAKE_OK);
}

static void fetch_cleanup(lr_runtime *rt, lr_task *t) {
  lr_fetch *f = t->park_data;
  (void)rt;
  if (!f->removed && !f->finished) lr__curl_remove(f->http, &f->x);  /* (finished: woken, never resumed) */
  lr__fetch_free(f);
}

/* HTTP's state and curl on the loop, at the first fetch */
static lr_http *http_start(lr_runtime *rt, char *err, size_t errlen) {
  lr_http *h = lr__http(rt);
  if (!h) snprintf(err, errlen, "not enough memory");
  if (!h || lr__curl_init(h, err, errlen) != 0) return NULL;
  return h;
}

static lr_wait_kind fetch_kind = {"fetch", NULL, fetch_cleanup, 0};
static lr_wait_kind blocking_fetch_kind = {"blocking_fetch", "fetch", NULL, 0};

static int fetch_k(lua_State *L, int status, lua_KContext ctx) {
  lr_fetch *f = (lr_fetch *)ctx;
  lr_task *t = lr__current(L);
  lr_runtime *rt = lr__runtime(L);
  (void)status;
  if (t->wake != LR_WAKE_OK) {  /* cancelled in flight: cleanup freed f */
    lr__check_cancel(L, rt, t);
  }
  if (t->cancel_requested) {
    lr__fetch_free(f);
    lr__check_cancel(L, rt, t);
  }
  return lr__finish(L, f, "fetch", lua_tostring(L, 1));
}

/* fetch(url [, opts]) -> response: parks this task while the transfer runs */
static int l_fetch(lua_State *L) {
  lr_request r;
  lr__parse_request(L, "fetch", &r, 0);
  lr_runtime *rt = lr__runtime(L);
  int nres;
  lr_task *t = lr__wait_enter(L, rt, "fetch", l_fetch, 2, &nres);
  if (!t) return nres;
  if (rt->virtual_time)
    return luaL_error(L, "fetch: not available under --virtual-time (the network runs on real time)");
  lr__wait_yieldable(L, "fetch");
  char lerr[300];
  lr_http *h = http_start(rt, lerr, sizeof lerr);
  if (!h) return luaL_error(L, "fetch: %s", lerr);
  lr_fetch *f = lr__fetch_new();
  if (!f) return luaL_error(L, "fetch: not enough memory");
  f->http = h;
  f->task = t;
  f->x.done = fetch_done;
  const char *err = (f->x.easy = lr__easy_get(h)) ? lr__setup(L, f, &r) : "cannot create a curl handle";
  if (!err && lr__curl_add(h, &f->x) != 0) err = "cannot add the transfer";
  if (!err && r.timeout_ms) lr__deadline_start(f, r.timeout_ms);
  if (err) {
    lr__fetch_free(f);
    return luaL_error(L, "fetch: %s", err);
  }
  lua_settop(L, 2);
  return lr__park(L, rt, t, &fetch_kind, f, (lua_KContext)f, fetch_k);
}

/* ---- blocking_fetch ------------------------------------------------------ */

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  int *seen = ud;
  (void)a; (void)b; (void)c; (void)d;
  return (int)lr__sigint_count != *seen;  /* Ctrl-C stops a blocking fetch */
}

/* blocking_fetch(url [, opts]) -> response.  Stops the whole program, every
 * task and the loop, until the transfer is over (the lesson's "requests"). */
static int l_blocking_fetch(lua_State *L) {
  lr_request r;
  lr__parse_request(L, "blocking_fetch", &r, 0);
  lr_runtime *rt = lr__runtime(L);
  if (rt->virtual_time)
    return luaL_error(L, "blocking_fetch: not available under --virtual-time (the network runs on real time)");
  char lerr[300];
  lr_http *h = http_start(rt, lerr, sizeof lerr);
  if (!h) return luaL_error(L, "blocking_fetch: %s", lerr);
  if (!h->blocking_easy) h->blocking_easy = curl_easy_init();
  else curl_easy_reset(h->blocking_easy);  /* keeps its connections alive */
  if (!h->blocking_easy) return luaL_error(L, "blocking_fetch: cannot create a curl handle");
  lr_fetch *f = lr__fetch_new();
  if (!f) return luaL_error(L, "blocking_fetch: not enough memory");
  f->x.easy = h->blocking_easy;  /* (f->http stays NULL: the handle is not pooled) */
  const char *err = lr__setup(L, f, &r);
  if (err) {
    lr__fetch_free(f);
    return luaL_error(L, "blocking_fetch: %s", err);
  }
  int seen = (int)lr__sigint_count;
  curl_easy_setopt(f->x.easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(f->x.easy, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(f->x.easy, CURLOPT_XFERINFODATA, &seen);
  size_t ready = rt->rq_len;
  uint64_t began = lr__block_begin(L, rt, &blocking_fetch_kind);
  f->result = curl_easy_perform(f->x.easy);
  lr__block_end(L, rt, &blocking_fetch_kind, began, ready);
  if (f->result == CURLE_ABORTED_BY_CALLBACK && (int)lr__sigint_count != seen) {
    lr__fetch_free(f);
    return lr__raise_interrupt(L, rt, 1);
  }
  return lr__finish(L, f, "blocking_fetch", r.url);
}

/* ---- fetch_config, fetch_all_check --------------------------------------- */

static const char *const limit_names[] = {"max_connections", "max_host_connections", NULL};

static void set_limit(lua_State *L, int which, void *ud) {
  lr_http *h = ud;
  if (which < 0) luaL_argerror(L, 1, lua_pushfstring(L, "unknown option '%s'", lr__push_key_name(L, -2)));
  const char *k = limit_names[which];
  int isint = 0;
  lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
  if (!isint || v < 0 || v > 100000)
    luaL_argerror(L, 1, lua_pushfstring(L, "'%s' must be an integer from 0 to 100000", k));
  if (which == 0) h->max_connections = (long)v;
  else h->max_host_connections = (long)v;
}

/* fetch_config{max_connections=, max_host_connections=} -> current limits */
static int l_fetch_config(lua_State *L) {
  lr_runtime *rt = lr__runtime(L);
  lr_http *h = rt->http;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!(h = lr__http(rt))) return luaL_error(L, "fetch_config: not enough memory");
    lr__each_option(L, 1, limit_names, set_limit, h);
    lr__curl_limits(h);
  }
  lua_createtable(L, 0, 2);
  /* the default is settled when the first fetch starts curl, counting the
   * descriptors open then; until then, what it would be now */
  long maxc = h ? h->max_connections : 0;
  lua_pushinteger(L, maxc ? maxc : lr__default_connections());
  lua_setfield(L, -2, "max_connections");
  lua_pushinteger(L, h ? h->max_host_connections : 0);
  lua_setfield(L, -2, "max_host_connections");
  return 1;
}

void lr__fetch_open(lua_State *L) {
  lr__wait_kind_register(&fetch_kind);
  lr__wait_kind_register(&blocking_fetch_kind);
  lr__response_open(L);
}

/* core.fetch_all_check(opts [, urls]): raises what fetch would say of opts
 * and of each URL (a list of strings), naming fetch_all, so that fetch_all
 * refuses them before it fetches anything */
static int l_fetch_all_check(lua_State *L) {
  lr_request r;
  lua_settop(L, 2);
  lua_Integer n = lua_istable(L, 2) ? luaL_len(L, 2) : 0;
  const char *hname = NULL, *host = NULL;
  size_t hl = 0;
  /* a Host header must be every URL's (check_framing, with no URL, cannot tell) */
  if (n > 0 && lua_istable(L, 1) && lua_getfield(L, 1, "headers") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {  /* the strings stay in the table, anchored at slot 3 */
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING &&
          strcasecmp(lua_tostring(L, -2), "host") == 0) {
        hname = lua_tostring(L, -2);
        host = lua_tolstring(L, -1, &hl);
      }
      lua_pop(L, 1);
    }
  }
  for (lua_Integer i = 1; i <= n; i++) {
    memset(&r, 0, sizeof r);
    r.fname = "fetch_all";
    r.item = i;
    if (lua_geti(L, 2, i) == LUA_TSTRING) {
      r.url = lua_tolstring(L, -1, &r.url_len);
      lr__check_url(L, &r);
      if (host && !lr__same_authority(r.url, host, hl))  /* fetch's own rule: default ports, blanks */
        lr__opterror(L, 2, "fetch_all", "header '%s' must be each URL's host[:port], and item %I's is another "
                     "(put the host you mean in the URLs)", hname, i);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  lua_pushliteral(L, "http://localhost/");
  lua_insert(L, 1);
  lr__parse_request(L, "fetch_all", &r, 1);
  return 0;
}

const luaL_Reg lr__fetch_funcs[] = {
  {"fetch", l_fetch}, {"blocking_fetch", l_blocking_fetch}, {"fetch_config", l_fetch_config},
  {"fetch_all_check", l_fetch_all_check},
  {NULL, NULL}
};
