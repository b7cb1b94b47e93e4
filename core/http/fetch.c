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
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/curl_api.h"

#include "lr.h"

#define RESPONSE_MT "lessonrun.Response"
#define HEADERS_MT "lessonrun.Headers"
#define DEFAULT_MAX_BODY (64 * 1024 * 1024)
/* Longer URLs are refused up front (kind "url"): curl's buffer for the
 * request head is 1 MiB, and servers refuse far shorter ones (8-64 KiB). */
#define MAX_URL (256 * 1024)

/* ---- a request's options, checked before anything is allocated --------- */

typedef struct {
  const char *fname;
  const char *url;
  size_t url_len;
  int check_only;   /* fetch_all's check of its options: no URL yet */
  lua_Integer item; /* fetch_all's check of its URLs: which one, from 1 */
  const char *method;
  const char *body;
  size_t body_len;
  int headers_idx;  /* stack index of the headers table, or 0 */
  int has_ctype;    /* the user set Content-Type */
  int json;         /* body is JSON we encoded */
  long timeout_ms, connect_timeout_ms;
  int follow;
  long max_redirects;
  curl_off_t max_body;
  int verify;
} req_t;

static const char *const opt_names[] = {
  "method", "headers", "body", "json", "timeout", "connect_timeout",
  "follow", "max_redirects", "max_body", "verify", NULL
};

static int opterror(lua_State *L, req_t *r, const char *fmt, const char *what) {
  return luaL_error(L, "bad argument #2 to '%s' (%s)", r->fname,
                    lua_pushfstring(L, fmt, what));
}

/* An integer option in [lo, hi]: an integer, or a float with an exact
 * integer value (2^20, 1e6, 5.0), as lauxlib takes them; else msg. */
static lua_Integer check_int(lua_State *L, req_t *r, lua_Integer lo, lua_Integer hi, const char *msg) {
  int isint = 0;
  lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
  if (!isint || v < lo || v > hi) opterror(L, r, "%s", msg);
  return v;
}

static long check_ms(lua_State *L, req_t *r, const char *name) {
  if (!lua_isnumber(L, -1) || lua_type(L, -1) == LUA_TSTRING)
    opterror(L, r, "option '%s' must be a number of seconds", name);
  lua_Number s = lua_tonumber(L, -1);
  if (!(s > 0) || s > 1e6) opterror(L, r, "option '%s' must be > 0 and at most 1e6 seconds", name);
  long ms = (long)(s * 1000.0 + 0.5);
  return ms > 0 ? ms : 1;
}

