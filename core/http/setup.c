/* A curl handle set up from a request's options (lr_request). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/curl_api.h"
#include "http/http.h"

/* Many fetches to one https host at once: wait for the first connection to
 * say whether it multiplexes (HTTP/2, offered through TLS) rather than open
 * one each; plain http stays HTTP/1.1, where waiting gains nothing. */
static long pipewait(const char *url) { return strncasecmp(url, "https:", 6) == 0 ? 1L : 0L; }

/* Loopback never goes through a proxy.  libcurl takes http_proxy and its
 * kin from the environment (as curl and requests do, so a script works
 * behind one), but on a machine set up with one, requests to the built-in
 * server would go to the proxy too and the offline lessons fail.  The
 * environment's own no_proxy list is kept in front. */
#define LOOPBACK "localhost,127.0.0.0/8,::1"

static const char *no_proxy_list(lua_State *L) {
  const char *env = getenv("no_proxy");
  if (!env || !*env) env = getenv("NO_PROXY");
  if (!env || !*env) return LOOPBACK;
  if (strcmp(env, "*") == 0) return env;
  return lua_pushfstring(L, "%s," LOOPBACK, env);  /* the caller pops */
}

/* f->headers from r's headers table: NULL or a message */
static const char *add_headers(lua_State *L, lr_fetch *f, lr_request *r) {
  if (r->headers_idx) {
    lua_pushnil(L);
    while (lua_next(L, r->headers_idx)) {
      size_t vl;
      const char *name = lua_tostring(L, -2), *v = lua_tolstring(L, -1, &vl);
      if (strcasecmp(name, "host") == 0) {  /* the URL's own (checks.c): curl writes it */
        lua_pop(L, 1);
        continue;
      }
      /* "Name;" is curl's way to send a header with an empty value
       * ("Name:" alone, or with only blanks after it, would remove it) */
      size_t blank = strspn(v, " \t");
      const char *h = blank < vl ? lua_pushfstring(L, "%s: %s", name, v) : lua_pushfstring(L, "%s;", name);
      struct curl_slist *n = curl_slist_append(f->headers, h);
      lua_pop(L, 2);
      if (!n) { lua_pop(L, 1); return "out of memory"; }
      f->headers = n;
    }
  }
  if (r->json && !r->has_ctype) {
    struct curl_slist *n = curl_slist_append(f->headers, "Content-Type: application/json");
    if (!n) return "out of memory";
    f->headers = n;
  }
  return NULL;
}

/* Configure f's easy handle from r.  Returns NULL or a message. */
const char *lr__setup(lua_State *L, lr_fetch *f, lr_request *r) {
  CURL *e = f->x.easy;
  f->max_body = r->max_body;
  const char *err = add_headers(L, f, r);
  if (err) return err;
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, (long)r->follow);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, r->max_redirects);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, (long)r->verify);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, r->verify ? 2L : 0L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  if (pipewait(r->url)) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "lessonrun/" LR_VERSION);
  int top = lua_gettop(L);
  curl_easy_setopt(e, CURLOPT_NOPROXY, no_proxy_list(L));  /* curl copies it */
  lua_settop(L, top);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, lr__on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, lr__on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, r->max_body);
  if (r->timeout_ms) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms);
  if (r->connect_timeout_ms) curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
  if (r->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, r->body);
  }
  if (r->method) {
    if (strcmp(r->method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(r->method, "GET") == 0 && !r->body) curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
  }
  if (f->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->headers);
  return NULL;
}
