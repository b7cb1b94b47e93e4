/* A request's URL and headers, checked before anything is allocated: only
 * http(s), nothing that would cut or split the request line, no header
 * that injects another or frames the request (lr_request: request.c). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/curl_api.h"
#include "http/http.h"
#include "base/args.h"
#include "base/http_token.h"
#include "base/url.h"

/* Longer URLs are refused up front (kind "url"): curl's buffer for the
 * request head is 1 MiB, and servers refuse far shorter ones (8-64 KiB). */
#define MAX_URL (256 * 1024)
#define MAX_HEADER_LINE (64 * 1024)  /* "Name: value" */
#define MAX_HEADERS (512 * 1024)     /* all of them, with their CRLFs */

/* The URL's host[:port], without user:password@. */
static const char *url_authority(const char *url, size_t *len) {
  const char *a = strstr(url, "://");
  size_t n = strlen(url), start = a ? (size_t)(a + 3 - url) : 0, host;
  size_t end = lr__url_authority(url, n, start, LR_URL_AUTHORITY_END, &host);
  *len = end - host;
  return url + host;
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
int lr__same_authority(const char *url, const char *v, size_t vl) {
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
 * switched protocol leaves curl a connection it cannot read.  (lr__setup
 * then leaves out a Host, which equals curl's own.) */
static void check_framing(lua_State *L, lr_request *r, const char *n, const char *v, size_t vl) {
  if (strcasecmp(n, "content-length") == 0 || strcasecmp(n, "transfer-encoding") == 0)
    lr__opterror(L, 2, r->fname, "header '%s' is not yours to set: fetch frames the body itself (a wrong "
                 "one would smuggle a second request onto a kept-alive connection)", n);
  if (strcasecmp(n, "host") == 0) {
    if (r->check_only) return;  /* checked with each URL, by fetch */
    if (!lr__same_authority(r->url, v, vl))
      lr__opterror(L, 2, r->fname, "header '%s' must be the URL's host[:port] (put the host you mean in "
                   "the URL)", n);
    return;
  }
  if (strcasecmp(n, "upgrade") == 0)
    lr__opterror(L, 2, r->fname, "header '%s' is refused: fetch cannot switch protocols on a connection", n);
  if (strcasecmp(n, "connection") == 0 && !value_is(v, vl, "close") && !value_is(v, vl, "keep-alive"))
    lr__opterror(L, 2, r->fname, "header '%s' may only be 'close' or 'keep-alive'", n);
  if (strcasecmp(n, "expect") == 0 && !value_is(v, vl, "100-continue"))
    lr__opterror(L, 2, r->fname, "header '%s' may only be '100-continue'", n);
}

/* A header's name n[0..nl) and value v[0..vl) (never quoting the value: it
 * may be a secret, an Authorization) */
static void check_header(lua_State *L, lr_request *r, const char *n, size_t nl, const char *v, size_t vl) {
  if (nl == 0) lr__opterror(L, 2, r->fname, "empty header name");
  for (size_t i = 0; i < nl; i++)
    if (!lr__http_tchar((unsigned char)n[i]))
      lr__opterror(L, 2, r->fname, n[i] ? "header name '%s' has a character not allowed there (CR, LF, "
                   "':', space...)" : "header name '%s...' has a character not allowed there (a NUL byte)", n);
  /* RFC 9110 5.5: no control characters in a field value but HTAB (CR and
   * LF would inject a header, a NUL cut it) */
  for (size_t i = 0; i < vl; i++)
    if (((unsigned char)v[i] < 32 && v[i] != '\t') || v[i] == 127) {
      if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
        lr__opterror(L, 2, r->fname, "header '%s' contains CR, LF or NUL (header injection refused)", n);
      char hex[8];  /* lua_pushfstring has no %X */
      snprintf(hex, sizeof hex, "0x%02X", (unsigned)(unsigned char)v[i]);
      lr__opterror(L, 2, r->fname, "header '%s' contains control character %s at byte %I of its value", n,
                   hex, (lua_Integer)i + 1);
    }
}

void lr__check_headers(lua_State *L, lr_request *r, int idx) {
  size_t total = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
      lr__opterror(L, 2, r->fname, "headers must map names (strings) to values (strings or numbers)");
    size_t nl, vl;
    const char *n = lua_tolstring(L, -2, &nl), *v = lua_tolstring(L, -1, &vl);
    check_header(L, r, n, nl, v, vl);
    /* curl builds the whole request head in a buffer of at most 1 MiB
     * (DYN_HTTP_REQUEST) and fails with "Out of memory" past it; servers
     * refuse much less (nginx: 8 KiB a line) */
    size_t line = nl + 2 + vl;
    if (line > MAX_HEADER_LINE)
      lr__opterror(L, 2, r->fname, "header '%s' too long: %I bytes, at most %I", n, (lua_Integer)line,
                   (lua_Integer)MAX_HEADER_LINE);
    total += line + 2;
    if (strcasecmp(n, "content-type") == 0) r->has_ctype = 1;
    check_framing(L, r, n, v, vl);
    lua_pop(L, 1);
  }
  if (total > MAX_HEADERS)
    lr__opterror(L, 2, r->fname, "request headers too long: %I bytes in all, at most %I", (lua_Integer)total,
                 (lua_Integer)MAX_HEADERS);
}

/* Raises "bad argument #1 to 'fetch' (what)", or "(item N: what)" for
 * one of fetch_all's URLs. */
static int url_argerror(lua_State *L, lr_request *r, const char *what) {
  if (r->item) return lr__opterror(L, 1, r->fname, "item %I: %s", r->item, what);
  return lr__opterror(L, 1, r->fname, "%s", what);
}

/* Raises the error value {kind="url"} for the URL r->url: "fetch: ..." */
static int url_error(lua_State *L, lr_request *r, const char *what) {
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
void lr__check_url(lua_State *L, lr_request *r) {
  if (strncasecmp(r->url, "http://", 7) != 0 && strncasecmp(r->url, "https://", 8) != 0)
    url_error(L, r, "only http:// and https:// URLs are allowed");
  if (r->url_len > MAX_URL)
    url_error(L, r, lua_pushfstring(L, "URL too long (%I bytes, at most %d)", (lua_Integer)r->url_len, MAX_URL));
  if (lr__has_nul(r->url, r->url_len)) url_argerror(L, r, "URL contains a NUL byte");
  for (const char *p = r->url; *p; p++)
    if (*p == '\r' || *p == '\n' || *p == ' ')
      url_argerror(L, r, "URL contains a space, CR or LF");
}