static int token_char(unsigned char c) {
  return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* The URL's host[:port], without user:password@. */
static const char *url_authority(const char *url, size_t *len) {
  const char *a = strstr(url, "://");
  a = a ? a + 3 : url;
  size_t n = strcspn(a, "/?#");
  for (size_t i = n; i > 0; i--)
    if (a[i - 1] == '@') {
      n -= i;
      a += i;
      break;
    }
  *len = n;
  return a;
}

/* a[0..n) as host and port (port 0 when it has none, or an empty one); 0
 * when the port is not a number up to 65535 */
static int split_authority(const char *a, size_t n, size_t *hl, long *port) {
  size_t c = n;
  while (c > 0 && a[c - 1] >= '0' && a[c - 1] <= '9') c--;
  *port = 0;
  *hl = n;
  if (c == 0 || a[c - 1] != ':' || (a[0] == '[' && memchr(a + c, ']', n - c))) return 1;
  if (a[0] != '[' && memchr(a, ':', c - 1)) return 1;  /* a bare IPv6 address: no port */
  *hl = c - 1;
  for (size_t i = c; i < n; i++)
    if ((*port = *port * 10 + (a[i] - '0')) > 65535) return 0;
  return 1;
}

/* The Host value v[0..vl) names the URL's authority: the same host, ignoring
 * case, and the same port, the scheme's default (80, 443) being the same as
 * none, as curl itself leaves it out. */
static int same_authority(const char *url, const char *v, size_t vl) {
  size_t al, hl, vhl;
  long port, vport;
  const char *a = url_authority(url, &al);
  long dflt = strncasecmp(url, "https://", 8) == 0 ? 443 : 80;
  while (vl > 0 && (*v == ' ' || *v == '\t')) v++, vl--;
  while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
  if (!split_authority(a, al, &hl, &port) || !split_authority(v, vl, &vhl, &vport)) return 0;
  if (port == 0) port = dflt;
  if (vport == 0) vport = dflt;
  return hl > 0 && hl == vhl && strncasecmp(a, v, hl) == 0 && port == vport;
}

/* v[0..vl) without the spaces around it equals want, ignoring case */
static int value_is(const char *v, size_t vl, const char *want) {
  while (vl > 0 && (*v == ' ' || *v == '\t')) v++, vl--;
  while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
  return vl == strlen(want) && strncasecmp(v, want, vl) == 0;
}

/* Headers that frame a request or route it are curl's to write: a
 * Content-Length shorter than the body, or a Transfer-Encoding, leaves bytes
 * on a kept-alive connection that the server reads as a second request
 * (request smuggling), and a Host other than the URL's sends one site's
 * request down a connection that curl keeps (and reuses) for another.
 * Connection may only ask to close or keep the connection, Expect only for
 * 100-continue (which curl then waits for), and Upgrade is refused: a
 * switched protocol leaves curl a connection it cannot read.  (setup()
 * then leaves out a Host, which equals curl's own.) */
static void check_framing(lua_State *L, req_t *r, const char *n, const char *v, size_t vl) {
  if (strcasecmp(n, "content-length") == 0 || strcasecmp(n, "transfer-encoding") == 0)
    opterror(L, r, "header '%s' is not yours to set: fetch frames the body itself (a wrong one would "
             "smuggle a second request onto a kept-alive connection)", n);
  if (strcasecmp(n, "host") == 0) {
    if (r->check_only) return;  /* checked with each URL, by fetch */
    if (!same_authority(r->url, v, vl))
      opterror(L, r, "header '%s' must be the URL's host[:port] (put the host you mean in the URL)", n);
    return;
  }
  if (strcasecmp(n, "upgrade") == 0)
    opterror(L, r, "header '%s' is refused: fetch cannot switch protocols on a connection", n);
  if (strcasecmp(n, "connection") == 0 && !value_is(v, vl, "close") && !value_is(v, vl, "keep-alive"))
    opterror(L, r, "header '%s' may only be 'close' or 'keep-alive'", n);
  if (strcasecmp(n, "expect") == 0 && !value_is(v, vl, "100-continue"))
    opterror(L, r, "header '%s' may only be '100-continue'", n);
}

#define MAX_HEADER_LINE (64 * 1024)  /* "Name: value" */
#define MAX_HEADERS (512 * 1024)     /* all of them, with their CRLFs */

/* Checks the names and values (never quoting a value: it may be a secret,
 * an Authorization). */
static void check_headers(lua_State *L, req_t *r, int idx) {
  size_t total = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
      opterror(L, r, "%s", "headers must map names (strings) to values (strings or numbers)");
    size_t nl, vl;
    const char *n = lua_tolstring(L, -2, &nl), *v = lua_tolstring(L, -1, &vl);
    if (nl == 0) opterror(L, r, "%s", "empty header name");
    for (size_t i = 0; i < nl; i++)
      if (!token_char((unsigned char)n[i]))
        opterror(L, r, n[i] ? "header name '%s' has a character not allowed there (CR, LF, ':', space...)"
                            : "header name '%s...' has a character not allowed there (a NUL byte)", n);
    /* RFC 9110 5.5: no control characters in a field value but HTAB (CR and
     * LF would inject a header, a NUL cut it) */
    for (size_t i = 0; i < vl; i++)
      if (((unsigned char)v[i] < 32 && v[i] != '\t') || v[i] == 127) {
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
          opterror(L, r, "header '%s' contains CR, LF or NUL (header injection refused)", n);
        char hex[8];  /* lua_pushfstring has no %X */
        snprintf(hex, sizeof hex, "0x%02X", (unsigned)(unsigned char)v[i]);
        luaL_error(L, "bad argument #2 to '%s' (header '%s' contains control character %s at byte %I of its value)",
                   r->fname, n, hex, (lua_Integer)i + 1);
      }
    /* curl builds the whole request head in a buffer of at most 1 MiB
     * (DYN_HTTP_REQUEST) and fails with "Out of memory" past it; servers
     * refuse much less (nginx: 8 KiB a line) */
    size_t line = nl + 2 + vl;
    if (line > MAX_HEADER_LINE)
      luaL_error(L, "bad argument #2 to '%s' (header '%s' too long: %I bytes, at most %I)", r->fname, n,
                 (lua_Integer)line, (lua_Integer)MAX_HEADER_LINE);
    total += line + 2;
    if (strcasecmp(n, "content-type") == 0) r->has_ctype = 1;
    check_framing(L, r, n, v, vl);
    lua_pop(L, 1);
  }
  if (total > MAX_HEADERS)
    luaL_error(L, "bad argument #2 to '%s' (request headers too long: %I bytes in all, at most %I)", r->fname,
               (lua_Integer)total, (lua_Integer)MAX_HEADERS);
}

/* Raises "bad argument #1 to 'fetch' (what)", or "(item N: what)" for
 * one of fetch_all's URLs. */
