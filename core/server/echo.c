/* Responses, and the JSON echo of a request (internal.h says why not jansson). */
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

enum MHD_Result lr__send_response(struct MHD_Connection *c, unsigned status,
                                  struct MHD_Response *resp, const char *ctype) {
  if (!resp) return MHD_NO;  /* out of memory: MHD closes the connection */
  if (ctype && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES) {
    MHD_destroy_response(resp);
    return MHD_NO;
  }
  enum MHD_Result rc = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return rc;
}

enum MHD_Result lr__send_text(struct MHD_Connection *c, unsigned status, const char *text) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  return lr__send_response(c, status, r, "text/plain; charset=utf-8");
}

/* ---- the JSON writer ----------------------------------------------------- */

static void jw_fail(lr_jw *w) { w->b.err = LR_BUF_NOMEM; }

void lr__jw_raw(lr_jw *w, const char *s, size_t n) { (void)lr__buf_add(&w->b, s, n); }

/* A string value; invalid UTF-8 shows as U+FFFD (the echo must stay JSON). */
static void jw_str(lr_jw *w, const char *s, size_t n) {
  if (n > (SIZE_MAX - 2) / 6) {
    jw_fail(w);
    return;
  }
  char *d = lr__buf_room(&w->b, LR_JSON_QUOTE_MAX(n));
  if (d) lr__buf_commit(&w->b, lr__json_quote(d, s, n, 1, NULL));
}

static void jw_newline(lr_jw *w) {
  lr__jw_raw(w, "\n", 1);
  for (int i = 0; i < w->indent; i++) lr__jw_raw(w, "  ", 2);
}

void lr__jw_open(lr_jw *w, char bracket) {
  lr__jw_raw(w, &bracket, 1);
  w->indent++;
  w->first = 1;
}

void lr__jw_close(lr_jw *w, char bracket) {
  w->indent--;
  if (!w->first) jw_newline(w);
  lr__jw_raw(w, &bracket, 1);
  w->first = 0;
}

static void jw_item(lr_jw *w) {  /* before each member of an object or list */
  if (!w->first) lr__jw_raw(w, ",", 1);
  w->first = 0;
  jw_newline(w);
}

void lr__jw_key(lr_jw *w, const char *k, size_t n) {
  jw_item(w);
  jw_str(w, k, n);
  lr__jw_raw(w, ": ", 2);
}

void lr__jw_kstr(lr_jw *w, const char *k, const char *v) {
  lr__jw_key(w, k, strlen(k));
  jw_str(w, v, strlen(v));
}

/* Sends the text in w (and frees it), with one extra header if name is not
 * NULL; a failed writer answers 500. */
enum MHD_Result lr__send_json(struct MHD_Connection *c, unsigned status, lr_jw *w,
                              const char *name, const char *value) {
  lr__jw_raw(w, "\n", 1);  /* curl output then ends a line */
  if (w->b.err) {
    lr__buf_free(&w->b);
    return lr__send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
  }
  struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(w->b.len, w->b.p, free);
  if (!r) {
    lr__buf_free(&w->b);
    return MHD_NO;
  }
  if (name && MHD_add_response_header(r, name, value) != MHD_YES) {
    MHD_destroy_response(r);
    return MHD_NO;
  }
  return lr__send_response(c, status, r, "application/json");
}

lr_jw lr__error_json(const char *msg) {
  lr_jw w = LR_JW_INIT;
  lr__jw_open(&w, '{');
  lr__jw_kstr(&w, "error", msg);
  lr__jw_close(&w, '}');
  return w;
}

enum MHD_Result lr__send_error(struct MHD_Connection *c, unsigned status, const char *msg) {
  lr_jw w = lr__error_json(msg);
  return lr__send_json(c, status, &w, NULL, NULL);
}

/* ---- the request echo ---------------------------------------------------- */

