/* The endpoints, and the MHD callbacks that route a request to them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/args.h"
#include "server/internal.h"

static const char index_text[] =
    "lessonrun latency server (httpbin-like)\n"
    "  GET /delay/<seconds>  the /get answer after a delay (fractional, at most 60)\n"
    "  GET /bytes/<n>        n pseudo-random bytes (at most 100 MiB); ?seed=<n> repeats them\n"
    "  ANY /status/<code>    answers with that status (200..599)\n"
    "  GET /get              the request echoed as JSON: args, headers, origin, url, method\n"
    "  ANY /anything         the same for any method, plus the body as \"data\"\n"
    "  GET /redirect/<n>     302 to /redirect/<n-1> ... then to /get (n at most 100)\n"
    "  GET /headers          {\"headers\": {...}}\n";

/* Seconds as plain decimal ("2", "0.25", ".5"): no sign, exponent, hex, inf. */
static int parse_seconds(const char *p, double *out) {
  int digits = 0, dots = 0;
  for (const char *q = p; *q; q++) {
    if (*q >= '0' && *q <= '9') digits++;
    else if (*q == '.' && !dots) dots++;
    else return 0;
  }
  if (!digits) return 0;
  char *end;
  double v = strtod(p, &end);
  if (*end || !isfinite(v)) return 0;
  *out = v;
  return 1;
}

static int is_get(const char *method) {
  return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

static enum MHD_Result not_allowed(struct MHD_Connection *c) {
  lr_jw w = lr__error_json("method not allowed (use GET or HEAD)");
  return lr__send_json(c, MHD_HTTP_METHOD_NOT_ALLOWED, &w, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
}

/* /delay/<s>: suspend now; the uv thread's timer resumes us, and MHD calls
 * the handler again, which then answers. */
static enum MHD_Result delay(lr_server *s, struct MHD_Connection *c, lr_req *r, const char *arg,
                             const char *method) {
  if (r->suspended) {
    /* resumed by stop, not by its timer: a stopped server closes the
     * connection rather than answer before the delay is over */
    if (lr__delays_stopping(s) || uv_hrtime() < r->due) return MHD_NO;
    return lr__send_echo(s, c, r, method, 0);
  }
  double secs;
  if (!parse_seconds(arg, &secs))
    return lr__send_error(c, MHD_HTTP_BAD_REQUEST, "delay must be a number of seconds, e.g. /delay/1.5");
  if (secs > MAX_DELAY_S)
    return lr__send_error(c, MHD_HTTP_BAD_REQUEST, "delay must be at most 60 seconds, e.g. /delay/1.5");
  r->due = uv_hrtime() + (uint64_t)llround(secs * 1e9);
  int rc = lr__delays_add(s, c, r->due);
  if (rc == -2) return lr__send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  if (rc != 0) return lr__send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is stopping");
  r->suspended = 1;  /* (this thread is the one MHD calls us on again) */
  return MHD_YES;
}

typedef struct { uint64_t seed, size; } bytes_gen;

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

/* Byte i depends only on (seed, i), so any chunking gives the same stream. */
static ssize_t bytes_read(void *cls, uint64_t pos, char *buf, size_t max) {
  bytes_gen *g = cls;
  if (pos >= g->size) return MHD_CONTENT_READER_END_OF_STREAM;
  size_t n = g->size - pos < max ? (size_t)(g->size - pos) : max;
  uint64_t w = splitmix64(g->seed ^ (pos / 8));
  for (size_t i = 0; i < n; i++) {
    uint64_t p = pos + i;
    if (p % 8 == 0) w = splitmix64(g->seed ^ (p / 8));
    buf[i] = (char)(w >> (8 * (p % 8)));
  }
  return (ssize_t)n;
}

static enum MHD_Result bytes(lr_server *s, struct MHD_Connection *c, const char *arg) {
  uint64_t n, seed;
  if (!lr__parse_uint(arg, UINT64_MAX / 2, &n))
    return lr__send_error(c, MHD_HTTP_BAD_REQUEST, "byte count must be a whole number, e.g. /bytes/1024");
  if (n > MAX_BYTES)
    return lr__send_error(c, MHD_HTTP_BAD_REQUEST, "byte count must be at most 104857600 (100 MiB), e.g. /bytes/1024");
  const char *sv = NULL;
  size_t svlen = 0;
  if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "seed", 4, &sv, &svlen) == MHD_YES) {
    if (!sv || lr__has_nul(sv, svlen) || !lr__parse_uint(sv, UINT64_MAX, &seed))
      return lr__send_error(c, MHD_HTTP_BAD_REQUEST, "seed must be a whole number, e.g. ?seed=42");
  } else {
    seed = splitmix64(uv_hrtime() + ++s->seed_counter);
  }
  bytes_gen *g = malloc(sizeof *g);
  if (!g) return lr__send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  g->seed = seed;
  g->size = n;
  struct MHD_Response *r = MHD_create_response_from_callback(n, 32 * 1024, bytes_read, g, free);
  if (!r) free(g);
  return lr__send_response(c, MHD_HTTP_OK, r, "application/octet-stream");
}