static int url_argerror(lua_State *L, req_t *r, const char *what) {
  if (r->item) return luaL_error(L, "bad argument #1 to '%s' (item %I: %s)", r->fname, r->item, what);
  return luaL_error(L, "bad argument #1 to '%s' (%s)", r->fname, what);
}

/* Raises the error value {kind="url"} for the URL r->url: "fetch: ..." */
static int url_error(lua_State *L, req_t *r, const char *what) {
  if (r->item) what = lua_pushfstring(L, "item %I: %s", r->item, what);
  size_t n = r->url_len > 200 ? 200 : r->url_len;  /* a 2 MB URL is not quoted whole */
  const char *shown = lr__push_redacted(L, r->url, n);
  lr__push_errobj(L, "url", lua_pushfstring(L, "%s: %s, got '%s%s'", r->fname, what, shown,
                                            n < r->url_len ? "..." : ""));
  lr__push_redacted(L, r->url, r->url_len);
  lua_setfield(L, -2, "url");
  return lua_error(L);
}

/* Only http and https, also for redirects (and curl is told the same); no
 * byte that curl would stop at (a NUL: "http://127.0.0.1\0.example/" went
 * to 127.0.0.1) or that could split the request line. */
static void check_url(lua_State *L, req_t *r) {
  if (strncasecmp(r->url, "http://", 7) != 0 && strncasecmp(r->url, "https://", 8) != 0)
    url_error(L, r, "only http:// and https:// URLs are allowed");
  if (r->url_len > MAX_URL)
    url_error(L, r, lua_pushfstring(L, "URL too long (%I bytes, at most %d)", (lua_Integer)r->url_len, MAX_URL));
  if (strlen(r->url) != r->url_len) url_argerror(L, r, "URL contains a NUL byte");
  for (const char *p = r->url; *p; p++)
    if (*p == '\r' || *p == '\n' || *p == ' ')
      url_argerror(L, r, "URL contains a space, CR or LF");
}

/* Parses fetch(url, opts) at stack 1, 2.  May push a JSON body string. */
static void parse_request(lua_State *L, const char *fname, req_t *r, int check_only) {
  memset(r, 0, sizeof *r);
  r->fname = fname;
  r->check_only = check_only;
  r->follow = 1;
  r->max_redirects = 10;
  r->max_body = DEFAULT_MAX_BODY;
  r->verify = 1;
  if (lua_type(L, 1) != LUA_TSTRING) luaL_typeerror(L, 1, "string");
  r->url = lua_tolstring(L, 1, &r->url_len);
  if (!r->check_only) check_url(L, r);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  int nopts = 0;
  if (lua_istable(L, 2)) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      lua_pop(L, 1);
      nopts++;
      int known = 0;
      size_t kl;
      const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &kl) : NULL;
      for (const char *const *o = opt_names; k && *o; o++)
        if (strlen(*o) == kl && memcmp(*o, k, kl) == 0) known = 1;  /* "timeout\0x" is not timeout */
      if (!known) opterror(L, r, "unknown option '%s'", luaL_tolstring(L, -1, NULL));
    }
    if (lua_getmetatable(L, 2)) {  /* options may come through __index */
      lua_pop(L, 1);
      nopts++;
    }
  }
  if (nopts > 0) {  /* {} costs no lookups (fetch_all's options, for one) */
    if (lua_getfield(L, 2, "method") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING) opterror(L, r, "%s", "option 'method' must be a string");
      size_t ml;
      r->method = lua_tolstring(L, -1, &ml);
      if (ml == 0) opterror(L, r, "%s", "option 'method' must not be empty");
      if (strlen(r->method) != ml) opterror(L, r, "%s", "option 'method' contains a NUL byte");
      for (const char *p = r->method; *p; p++)
        if (!token_char((unsigned char)*p)) opterror(L, r, "method '%s' is not a valid HTTP method", r->method);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "headers") != LUA_TNIL) {
      if (!lua_istable(L, -1)) opterror(L, r, "%s", "option 'headers' must be a table");
      check_headers(L, r, lua_gettop(L));
      r->headers_idx = 3;  /* kept on the stack: slot 3 */
    } else {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
    if (lua_getfield(L, 2, "body") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING) opterror(L, r, "%s", "option 'body' must be a string");
      r->body = lua_tolstring(L, -1, &r->body_len);
    }
    /* slot 4: body string or nil */
    if (lua_getfield(L, 2, "json") != LUA_TNIL) {
      char err[256];
      if (r->body) opterror(L, r, "%s", "give either 'body' or 'json', not both");
      if (!lr__json_encode(L, -1, err, sizeof err)) opterror(L, r, "option 'json': %s", err);
      lua_replace(L, 4);
      lua_pop(L, 1);
      r->body = lua_tolstring(L, 4, &r->body_len);
      r->json = 1;
    } else {
      lua_pop(L, 1);
    }
    if (lua_getfield(L, 2, "timeout") != LUA_TNIL) r->timeout_ms = check_ms(L, r, "timeout");
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "connect_timeout") != LUA_TNIL)
      r->connect_timeout_ms = check_ms(L, r, "connect_timeout");
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "follow") != LUA_TNIL) {
      if (!lua_isboolean(L, -1)) opterror(L, r, "%s", "option 'follow' must be a boolean");
      r->follow = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "max_redirects") != LUA_TNIL)
      r->max_redirects = (long)check_int(L, r, 0, 1000, "option 'max_redirects' must be an integer from 0 to 1000");
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "max_body") != LUA_TNIL)
      r->max_body = (curl_off_t)check_int(L, r, 0, LUA_MAXINTEGER,
                                          "option 'max_body' must be a non-negative integer (bytes)");
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "verify") != LUA_TNIL) {
      if (!lua_isboolean(L, -1)) opterror(L, r, "%s", "option 'verify' must be a boolean");
      r->verify = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 4);
}