/* One header or query argument, with lengths: either may hold a NUL byte. */
typedef struct {
  const char *key, *value;
  size_t klen, vlen;
  size_t order;
} kv;

typedef struct {
  kv *v;
  size_t n, cap;
  int failed;
} kv_list;

static enum MHD_Result add_kv(void *cls, enum MHD_ValueKind kind, const char *key, size_t klen,
                              const char *value, size_t vlen) {
  (void)kind;
  kv_list *l = cls;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    kv *v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      l->failed = 1;
      return MHD_NO;
    }
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n] = (kv){key ? key : "", value ? value : "", key ? klen : 0, value ? vlen : 0, l->n};
  l->n++;
  return MHD_YES;
}

static int key_cmp(const kv *a, const kv *b, int fold) {
  size_t n = a->klen < b->klen ? a->klen : b->klen;
  for (size_t i = 0; i < n; i++) {
    int x = (unsigned char)a->key[i], y = (unsigned char)b->key[i];
    if (fold) {
      x = tolower(x);
      y = tolower(y);
    }
    if (x != y) return x < y ? -1 : 1;
  }
  return a->klen < b->klen ? -1 : a->klen > b->klen;
}

/* By name, then in the order they came: repeats sit together, in order. */
static int by_key(const void *a, const void *b) {
  int c = key_cmp(a, b, 0);
  return c ? c : ((const kv *)a)->order < ((const kv *)b)->order ? -1 : 1;
}

static int by_name(const void *a, const void *b) {
  int c = key_cmp(a, b, 1);
  return c ? c : ((const kv *)a)->order < ((const kv *)b)->order ? -1 : 1;
}

/* Query arguments (sorted by name): a repeated name becomes a list, as in
 * httpbin. */
static void jw_args(lr_jw *w, kv_list *l) {
  if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, by_key);
  lr__jw_open(w, '{');
  for (size_t i = 0, j; i < l->n; i = j) {
    for (j = i + 1; j < l->n && key_cmp(&l->v[i], &l->v[j], 0) == 0;) j++;
    lr__jw_key(w, l->v[i].key, l->v[i].klen);
    if (j - i == 1) {
      jw_str(w, l->v[i].value, l->v[i].vlen);
      continue;
    }
    lr__jw_open(w, '[');
    for (size_t k = i; k < j; k++) {
      jw_item(w);
      jw_str(w, l->v[k].value, l->v[k].vlen);
    }
    lr__jw_close(w, ']');
  }
  lr__jw_close(w, '}');
}

/* Headers as httpbin shows them: Title-Case, repeats joined with ", ". */
static void jw_headers(lr_jw *w, kv_list *l) {
  if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, by_name);
  lr__jw_open(w, '{');
  for (size_t i = 0, j; i < l->n; i = j) {
    for (j = i + 1; j < l->n && key_cmp(&l->v[i], &l->v[j], 1) == 0;) j++;
    size_t n = l->v[i].klen, total = 0;
    for (size_t k = i; k < j; k++) total += l->v[k].vlen + 2;
    char *name = malloc(n + 1), *joined = malloc(total + 1);
    if (!name || !joined) {
      free(name);
      free(joined);
      jw_fail(w);
      return;
    }
    int up = 1;
    for (size_t k = 0; k < n; k++) {
      char ch = l->v[i].key[k];
      name[k] = up ? (char)toupper((unsigned char)ch) : (char)tolower((unsigned char)ch);
      up = ch == '-';
    }
    size_t len = 0;
    for (size_t k = i; k < j; k++) {
      if (k > i) {
        memcpy(joined + len, ", ", 2);
        len += 2;
      }
      memcpy(joined + len, l->v[k].value, l->v[k].vlen);
      len += l->v[k].vlen;
    }
    lr__jw_key(w, name, n);
    jw_str(w, joined, len);
    free(name);
    free(joined);
  }
  lr__jw_close(w, '}');
}