static enum MHD_Result status(struct MHD_Connection *c, const char *arg) {
  uint64_t code;
  /* a 1xx is only ever a prelude to a final answer, never one itself: MHD
   * would send it again and again */
  if (!lr__parse_uint(arg, 999, &code) || code < 200 || code > 599)
    return lr__send_error(c, MHD_HTTP_BAD_REQUEST,
                      "status must be a final code in 200..599 (1xx are not answers), e.g. /status/418");
  if (code == 204 || code == 304) {  /* these answers cannot carry a body */
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    return lr__send_response(c, (unsigned)code, r, NULL);
  }
  const char *reason = MHD_get_reason_phrase_for((unsigned)code);
  char num[8];
  snprintf(num, sizeof num, "%u", (unsigned)code);
  lr_jw w = LR_JW_INIT;
  lr__jw_open(&w, '{');
  lr__jw_key(&w, "status", 6);
  lr__jw_raw(&w, num, strlen(num));
  if (strcmp(reason, "Unknown") != 0) lr__jw_kstr(&w, "reason", reason);
  lr__jw_close(&w, '}');
  return lr__send_json(c, (unsigned)code, &w, NULL, NULL);
}

static enum MHD_Result redirect(struct MHD_Connection *c, const char *arg) {
  uint64_t n;
  if (!lr__parse_uint(arg, MAX_REDIRECTS, &n) || n < 1)
    return lr__send_error(c, MHD_HTTP_BAD_REQUEST, "redirect count must be in 1..100, e.g. /redirect/3");
  char to[32], text[64];
  if (n == 1) snprintf(to, sizeof to, "/get");
  else snprintf(to, sizeof to, "/redirect/%u", (unsigned)(n - 1));
  int len = snprintf(text, sizeof text, "redirecting to %s\n", to);
  struct MHD_Response *r = MHD_create_response_from_buffer((size_t)len, text, MHD_RESPMEM_MUST_COPY);
  if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, to) != MHD_YES) {
    MHD_destroy_response(r);
    return MHD_NO;
  }
  return lr__send_response(c, MHD_HTTP_FOUND, r, "text/plain; charset=utf-8");
}

static const char *after(const char *url, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(url, prefix, n) == 0 ? url + n : NULL;
}

static int wants_body(const char *url) {
  return strcmp(url, "/anything") == 0 || after(url, "/anything/") != NULL;
}

static enum MHD_Result route(lr_server *s, struct MHD_Connection *c, lr_req *r, const char *url,
                             const char *method) {
  const char *arg;
  if (strcmp(url, "/") == 0) {
    if (!is_get(method)) return not_allowed(c);
    return lr__send_text(c, MHD_HTTP_OK, index_text);
  }
  if (strcmp(url, "/get") == 0) {
    if (!is_get(method)) return not_allowed(c);
    return lr__send_echo(s, c, r, method, 0);
  }
  if (wants_body(url)) {
    if (r->body.err == LR_BUF_FULL) return lr__send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body larger than 1 MiB");
    return lr__send_echo(s, c, r, method, 1);
  }
  if (strcmp(url, "/headers") == 0) {
    if (!is_get(method)) return not_allowed(c);
    lr_jw w = LR_JW_INIT;
    lr__jw_open(&w, '{');
    lr__jw_key(&w, "headers", 7);
    lr__jw_values(&w, c, MHD_HEADER_KIND);
    lr__jw_close(&w, '}');
    return lr__send_json(c, MHD_HTTP_OK, &w, NULL, NULL);
  }
  if ((arg = after(url, "/delay/"))) return delay(s, c, r, arg, method);
  if ((arg = after(url, "/status/"))) return status(c, arg);
  if ((arg = after(url, "/bytes/"))) return is_get(method) ? bytes(s, c, arg) : not_allowed(c);
  if ((arg = after(url, "/redirect/"))) return is_get(method) ? redirect(c, arg) : not_allowed(c);
  char msg[128];
  snprintf(msg, sizeof msg, "not found: %.80s (GET / lists the endpoints)", url);
  return lr__send_error(c, MHD_HTTP_NOT_FOUND, msg);
}

/* 0 when out of memory; a body past MAX_BODY is read and dropped (the
 * answer is then 413). */
static int keep_body(lr_req *r, const char *data, size_t n) {
  return lr__buf_add(&r->body, data, n) != LR_BUF_NOMEM;
}

enum MHD_Result lr__on_request(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **req_cls) {
  lr_server *s = cls;
  lr_req *r = *req_cls;
  if (!r) return lr__send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
  if (!r->seen) {  /* headers only; the body (if any) comes next */
    r->seen = 1;
    unsigned code;
    const char *why = lr__refused(c, r, method, version, &code);
    if (why) {  /* the body is left unread: the connection must close */
      lr_jw w = lr__error_json(why);
      return lr__send_json(c, code, &w, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    return MHD_YES;
  }
  if (*upload_size) {
    if (wants_body(url) && !keep_body(r, upload, *upload_size)) return MHD_NO;
    *upload_size = 0;
    return MHD_YES;
  }
  return route(s, c, r, url, method);
}

/* Called before the URI is parsed: the only place to see it raw, with its
 * query string, for the echo's "url".  What it returns becomes *req_cls. */
void *lr__on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
  (void)cls; (void)c;
  lr_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->uri = strdup(uri);
  if (!r->uri) {
    free(r);
    return NULL;
  }
  r->uri_end = uri + strlen(uri);
  lr__buf_init(&r->body, NULL, 0);
  r->body.max = MAX_BODY;
  return r;
}

void lr__on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                      enum MHD_RequestTerminationCode toe) {
  (void)cls; (void)c; (void)toe;
  lr_req *r = *req_cls;
  if (!r) return;
  free(r->uri);
  lr__buf_free(&r->body);
  free(r);
  *req_cls = NULL;
}