/* ---- a transfer ---------------------------------------------------------- */

/* A growing buffer that starts in room inside its owner (most responses
 * fit, so a small fetch allocates nothing for them) and moves to the heap
 * when it outgrows it. */
typedef struct {
  char *p;
  size_t len, cap;
  int heap;  /* p was allocated; else it is the owner's room */
} buf_t;

static void buf_init(buf_t *b, char *room, size_t size) {
  b->p = room;
  b->len = 0;
  b->cap = size;
  b->heap = 0;
  room[0] = '\0';
}

static int buf_add(buf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap * 2;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!p) return -1;
    if (!b->heap) memcpy(p, b->p, b->len + 1);
    b->p = p;
    b->cap = cap;
    b->heap = 1;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static void buf_free(buf_t *b) {
  if (b->heap) free(b->p);
}

typedef struct {
  lr_transfer x;       /* first: curl_uv.c hands it back */
  lr_runtime *rt;
  lr_task *task;
  struct curl_slist *headers;
  buf_t body, hdrs;    /* hdrs: "name\0value\0" pairs of the last response */
  curl_off_t max_body;
  int too_large;
  int nomem;           /* the body or the headers could not grow */
  int headers_done;    /* the blank line that ends the headers arrived */
  int result;          /* CURLcode */
  int owns_easy;
  int plain;           /* is_plain(its request) */
  int finished;        /* fetch_done ran: the transfer ended by itself */
  int removed;         /* taken out of the multi before it ended (its deadline) */
  struct deadline *deadline;  /* fetch with a timeout: its own timer */
  char errbuf[CURL_ERROR_SIZE];
  /* where body and hdrs start: nginx's headers take ~130 bytes, and a
   * fetch_t of at most 1 KB stays in malloc's fastest bins */
  char body_room[256], hdrs_room[320];
} fetch_t;

_Static_assert(sizeof(fetch_t) <= 1024, "fetch_t outgrew malloc's per-thread cache");

static fetch_t *fetch_new(void) {
  fetch_t *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  buf_init(&f->body, f->body_room, sizeof f->body_room);
  buf_init(&f->hdrs, f->hdrs_room, sizeof f->hdrs_room);
  return f;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *ud) {
  fetch_t *f = ud;
  size_t len = size * n;
  if ((curl_off_t)(f->body.len + len) > f->max_body) {
    f->too_large = 1;
    return 0;  /* aborts the transfer: CURLE_WRITE_ERROR */
  }
  if (buf_add(&f->body, ptr, len) == 0) return len;
  f->nomem = 1;
  return 0;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *ud) {
  fetch_t *f = ud;
  size_t len = size * n, nl = len;
  while (nl > 0 && (ptr[nl - 1] == '\n' || ptr[nl - 1] == '\r')) nl--;
  if (nl >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {  /* a new response: keep only the last */
    f->hdrs.len = 0;
    f->headers_done = 0;
    return len;
  }
  if (nl == 0) {
    f->headers_done = 1;
    return len;
  }
  const char *colon = memchr(ptr, ':', nl);
  if (!colon || colon == ptr) return len;
  const char *v = colon + 1, *end = ptr + nl;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
  if (buf_add(&f->hdrs, ptr, (size_t)(colon - ptr)) || buf_add(&f->hdrs, "", 1) ||
      buf_add(&f->hdrs, v, (size_t)(end - v)) || buf_add(&f->hdrs, "", 1)) {
    f->nomem = 1;
    return 0;
  }
  return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  int *seen = ud;
  (void)a; (void)b; (void)c; (void)d;
  return (int)lr__sigint_count != *seen;  /* Ctrl-C stops a blocking fetch */
}

/* Easy handles are reused: creating one and freeing it costs more than the
 * rest of a small fetch's bookkeeping (curl keeps its connections in the
 * multi, so a reset handle loses nothing).  *plain: the handle is still set
 * up for a plain GET (keep_plain). */
static CURL *easy_get(lr_runtime *rt, int *plain) {
  *plain = 0;
  if (rt->easy_npool == 0) return curl_easy_init();
  struct lr_pooled_easy *p = &rt->easy_pool[--rt->easy_npool];
  *plain = p->plain;
  return p->easy;
}

/* plain: e served a plain GET that succeeded, and keeps its options for the
 * next one; any other handle goes back reset, as new. */
static void easy_put(lr_runtime *rt, CURL *e, int plain) {
  if (rt->easy_npool == rt->easy_cappool && rt->easy_cappool < 1024) {
    size_t n = rt->easy_cappool ? rt->easy_cappool * 2 : 16;
    struct lr_pooled_easy *p = realloc(rt->easy_pool, n * sizeof *p);
    if (p) { rt->easy_pool = p; rt->easy_cappool = n; }
  }
  if (rt->easy_npool < rt->easy_cappool) {
    if (plain) curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);  /* f's goes now */
    else curl_easy_reset(e);
    rt->easy_pool[rt->easy_npool].easy = e;
    rt->easy_pool[rt->easy_npool++].plain = plain;
  } else {
    curl_easy_cleanup(e);
  }
}