void lr__jw_values(lr_jw *w, struct MHD_Connection *c, enum MHD_ValueKind kind) {
  kv_list l = {0};
  MHD_get_connection_values_n(c, kind, add_kv, &l);
  if (l.failed) jw_fail(w);
  else if (kind == MHD_HEADER_KIND) jw_headers(w, &l);
  else jw_args(w, &l);
  free(l.v);
}

static void client_ip(struct MHD_Connection *c, char *buf, size_t n) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(buf, n, "unknown");
  if (!ci || !ci->client_addr) return;
  const struct sockaddr *sa = ci->client_addr;
  socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (getnameinfo(sa, len, buf, (socklen_t)n, NULL, 0, NI_NUMERICHOST) != 0)
    snprintf(buf, n, "unknown");
}

/* A body that is not UTF-8 shows as a base64 data URL, as in httpbin. */
static void jw_body(lr_jw *w, const char *b, size_t n) {
  size_t bad;
  char *d = n <= (SIZE_MAX - 2) / 6 ? lr__buf_room(&w->b, LR_JSON_QUOTE_MAX(n)) : NULL;
  if (!d) {
    jw_fail(w);
    return;
  }
  size_t q = lr__json_quote(d, b, n, 0, &bad);
  if (q) {
    lr__buf_commit(&w->b, q);
    return;
  }
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char prefix[] = "\"data:application/octet-stream;base64,";
  lr__jw_raw(w, prefix, sizeof prefix - 1);
  const unsigned char *p = (const unsigned char *)b;
  for (size_t i = 0; i < n; i += 3) {
    unsigned long v = (unsigned long)p[i] << 16 | (i + 1 < n ? (unsigned long)p[i + 1] << 8 : 0) |
                      (i + 2 < n ? p[i + 2] : 0);
    char out[4] = {b64[v >> 18], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                   i + 2 < n ? b64[v & 63] : '='};
    lr__jw_raw(w, out, 4);
  }
  lr__jw_raw(w, "\"", 1);
}

/* {"args", "headers", "origin", "url", "method"} and, for /anything, "data". */
static lr_jw echo(lr_server *s, struct MHD_Connection *c, lr_req *r, const char *method,
               int with_data) {
  lr_jw w = LR_JW_INIT;
  lr__jw_open(&w, '{');
  lr__jw_key(&w, "args", 4);
  lr__jw_values(&w, c, MHD_GET_ARGUMENT_KIND);
  lr__jw_key(&w, "headers", 7);
  lr__jw_values(&w, c, MHD_HEADER_KIND);
  if (with_data) {
    lr__jw_key(&w, "data", 4);
    jw_body(&w, r->body.p ? r->body.p : "", r->body.len);
  }
  char ip[INET6_ADDRSTRLEN + 8];
  client_ip(c, ip, sizeof ip);
  lr__jw_kstr(&w, "origin", ip);
  const char *host = s->hostport, *uri = r->uri ? r->uri : "/";
  size_t hlen = strlen(host);
  (void)MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST,
                                      strlen(MHD_HTTP_HEADER_HOST), &host, &hlen);
  size_t ulen = strlen(uri), n = strlen("http://") + hlen + ulen;
  char *url = malloc(n);
  if (url) {
    memcpy(url, "http://", 7);
    memcpy(url + 7, host, hlen);
    memcpy(url + 7 + hlen, uri, ulen);
    lr__jw_key(&w, "url", 3);
    jw_str(&w, url, n);
    free(url);
  } else {
    jw_fail(&w);
  }
  lr__jw_kstr(&w, "method", method);
  lr__jw_close(&w, '}');
  return w;
}

enum MHD_Result lr__send_echo(lr_server *s, struct MHD_Connection *c, lr_req *r,
                              const char *method, int with_data) {
  lr_jw w = echo(s, c, r, method, with_data);
  return lr__send_json(c, MHD_HTTP_OK, &w, NULL, NULL);
}
