/* How a transfer failed: its error kind (the contract in fetch.c) and the
 * error value raised. */
#include <string.h>

#include "base/curl_api.h"
#include "http/http.h"

static const char *kind_of(lr_fetch *f) {
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

int lr__is_error_status(lr_fetch *f) { return f->result != CURLE_OK || !f->headers_done; }

/* Raises the transfer's failure: {kind=, message=, url=, curl_code=}, every
 * URL in it without its password; out of memory is Lua's own error. */
int lr__raise_failure(lua_State *L, lr_fetch *f, const char *fname, const char *url) {
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