/* A fetch's own deadline, beside curl's CURLOPT_TIMEOUT_MS: libcurl 7.88's
 * multi interface drops a deadline that falls while it connects (a 1 ms
 * timeout ended at its 200 ms happy-eyeballs timer), so this timer fails
 * the transfer itself if curl has not by then.  Freed in its close
 * callback, as libuv wants; f forgets it first. */
struct deadline {
  uv_timer_t timer;
  lr_runtime *rt;
  fetch_t *f;  /* NULL once f is gone */
  long ms;
  uint64_t due;  /* uv_hrtime() */
};

static void on_deadline_closed(uv_handle_t *h) { free(h->data); }

static void deadline_drop(fetch_t *f) {
  struct deadline *d = f->deadline;
  if (!d) return;
  f->deadline = NULL;
  d->f = NULL;
  uv_close((uv_handle_t *)&d->timer, on_deadline_closed);
}

static void on_deadline(uv_timer_t *h) {
  struct deadline *d = h->data;
  fetch_t *f = d->f;
  if (!f || f->finished) return;
  uint64_t now = uv_hrtime();
  if (now < d->due) {  /* libuv's clock is in whole ms: never give up early */
    uv_timer_start(&d->timer, on_deadline, (d->due - now + 999999) / 1000000, 0);
    return;
  }
  lr__curl_remove(f->rt, &f->x);
  f->removed = 1;
  f->finished = 1;
  f->result = CURLE_OPERATION_TIMEDOUT;
  snprintf(f->errbuf, sizeof f->errbuf, "Operation timed out after %ld milliseconds with %zu bytes received",
           d->ms, f->body.len);
  deadline_drop(f);
  lr__wake(f->rt, f->task, LR_WAKE_OK);
}

/* 0, or -1 when the timer cannot be had (the fetch then has curl's alone) */
static int deadline_start(fetch_t *f, long ms) {
  struct deadline *d = malloc(sizeof *d);
  if (!d) return -1;
  d->rt = f->rt;
  d->f = f;
  d->ms = ms;
  d->due = uv_hrtime() + (uint64_t)ms * 1000000;
  uv_timer_init(&f->rt->loop, &d->timer);
  d->timer.data = d;
  f->deadline = d;
  uv_update_time(&f->rt->loop);
  uv_timer_start(&d->timer, on_deadline, (uint64_t)ms, 0);
  return 0;
}

static void fetch_free(fetch_t *f) {
  deadline_drop(f);
  if (f->owns_easy && f->x.easy) {  /* out of the multi by now */
    if (f->rt) easy_put(f->rt, f->x.easy, f->plain && f->finished && f->result == CURLE_OK);
    else curl_easy_cleanup(f->x.easy);
  }
  curl_slist_free_all(f->headers);
  buf_free(&f->body);
  buf_free(&f->hdrs);
  free(f);
}

/* A GET with every option at its default, to a URL without user:password@:
 * what setup leaves on a handle for it is the same every time, but for the
 * URL and the fetch_t's own pointers (keep_plain).  Anything else, and the
 * handle is reset and set up in full. */
static int is_plain(const req_t *r) {
  return !r->method && !r->body && !r->headers_idx && !r->timeout_ms && !r->connect_timeout_ms &&
         r->follow && r->max_redirects == 10 && r->max_body == DEFAULT_MAX_BODY && r->verify &&
         !strchr(r->url, '@');
}

/* Many fetches to one https host at once: wait for the first connection to
 * say whether it multiplexes (HTTP/2, offered through TLS) rather than open
 * one each; plain http stays HTTP/1.1, where waiting gains nothing. */
static long pipewait(const char *url) { return strncasecmp(url, "https:", 6) == 0 ? 1L : 0L; }

/* A handle that served a plain GET, for another: only what is this
 * fetch's own changes (~20 setopts and their strdups saved per fetch). */
static void keep_plain(fetch_t *f, const req_t *r) {
  CURL *e = f->x.easy;
  f->max_body = r->max_body;
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, pipewait(r->url));
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
}

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

/* Configure f's easy handle from r.  Returns NULL or a message. */
static const char *setup(lua_State *L, fetch_t *f, req_t *r) {
  CURL *e = f->x.easy;
  f->max_body = r->max_body;
  if (r->headers_idx) {
    lua_pushnil(L);
    while (lua_next(L, r->headers_idx)) {
      size_t vl;
      const char *name = lua_tostring(L, -2), *v = lua_tolstring(L, -1, &vl);
      if (strcasecmp(name, "host") == 0) {  /* the URL's own (check_framing): curl writes it */
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
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
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

/* ---- results ------------------------------------------------------------- */

static const char *kind_of(fetch_t *f) {
  if (f->result == CURLE_OK) return "connection";  /* cut off inside the headers */
  if (strstr(f->errbuf, "oo large")) return "too_large";  /* "Too large response headers" */
  switch ((CURLcode)f->result) {
    case CURLE_UNSUPPORTED_PROTOCOL:
      /* our URL was checked to be http(s): a reply that is not HTTP
       * ("Received HTTP/0.9 when not allowed"), or a redirect to a URL of
       * another scheme, refused as such a URL would be */
      return strstr(f->errbuf, "HTTP/0.9") ? "protocol" : "url";
    case CURLE_URL_MALFORMAT: return "url";
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_FILESIZE_EXCEEDED: return "too_large";
    case CURLE_WRITE_ERROR: return f->too_large ? "too_large" : "other";
    case CURLE_TOO_MANY_REDIRECTS: return "redirect";
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS: case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND: case CURLE_SSL_ENGINE_SETFAILED: case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_SHUTDOWN_FAILED: case CURLE_SSL_CLIENTCERT:
      return "tls";
    case CURLE_WEIRD_SERVER_REPLY: case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_HTTP3:
    case CURLE_BAD_CONTENT_ENCODING: case CURLE_RANGE_ERROR:
      return "protocol";
    case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR:
      return "connection";
    default: return "other";
  }
}

static int is_error_status(fetch_t *f) { return f->result != CURLE_OK || !f->headers_done; }

/* Raises the transfer's failure: {kind=, message=, url=, curl_code=}, every
 * URL in it without its password; out of memory is Lua's own error. */
static int raise_error(lua_State *L, fetch_t *f, const char *fname, const char *url) {
  if (f->nomem) {
    return luaL_error(L, "%s: not enough memory for the response (%I bytes of body received)", fname,
                      (lua_Integer)f->body.len);
  }
  const char *kind = kind_of(f);
  const char *detail = f->errbuf[0] ? f->errbuf : curl_easy_strerror((CURLcode)f->result);
  char *target = NULL;
  if (f->result == CURLE_OK) detail = "connection closed before the end of the response headers";
  if (f->too_large || f->result == CURLE_FILESIZE_EXCEEDED)
    detail = lua_pushfstring(L, "response body larger than max_body (%I bytes)", (lua_Integer)f->max_body);
  /* a followed redirect leaves its target as the effective URL, not as
   * CURLINFO_REDIRECT_URL (which is only set when curl did not follow) */
  if (strcmp(kind, "url") == 0 && f->result == CURLE_UNSUPPORTED_PROTOCOL &&
      ((curl_easy_getinfo(f->x.easy, CURLINFO_REDIRECT_URL, &target) == CURLE_OK && target) ||
       (curl_easy_getinfo(f->x.easy, CURLINFO_EFFECTIVE_URL, &target) == CURLE_OK && target &&
        strcmp(target, url) != 0)))
    detail = lua_pushfstring(L, "redirect to '%s' refused: only http:// and https:// URLs are followed", target);
  const char *msg = lua_pushfstring(L, "%s: %s: %s (%s)", fname, kind, detail, url);
  lr__push_errobj(L, kind, lr__push_redacted(L, msg, strlen(msg)));
  lr__push_redacted(L, url, strlen(url));
  lua_setfield(L, -2, "url");
  lua_pushinteger(L, f->result);
  lua_setfield(L, -2, "curl_code");
  return lua_error(L);
}

/* The response's raw header block ("name\0value\0" pairs, as on_header
 * keeps them) waits under this private key until r.headers or
 * r.header_list is first used: most programs never look, and building the
 * two tables (8 tables and 16 strings for nginx's 5 headers) was an eighth
 * of a small fetch's instructions. */
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
 * builds r.headers and r.header_list now (also its metatable's __lr_settle,
 * which raw walkers call: lr__settle). */
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

static void push_response(lua_State *L, fetch_t *f) {
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
  lua_pushlstring(L, f->hdrs.p, f->hdrs.len);
  lua_rawsetp(L, -2, &raw_headers_key);
  luaL_setmetatable(L, RESPONSE_MT);  /* last: the fields above bypass r_newindex */
}

static int finish_p(lua_State *L) {
  fetch_t *f = lua_touserdata(L, 1);
  if (is_error_status(f)) return raise_error(L, f, lua_touserdata(L, 2), lua_touserdata(L, 3));
  push_response(L, f);
  return 1;
}

/* The response, or the error raised, for a transfer that is over; protected,
 * so that f is freed even when building them runs out of memory. */
static int finish(lua_State *L, fetch_t *f, const char *fname, const char *url) {
  lua_pushcfunction(L, finish_p);
  lua_pushlightuserdata(L, f);
  lua_pushlightuserdata(L, (void *)fname);
  lua_pushlightuserdata(L, (void *)url);
  int st = lua_pcall(L, 3, 1, 0);
  fetch_free(f);
  return st == LUA_OK ? 1 : lua_error(L);
}

/* ---- fetch (async) ------------------------------------------------------- */

static void fetch_done(lr_transfer *x, int result) {
  fetch_t *f = (fetch_t *)x;
  f->result = result;
  f->finished = 1;
  deadline_drop(f);
  lr__wake(f->rt, f->task, LR_WAKE_OK);
}

static void fetch_cleanup(lr_runtime *rt, lr_task *t) {
  fetch_t *f = t->park_data;
  if (!f->removed && !f->finished) lr__curl_remove(rt, &f->x);  /* (finished: woken, never resumed) */
  fetch_free(f);
}

static void fetch_close(lr_runtime *rt, void *ud);

/* curl on the loop, then this file's closer: added after curl's, it runs
 * first, so the pooled handles go before the multi does */
static int http_start(lr_runtime *rt, char *err, size_t errlen) {
  if (rt->curl_ready) return 0;
  if (lr__curl_init(rt, err, errlen) != 0) return -1;
  lr__add_closer(rt, fetch_close, NULL);
  return 0;
}

static lr_wait_kind fetch_kind = {"fetch", NULL, fetch_cleanup, 0};
static lr_wait_kind blocking_fetch_kind = {"blocking_fetch", "fetch", NULL, 0};

static int fetch_k(lua_State *L, int status, lua_KContext ctx) {
  fetch_t *f = (fetch_t *)ctx;
  lr_task *t = lr__current(L);
  lr_runtime *rt = lr__runtime(L);
  (void)status;
  if (t->wake != LR_WAKE_OK) {  /* cancelled in flight: cleanup freed f */
    lr__check_cancel(L, rt, t);
  }
  if (t->cancel_requested) {
    fetch_free(f);
    lr__check_cancel(L, rt, t);
  }
  return finish(L, f, "fetch", lua_tostring(L, 1));
}

/* fetch(url [, opts]) -> response: parks this task while the transfer runs */
static int l_fetch(lua_State *L) {
  req_t r;
  parse_request(L, "fetch", &r, 0);
  lr_runtime *rt = lr__runtime(L);
  int nres;
  lr_task *t = lr__wait_enter(L, rt, "fetch", l_fetch, 2, &nres);
  if (!t) return nres;
  if (rt->virtual_time)
    return luaL_error(L, "fetch: not available under --virtual-time (the network runs on real time)");
  lr__wait_yieldable(L, "fetch");
  char lerr[300];
  if (http_start(rt, lerr, sizeof lerr) != 0) return luaL_error(L, "fetch: %s", lerr);
  fetch_t *f = fetch_new();
  if (!f) return luaL_error(L, "fetch: not enough memory");
  f->rt = rt;
  f->task = t;
  f->owns_easy = 1;
  int preset;
  f->x.easy = easy_get(rt, &preset);
  f->x.done = fetch_done;
  f->plain = is_plain(&r);
  const char *err = NULL;
  if (!f->x.easy) err = "cannot create a curl handle";
  else if (preset && f->plain) keep_plain(f, &r);
  else {
    if (preset) curl_easy_reset(f->x.easy);
    err = setup(L, f, &r);
  }
  if (!err && lr__curl_add(rt, &f->x) != 0) err = "cannot add the transfer";
  if (!err && r.timeout_ms) deadline_start(f, r.timeout_ms);
  if (err) {
    fetch_free(f);
    return luaL_error(L, "fetch: %s", err);
  }
  lua_settop(L, 2);
  return lr__park(L, rt, t, &fetch_kind, f, (lua_KContext)f, fetch_k);
}

/* ---- blocking_fetch ------------------------------------------------------ */

/* blocking_fetch(url [, opts]) -> response.  Stops the whole program, every
 * task and the loop, until the transfer is over (the lesson's "requests"). */
static int l_blocking_fetch(lua_State *L) {
  req_t r;
  parse_request(L, "blocking_fetch", &r, 0);
  lr_runtime *rt = lr__runtime(L);
  if (rt->virtual_time)
    return luaL_error(L, "blocking_fetch: not available under --virtual-time (the network runs on real time)");
  char lerr[300];
  if (http_start(rt, lerr, sizeof lerr) != 0) return luaL_error(L, "blocking_fetch: %s", lerr);
  if (!rt->blocking_easy) rt->blocking_easy = curl_easy_init();
  else curl_easy_reset(rt->blocking_easy);  /* keeps its connections alive */
  if (!rt->blocking_easy) return luaL_error(L, "blocking_fetch: cannot create a curl handle");
  fetch_t *f = fetch_new();
  if (!f) return luaL_error(L, "blocking_fetch: not enough memory");
  f->x.easy = rt->blocking_easy;
  const char *err = setup(L, f, &r);
  if (err) {
    fetch_free(f);
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
    fetch_free(f);
    return lr__raise_interrupt(L, rt, 1);
  }
  return finish(L, f, "blocking_fetch", r.url);
}

static void fetch_close(lr_runtime *rt, void *ud) {
  (void)ud;
  if (rt->blocking_easy) curl_easy_cleanup(rt->blocking_easy);
  rt->blocking_easy = NULL;
  while (rt->easy_npool > 0) curl_easy_cleanup(rt->easy_pool[--rt->easy_npool].easy);
  free(rt->easy_pool);
  rt->easy_pool = NULL;
  rt->easy_cappool = 0;
}

/* ---- responses and limits ----------------------------------------------- */

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

/* fetch_config{max_connections=, max_host_connections=} -> current limits */
static int l_fetch_config(lua_State *L) {
  lr_runtime *rt = lr__runtime(L);
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
      if (strcmp(k, "max_connections") && strcmp(k, "max_host_connections"))
        return luaL_argerror(L, 1, lua_pushfstring(L, "unknown option '%s'", k));
      int isint = 0;
      lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
      if (!isint || v < 0 || v > 100000)
        return luaL_argerror(L, 1, lua_pushfstring(L, "'%s' must be an integer from 0 to 100000", k));
      if (strcmp(k, "max_connections") == 0) rt->max_connections = (long)v;
      else rt->max_host_connections = (long)v;
      lua_pop(L, 1);
    }
    lr__curl_limits(rt);
  }
  lua_createtable(L, 0, 2);
  /* the default is settled when the first fetch starts curl, counting the
   * descriptors open then; until then, what it would be now */
  lua_pushinteger(L, rt->max_connections ? rt->max_connections : lr__default_connections());
  lua_setfield(L, -2, "max_connections");
  lua_pushinteger(L, rt->max_host_connections);
  lua_setfield(L, -2, "max_host_connections");
  return 1;
}

static int r_settle(lua_State *L) {
  response_settle(L, 1);
  return 0;
}

static void open_metatables(lua_State *L) {
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
    lua_pushcfunction(L, r_settle);
    lua_setfield(L, -2, "__lr_settle");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, HEADERS_MT)) {
    lua_pushcfunction(L, h_index);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

void lr__fetch_open(lua_State *L) {
  lr__wait_kind_register(&fetch_kind);
  lr__wait_kind_register(&blocking_fetch_kind);
  open_metatables(L);
}

/* core.fetch_all_check(opts [, urls]): raises what fetch would say of opts
 * and of each URL (a list of strings), naming fetch_all, so that fetch_all
 * refuses them before it fetches anything */
static int l_fetch_all_check(lua_State *L) {
  req_t r;
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
      check_url(L, &r);
      if (host && !same_authority(r.url, host, hl))  /* fetch's own rule: default ports, blanks */
        luaL_error(L, "bad argument #2 to 'fetch_all' (header '%s' must be each URL's host[:port], and item %I's "
                   "is another (put the host you mean in the URLs))", hname, i);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  lua_pushliteral(L, "http://localhost/");
  lua_insert(L, 1);
  parse_request(L, "fetch_all", &r, 1);
  return 0;
}

const luaL_Reg lr__fetch_funcs[] = {
  {"fetch", l_fetch}, {"blocking_fetch", l_blocking_fetch}, {"fetch_config", l_fetch_config},
  {"fetch_all_check", l_fetch_all_check},
  {NULL, NULL}
};
