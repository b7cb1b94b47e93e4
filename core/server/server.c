/* The built-in latency server (httpbin-like), so lessons work offline.
 *
 * Threads: libmicrohttpd runs the HTTP side in its own polling thread
 * (epoll), and a second thread runs a private libuv loop that owns the
 * timers of /delay.  A delayed request is suspended in the MHD thread and
 * handed over through a mutex-protected queue and a uv_async_t; the uv
 * thread keeps the delays in a heap by due time and one timerfd armed for
 * the earliest, and resumes each when it is due.  So a delay costs a heap
 * entry, never a thread or a sleep, and a blocking Lua script (the main
 * thread) cannot stall the server.  A timerfd rather than uv timers: those
 * count whole milliseconds from a truncated clock and fire ~0.9 ms late on
 * average, which showed in the lesson's 0.2 s (two rounds of /delay/0.1);
 * the timerfd is armed for the nanosecond the request arrived plus its
 * delay.
 *
 * Lifetimes: a request's state (lr_req) belongs to the MHD thread, created in
 * the URI callback and freed in the completed callback; a delay (lr_delay)
 * belongs to the uv thread from the moment it is queued and is freed right
 * after its connection has been resumed, exactly once.
 * Stopping resumes every suspended connection before MHD_stop_daemon, which
 * MHD requires. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/heap.h"
#include "base/mhd_api.h"

#include "lr.h"

#define SERVER_MT "lessonrun.Server"
#define MAX_DELAY_S 60.0
#define MAX_BYTES (100u * 1024 * 1024)
#define MAX_REDIRECTS 100
#define MAX_BODY (1u * 1024 * 1024)   /* what /anything keeps of a body */
#define CONNECTION_LIMIT 20000
#define HOST_MAX 64                   /* longest numeric IPv6 text is 45 */

typedef struct lr_delay lr_delay;

typedef struct {
  struct MHD_Daemon *mhd;
  uv_loop_t loop;
  uv_async_t async;         /* wakes the uv thread: new delays, or stop */
  int tfd;                  /* timerfd, armed for the earliest delay (uv thread) */
  uv_poll_t tpoll;
  lr_delay **heap;          /* delays by due time (uv thread) */
  size_t heap_len, heap_cap;
  uv_thread_t thread;
  uv_mutex_t mu;            /* guards queue_head/tail and stopping */
  lr_delay *queue_head, *queue_tail;
  int stopping;
  int verbose;              /* CLI: MHD's runtime messages go to stderr */
  atomic_int capturing;     /* MHD_start_daemon is running: keep its error */
  char err[256];
  char host[HOST_MAX];
  unsigned port;
  char url[HOST_MAX + 32];
  char hostport[HOST_MAX + 16];  /* stands in for a missing Host header */
  uint64_t seed_counter;    /* varies /bytes without ?seed= (MHD thread) */
} lr_server;

struct lr_delay {
  struct MHD_Connection *conn;
  uint64_t due;             /* ns on uv_hrtime's clock (CLOCK_MONOTONIC) */
  lr_delay *next;           /* in the queue */
};

/* One HTTP request, as MHD hands it to us over several calls. */
typedef struct {
  char *uri;                /* raw request target, with the query string */
  const char *uri_end;      /* where MHD's copy of it ends in its read buffer */
  lr_buf body;              /* at most MAX_BODY bytes (err LR_BUF_FULL past it) */
  unsigned seen : 1;        /* the headers-only first call is done */
  unsigned suspended : 1;   /* /delay: its timer has been asked for */
  uint64_t due;             /* /delay: when it may be answered (uv_hrtime) */
} lr_req;

/* ---- the uv thread: timers for /delay ----------------------------------- */

static void resume(lr_delay *d) {
  MHD_resume_connection(d->conn);
  free(d);
}

#define DUE_BEFORE(x, y) ((*(x))->due < (*(y))->due)
LR_HEAP_DEFINE(delays, lr_delay *, DUE_BEFORE, LR_HEAP_UNTRACKED)

static int heap_push(lr_server *s, lr_delay *d) {
  if (s->heap_len == s->heap_cap) {
    size_t cap = s->heap_cap ? 2 * s->heap_cap : 64;
    lr_delay **h = realloc(s->heap, cap * sizeof *h);
    if (!h) return -1;
    s->heap = h;
    s->heap_cap = cap;
  }
  delays_push(s->heap, &s->heap_len, d);
  return 0;
}

static lr_delay *heap_pop(lr_server *s) {
  lr_delay *top = s->heap[0];
  delays_remove(s->heap, &s->heap_len, 0);
  return top;
}

/* Arms the timerfd for the earliest delay (absolute), or disarms it. */
static void arm(lr_server *s) {
  struct itimerspec its = {0};
  if (s->heap_len) {
    uint64_t due = s->heap[0]->due ? s->heap[0]->due : 1;  /* 0 would disarm */
    its.it_value.tv_sec = (time_t)(due / 1000000000u);
    its.it_value.tv_nsec = (long)(due % 1000000000u);
  }
  if (timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
    /* cannot wait: answer now rather than never */
    while (s->heap_len) resume(heap_pop(s));
  }
}

static void on_due(uv_poll_t *p, int status, int events) {
  lr_server *s = p->data;
  (void)status; (void)events;
  uint64_t expirations;
  if (read(s->tfd, &expirations, sizeof expirations) < 0) { /* EAGAIN: spurious */ }
  uint64_t now = uv_hrtime();
  while (s->heap_len && s->heap[0]->due <= now) resume(heap_pop(s));
  arm(s);
}

static void on_async(uv_async_t *a) {
  lr_server *s = a->data;
  uv_mutex_lock(&s->mu);
  lr_delay *q = s->queue_head;
  s->queue_head = s->queue_tail = NULL;
  int stopping = s->stopping;
  uv_mutex_unlock(&s->mu);
  while (q) {
    lr_delay *d = q;
    q = q->next;
    if (stopping || heap_push(s, d) != 0) resume(d);
  }
  if (stopping) {
    /* MHD must not be stopped with suspended connections: resume them all,
     * then close the handles so uv_run returns */
    while (s->heap_len) resume(heap_pop(s));
    uv_close((uv_handle_t *)&s->tpoll, NULL);
    uv_close((uv_handle_t *)&s->async, NULL);
    return;
  }
  arm(s);
}

static void uv_thread_main(void *arg) {
  lr_server *s = arg;
  (void)prctl(PR_SET_TIMERSLACK, 1UL);  /* the default 50 us is late for a latency server */
  (void)uv_run(&s->loop, UV_RUN_DEFAULT);  /* returns once stopping closed every handle */
}

/* ---- responses ----------------------------------------------------------- */

static enum MHD_Result send_response(struct MHD_Connection *c, unsigned status,
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

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *text) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  return send_response(c, status, r, "text/plain; charset=utf-8");
}

/* JSON output, written here rather than through jansson: what the echo shows
 * may hold invalid UTF-8 (shown as U+FFFD), which jansson refuses.  An
 * allocation failure marks the writer failed; the caller then answers 500. */
typedef struct {
  lr_buf b;                 /* no room: its p is malloc'd, handed to MHD */
  int indent;
  int first;                /* no member yet in the innermost object or list */
} jw;

#define JW_INIT {LR_BUF_INIT, 0, 0}

static void jw_fail(jw *w) { w->b.err = LR_BUF_NOMEM; }

static void jw_raw(jw *w, const char *s, size_t n) { (void)lr__buf_add(&w->b, s, n); }

/* A string value; invalid UTF-8 shows as U+FFFD (the echo must stay JSON). */
static void jw_str(jw *w, const char *s, size_t n) {
  if (n > (SIZE_MAX - 2) / 6) {
    jw_fail(w);
    return;
  }
  char *d = lr__buf_room(&w->b, LR_JSON_QUOTE_MAX(n));
  if (d) lr__buf_commit(&w->b, lr__json_quote(d, s, n, 1, NULL));
}

static void jw_newline(jw *w) {
  jw_raw(w, "\n", 1);
  for (int i = 0; i < w->indent; i++) jw_raw(w, "  ", 2);
}

static void jw_open(jw *w, char bracket) {
  jw_raw(w, &bracket, 1);
  w->indent++;
  w->first = 1;
}

static void jw_close(jw *w, char bracket) {
  w->indent--;
  if (!w->first) jw_newline(w);
  jw_raw(w, &bracket, 1);
  w->first = 0;
}

static void jw_item(jw *w) {  /* before each member of an object or list */
  if (!w->first) jw_raw(w, ",", 1);
  w->first = 0;
  jw_newline(w);
}

static void jw_key(jw *w, const char *k, size_t n) {
  jw_item(w);
  jw_str(w, k, n);
  jw_raw(w, ": ", 2);
}

static void jw_kstr(jw *w, const char *k, const char *v) {
  jw_key(w, k, strlen(k));
  jw_str(w, v, strlen(v));
}

/* Sends the text in w (and frees it), with one extra header if name is not
 * NULL; a failed writer answers 500. */
static enum MHD_Result send_json_h(struct MHD_Connection *c, unsigned status, jw *w,
                                   const char *name, const char *value) {
  jw_raw(w, "\n", 1);  /* curl output then ends a line */
  if (w->b.err) {
    lr__buf_free(&w->b);
    return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
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
  return send_response(c, status, r, "application/json");
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, jw *w) {
  return send_json_h(c, status, w, NULL, NULL);
}

static jw error_json(const char *msg) {
  jw w = JW_INIT;
  jw_open(&w, '{');
  jw_kstr(&w, "error", msg);
  jw_close(&w, '}');
  return w;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg) {
  jw w = error_json(msg);
  return send_json(c, status, &w);
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
static void jw_args(jw *w, kv_list *l) {
  if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, by_key);
  jw_open(w, '{');
  for (size_t i = 0, j; i < l->n; i = j) {
    for (j = i + 1; j < l->n && key_cmp(&l->v[i], &l->v[j], 0) == 0;) j++;
    jw_key(w, l->v[i].key, l->v[i].klen);
    if (j - i == 1) {
      jw_str(w, l->v[i].value, l->v[i].vlen);
      continue;
    }
    jw_open(w, '[');
    for (size_t k = i; k < j; k++) {
      jw_item(w);
      jw_str(w, l->v[k].value, l->v[k].vlen);
    }
    jw_close(w, ']');
  }
  jw_close(w, '}');
}

/* Headers as httpbin shows them: Title-Case, repeats joined with ", ". */
static void jw_headers(jw *w, kv_list *l) {
  if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, by_name);
  jw_open(w, '{');
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
    jw_key(w, name, n);
    jw_str(w, joined, len);
    free(name);
    free(joined);
  }
  jw_close(w, '}');
}

static void jw_values(jw *w, struct MHD_Connection *c, enum MHD_ValueKind kind) {
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
static void jw_body(jw *w, const char *b, size_t n) {
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
  jw_raw(w, prefix, sizeof prefix - 1);
  const unsigned char *p = (const unsigned char *)b;
  for (size_t i = 0; i < n; i += 3) {
    unsigned long v = (unsigned long)p[i] << 16 | (i + 1 < n ? (unsigned long)p[i + 1] << 8 : 0) |
                      (i + 2 < n ? p[i + 2] : 0);
    char out[4] = {b64[v >> 18], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                   i + 2 < n ? b64[v & 63] : '='};
    jw_raw(w, out, 4);
  }
  jw_raw(w, "\"", 1);
}

/* {"args", "headers", "origin", "url", "method"} and, for /anything, "data". */
static jw echo(lr_server *s, struct MHD_Connection *c, lr_req *r, const char *method,
               int with_data) {
  jw w = JW_INIT;
  jw_open(&w, '{');
  jw_key(&w, "args", 4);
  jw_values(&w, c, MHD_GET_ARGUMENT_KIND);
  jw_key(&w, "headers", 7);
  jw_values(&w, c, MHD_HEADER_KIND);
  if (with_data) {
    jw_key(&w, "data", 4);
    jw_body(&w, r->body.p ? r->body.p : "", r->body.len);
  }
  char ip[INET6_ADDRSTRLEN + 8];
  client_ip(c, ip, sizeof ip);
  jw_kstr(&w, "origin", ip);
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
    jw_key(&w, "url", 3);
    jw_str(&w, url, n);
    free(url);
  } else {
    jw_fail(&w);
  }
  jw_kstr(&w, "method", method);
  jw_close(&w, '}');
  return w;
}

/* ---- endpoints ----------------------------------------------------------- */

static const char index_text[] =
    "lessonrun latency server (httpbin-like)\n"
    "  GET /delay/<seconds>  the /get answer after a delay (fractional, at most 60)\n"
    "  GET /bytes/<n>        n pseudo-random bytes (at most 100 MiB); ?seed=<n> repeats them\n"
    "  ANY /status/<code>    answers with that status (200..599)\n"
    "  GET /get              the request echoed as JSON: args, headers, origin, url, method\n"
    "  ANY /anything         the same for any method, plus the body as \"data\"\n"
    "  GET /redirect/<n>     302 to /redirect/<n-1> ... then to /get (n at most 100)\n"
    "  GET /headers          {\"headers\": {...}}\n";

/* A whole non-negative decimal integer, no sign, no spaces, no overflow. */
static int parse_uint(const char *p, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  if (!*p) return 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9') return 0;
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v > max) return 0;
  *out = v;
  return 1;
}

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
  jw w = error_json("method not allowed (use GET or HEAD)");
  return send_json_h(c, MHD_HTTP_METHOD_NOT_ALLOWED, &w, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
}

static enum MHD_Result send_echo(lr_server *s, struct MHD_Connection *c, lr_req *r,
                                 const char *method, int with_data) {
  jw w = echo(s, c, r, method, with_data);
  return send_json(c, MHD_HTTP_OK, &w);
}

/* /delay/<s>: suspend now; the uv thread's timer resumes us, and MHD calls
 * the handler again, which then answers. */
static enum MHD_Result delay(lr_server *s, struct MHD_Connection *c, lr_req *r, const char *arg,
                             const char *method) {
  if (r->suspended) {
    /* resumed by stop, not by its timer: a stopped server closes the
     * connection rather than answer before the delay is over */
    uv_mutex_lock(&s->mu);
    int stopping = s->stopping;
    uv_mutex_unlock(&s->mu);
    if (stopping || uv_hrtime() < r->due) return MHD_NO;
    return send_echo(s, c, r, method, 0);
  }
  double secs;
  if (!parse_seconds(arg, &secs))
    return send_error(c, MHD_HTTP_BAD_REQUEST, "delay must be a number of seconds, e.g. /delay/1.5");
  if (secs > MAX_DELAY_S)
    return send_error(c, MHD_HTTP_BAD_REQUEST, "delay must be at most 60 seconds, e.g. /delay/1.5");
  lr_delay *d = calloc(1, sizeof *d);
  if (!d) return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  d->conn = c;
  d->due = uv_hrtime() + (uint64_t)llround(secs * 1e9);
  r->due = d->due;
  /* Suspending under the lock means the uv thread, which must take it to
   * see this delay, cannot resume the connection before it is suspended. */
  uv_mutex_lock(&s->mu);
  if (s->stopping || uv_async_send(&s->async) != 0) {
    uv_mutex_unlock(&s->mu);
    free(d);
    return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is stopping");
  }
  if (s->queue_tail) s->queue_tail->next = d;
  else s->queue_head = d;
  s->queue_tail = d;
  r->suspended = 1;
  MHD_suspend_connection(c);
  uv_mutex_unlock(&s->mu);
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
  if (!parse_uint(arg, UINT64_MAX / 2, &n))
    return send_error(c, MHD_HTTP_BAD_REQUEST, "byte count must be a whole number, e.g. /bytes/1024");
  if (n > MAX_BYTES)
    return send_error(c, MHD_HTTP_BAD_REQUEST, "byte count must be at most 104857600 (100 MiB), e.g. /bytes/1024");
  const char *sv = NULL;
  size_t svlen = 0;
  if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "seed", 4, &sv, &svlen) == MHD_YES) {
    if (!sv || strlen(sv) != svlen || !parse_uint(sv, UINT64_MAX, &seed))
      return send_error(c, MHD_HTTP_BAD_REQUEST, "seed must be a whole number, e.g. ?seed=42");
  } else {
    seed = splitmix64(uv_hrtime() + ++s->seed_counter);
  }
  bytes_gen *g = malloc(sizeof *g);
  if (!g) return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  g->seed = seed;
  g->size = n;
  struct MHD_Response *r = MHD_create_response_from_callback(n, 32 * 1024, bytes_read, g, free);
  if (!r) free(g);
  return send_response(c, MHD_HTTP_OK, r, "application/octet-stream");
}

static enum MHD_Result status(struct MHD_Connection *c, const char *arg) {
  uint64_t code;
  /* a 1xx is only ever a prelude to a final answer, never one itself: MHD
   * would send it again and again */
  if (!parse_uint(arg, 999, &code) || code < 200 || code > 599)
    return send_error(c, MHD_HTTP_BAD_REQUEST,
                      "status must be a final code in 200..599 (1xx are not answers), e.g. /status/418");
  if (code == 204 || code == 304) {  /* these answers cannot carry a body */
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    return send_response(c, (unsigned)code, r, NULL);
  }
  const char *reason = MHD_get_reason_phrase_for((unsigned)code);
  char num[8];
  snprintf(num, sizeof num, "%u", (unsigned)code);
  jw w = JW_INIT;
  jw_open(&w, '{');
  jw_key(&w, "status", 6);
  jw_raw(&w, num, strlen(num));
  if (strcmp(reason, "Unknown") != 0) jw_kstr(&w, "reason", reason);
  jw_close(&w, '}');
  return send_json(c, (unsigned)code, &w);
}

static enum MHD_Result redirect(struct MHD_Connection *c, const char *arg) {
  uint64_t n;
  if (!parse_uint(arg, MAX_REDIRECTS, &n) || n < 1)
    return send_error(c, MHD_HTTP_BAD_REQUEST, "redirect count must be in 1..100, e.g. /redirect/3");
  char to[32], text[64];
  if (n == 1) snprintf(to, sizeof to, "/get");
  else snprintf(to, sizeof to, "/redirect/%u", (unsigned)(n - 1));
  int len = snprintf(text, sizeof text, "redirecting to %s\n", to);
  struct MHD_Response *r = MHD_create_response_from_buffer((size_t)len, text, MHD_RESPMEM_MUST_COPY);
  if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, to) != MHD_YES) {
    MHD_destroy_response(r);
    return MHD_NO;
  }
  return send_response(c, MHD_HTTP_FOUND, r, "text/plain; charset=utf-8");
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
    return send_text(c, MHD_HTTP_OK, index_text);
  }
  if (strcmp(url, "/get") == 0) {
    if (!is_get(method)) return not_allowed(c);
    return send_echo(s, c, r, method, 0);
  }
  if (wants_body(url)) {
    if (r->body.err == LR_BUF_FULL) return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body larger than 1 MiB");
    return send_echo(s, c, r, method, 1);
  }
  if (strcmp(url, "/headers") == 0) {
    if (!is_get(method)) return not_allowed(c);
    jw w = JW_INIT;
    jw_open(&w, '{');
    jw_key(&w, "headers", 7);
    jw_values(&w, c, MHD_HEADER_KIND);
    jw_close(&w, '}');
    return send_json(c, MHD_HTTP_OK, &w);
  }
  if ((arg = after(url, "/delay/"))) return delay(s, c, r, arg, method);
  if ((arg = after(url, "/status/"))) return status(c, arg);
  if ((arg = after(url, "/bytes/"))) return is_get(method) ? bytes(s, c, arg) : not_allowed(c);
  if ((arg = after(url, "/redirect/"))) return is_get(method) ? redirect(c, arg) : not_allowed(c);
  char msg[128];
  snprintf(msg, sizeof msg, "not found: %.80s (GET / lists the endpoints)", url);
  return send_error(c, MHD_HTTP_NOT_FOUND, msg);
}

/* 0 when out of memory; a body past MAX_BODY is read and dropped (the
 * answer is then 413). */
static int keep_body(lr_req *r, const char *data, size_t n) {
  return lr__buf_add(&r->body, data, n) != LR_BUF_NOMEM;
}

typedef struct {
  const char *cl;           /* the first Content-Length value */
  size_t cl_len;
  int cl_conflict, te;
  const char *te_value;     /* the first Transfer-Encoding value */
  const char *bad;          /* why a header line is malformed, or NULL */
  const char *prev_end;     /* end of the last line seen, in MHD's read buffer */
} framing;

/* RFC 9110 5.6.2: the characters of a token, which a field name must be. */
static int is_tchar(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Bytes MHD leaves between two parts of one request it parsed in place:
 * the NULs it wrote over separators and line ends, and whitespace.  Any
 * other byte there was cut off by a NUL byte the client sent. */
static int only_separators(const char *p, const char *end) {
  for (; p < end; p++)
    if (*p != '\0' && *p != ' ' && *p != '\t') return 0;
  return 1;
}

static enum MHD_Result see_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t klen, const char *value, size_t vlen) {
  (void)kind;
  framing *f = cls;
  if (!value) value = "";
  if (f->bad) return MHD_NO;
  for (size_t i = 0; i < klen; i++)
    if (!is_tchar((unsigned char)key[i])) {
      f->bad = "a header name that is not a token (whitespace before the colon?)";
      return MHD_NO;
    }
  /* libmicrohttpd 0.9.75 parses each line in place (name, NUL over the
   * colon, whitespace, value) but appends an obs-fold continuation to the
   * name in a copy elsewhere: a name apart from its value was folded. */
  if (klen == 0 || value <= key + klen || key[klen] != '\0' ||
      !only_separators(key + klen + 1, value)) {
    f->bad = "a header folded over lines (obs-fold) or cut by a NUL byte";
    return MHD_NO;
  }
  if (f->prev_end && f->prev_end <= key && !only_separators(f->prev_end, key)) {
    f->bad = "a NUL byte in a header";
    return MHD_NO;
  }
  f->prev_end = value + vlen;
  if (klen == 14 && strncasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH, 14) == 0) {
    if (!f->cl) {
      f->cl = value;
      f->cl_len = vlen;
    } else if (f->cl_len != vlen || memcmp(f->cl, value, vlen) != 0) {
      f->cl_conflict = 1;
    }
  } else if (klen == 17 && strncasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING, 17) == 0) {
    if (!f->te++) f->te_value = value;
  }
  return MHD_YES;
}

/* Why a request cannot be taken as it came, or NULL, with the status to
 * answer in *code.  Where its body ends must be certain (RFC 9112 6.3):
 * libmicrohttpd takes the first of two Content-Length headers, Transfer-
 * Encoding over Content-Length, "Content-Length :" as some other header,
 * and an unknown transfer coding as "read until close", and the rest of a
 * body read by the other rule would become the next request (or hang).
 * A NUL byte (%00) in the path would cut it short for the routing, and a
 * raw NUL byte anywhere in the head cuts what libmicrohttpd hands us. */
static const char *refused(struct MHD_Connection *c, const lr_req *r, const char *method,
                           const char *version, unsigned *code) {
  framing f = {0};
  *code = MHD_HTTP_BAD_REQUEST;
  if (r->uri_end && version > r->uri_end && !only_separators(r->uri_end, version))
    return "a NUL byte in the request line";
  f.prev_end = version + strlen(version);
  MHD_get_connection_values_n(c, MHD_HEADER_KIND, see_framing, &f);
  if (f.bad) return f.bad;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
  if (ci && method + ci->header_size >= f.prev_end &&  /* after the last header line */
      !only_separators(f.prev_end, method + ci->header_size))
    return "a NUL byte in a header";
  if (f.cl_conflict) return "conflicting Content-Length headers";
  if (f.te && f.cl) return "Transfer-Encoding and Content-Length together";
  if (f.te > 1) return "more than one Transfer-Encoding header";
  if (f.te && strcasecmp(f.te_value, "chunked") != 0) {
    *code = MHD_HTTP_NOT_IMPLEMENTED;
    return "Transfer-Encoding other than chunked";
  }
  for (const char *p = r->uri; *p && *p != '?'; p++)
    if (p[0] == '%' && p[1] == '0' && p[2] == '0') return "a NUL byte (%00) in the path";
  return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls) {
  lr_server *s = cls;
  lr_req *r = *req_cls;
  if (!r) return send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
  if (!r->seen) {  /* headers only; the body (if any) comes next */
    r->seen = 1;
    unsigned code;
    const char *why = refused(c, r, method, version, &code);
    if (why) {  /* the body is left unread: the connection must close */
      jw w = error_json(why);
      return send_json_h(c, code, &w, MHD_HTTP_HEADER_CONNECTION, "close");
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
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
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

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls; (void)c; (void)toe;
  lr_req *r = *req_cls;
  if (!r) return;
  free(r->uri);
  lr__buf_free(&r->body);
  free(r);
  *req_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  lr_server *s = cls;
  if (atomic_load(&s->capturing)) {
    if (!s->err[0]) vsnprintf(s->err, sizeof s->err, fmt, ap);
  } else if (s->verbose) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "lessonrun serve: %s%s", msg, msg[0] && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
  }
}

/* ---- start and stop ------------------------------------------------------ */

/* Fills sa from a numeric address ("localhost" meaning 127.0.0.1). */
static int parse_host(const char *host, int port, struct sockaddr_storage *sa, const char **canon) {
  *canon = host;
  if (strcmp(host, "localhost") == 0) *canon = "127.0.0.1";
  if (strlen(*canon) >= HOST_MAX) return 0;
  memset(sa, 0, sizeof *sa);
  if (uv_ip4_addr(*canon, port, (struct sockaddr_in *)sa) == 0) return AF_INET;
  if (uv_ip6_addr(*canon, port, (struct sockaddr_in6 *)sa) == 0) return AF_INET6;
  return 0;
}

/* A lesson's 1,000 concurrent requests need 2,000 descriptors in this
 * process (both ends): lift the soft limit to the hard one. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);  /* best effort: the old limit still works */
  }
}

static void server_free(lr_server *s) {
  uv_mutex_destroy(&s->mu);
  if (s->tfd >= 0) close(s->tfd);
  free(s->heap);
  free(s);
}

/* Wakes the uv thread to resume everything and exit, then joins it.
 * Returns 0, or -1 if the thread could not be woken (then it is left). */
static int stop_uv_thread(lr_server *s) {
  uv_mutex_lock(&s->mu);
  s->stopping = 1;
  int rc = uv_async_send(&s->async);
  uv_mutex_unlock(&s->mu);
  if (rc != 0 || uv_thread_join(&s->thread) != 0) return -1;
  return uv_loop_close(&s->loop) == 0 ? 0 : -1;
}

static void server_stop(lr_server *s) {
  if (stop_uv_thread(s) != 0) {
    /* cannot happen with libuv >= 1.x; leaking beats hanging or crashing */
    fprintf(stderr, "lessonrun: the server's timer thread did not stop; leaving it\n");
    return;
  }
  MHD_stop_daemon(s->mhd);  /* nothing is suspended any more */
  server_free(s);
}

/* Starts a server, or returns NULL with a message in err. */
static lr_server *server_start(const char *host, int port, int verbose, char *err, size_t errlen) {
  struct sockaddr_storage sa;
  const char *canon;
  if (lr__mhd_load(err, errlen) != 0) return NULL;
  int family = parse_host(host, port, &sa, &canon);
  if (!family) {
    snprintf(err, errlen,
             "host must be a numeric IPv4 or IPv6 address (e.g. 127.0.0.1 or ::1), got '%s'", host);
    return NULL;
  }
  lr_server *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "not enough memory");
    return NULL;
  }
  s->tfd = -1;
  s->verbose = verbose;
  snprintf(s->host, sizeof s->host, "%s", canon);
  if (uv_mutex_init(&s->mu) != 0) {
    free(s);
    snprintf(err, errlen, "cannot create a mutex");
    return NULL;
  }
  s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (s->tfd < 0) {
    snprintf(err, errlen, "cannot create a timer: %s", strerror(errno));
    server_free(s);
    return NULL;
  }
  int rc = uv_loop_init(&s->loop);
  if (rc == 0) {
    rc = uv_async_init(&s->loop, &s->async, on_async);
    if (rc != 0) {
      (void)uv_loop_close(&s->loop);  /* nothing open: cannot fail */
    } else if ((rc = uv_poll_init(&s->loop, &s->tpoll, s->tfd)) != 0) {
      uv_close((uv_handle_t *)&s->async, NULL);
      (void)uv_run(&s->loop, UV_RUN_DEFAULT);  /* runs the close */
      (void)uv_loop_close(&s->loop);
    } else {
      (void)uv_poll_start(&s->tpoll, UV_READABLE, on_due);  /* an initialised poll: cannot fail */
    }
  }
  if (rc != 0) {
    snprintf(err, errlen, "cannot create the timer loop: %s", uv_strerror(rc));
    server_free(s);
    return NULL;
  }
  s->async.data = s;
  s->tpoll.data = s;
  raise_fd_limit();

  /* Our threads take no signals: SIGINT must reach the main thread (the
   * runtime's handler, or the CLI's sigwait), wherever it is waiting. */
  sigset_t all, old;
  sigfillset(&all);
  int masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
  rc = uv_thread_create(&s->thread, uv_thread_main, s);
  if (rc != 0) {
    if (masked) pthread_sigmask(SIG_SETMASK, &old, NULL);
    uv_close((uv_handle_t *)&s->async, NULL);
    uv_close((uv_handle_t *)&s->tpoll, NULL);
    (void)uv_run(&s->loop, UV_RUN_DEFAULT);  /* runs the closes */
    (void)uv_loop_close(&s->loop);
    snprintf(err, errlen, "cannot start the timer thread: %s", uv_strerror(rc));
    server_free(s);
    return NULL;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                   MHD_USE_ERROR_LOG | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
  atomic_store(&s->capturing, 1);
  s->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_END);
  atomic_store(&s->capturing, 0);
  if (masked) pthread_sigmask(SIG_SETMASK, &old, NULL);
  const union MHD_DaemonInfo *info =
      s->mhd ? MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  if (!s->mhd || !info || info->port == 0) {
    size_t n = strlen(s->err);
    while (n && (s->err[n - 1] == '\n' || s->err[n - 1] == '.')) s->err[--n] = '\0';
    snprintf(err, errlen, "cannot listen on %s port %d%s%s%s", s->host, port, n ? " (" : "",
             s->err, n ? ")" : "");
    if (s->mhd) {
      server_stop(s);
    } else if (stop_uv_thread(s) == 0) {
      server_free(s);
    }
    return NULL;
  }
  s->port = info->port;
  const char *l = family == AF_INET6 ? "[" : "", *r = family == AF_INET6 ? "]" : "";
  snprintf(s->hostport, sizeof s->hostport, "%s%s%s:%u", l, s->host, r, s->port);
  snprintf(s->url, sizeof s->url, "http://%s", s->hostport);
  return s;
}

/* ---- Lua ----------------------------------------------------------------- */

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
    server_stop(s);
  }
  return 0;
}

static int srv_index(lua_State *L) {
  server_ud *u = check_server(L);
  size_t klen = 0;
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &klen) : "";
  if (strlen(k) != klen) k = "";  /* "url\0x" is no field */
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

/* serve([{host=, port=}]) -> server.  Misuse raises "bad argument";
 * failing to listen (port taken...) raises "serve: cannot listen ...". */
static int l_serve(lua_State *L) {
  const char *host = "127.0.0.1";
  lua_Integer port = 0;
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING)
        return luaL_argerror(L, 1, "option names must be strings (host, port)");
      size_t klen;
      const char *k = lua_tolstring(L, -2, &klen);
      int which = -1;
      for (int i = 0; option_names[i]; i++)  /* the length too: "host\0x" is no option */
        if (klen == strlen(option_names[i]) && strcmp(k, option_names[i]) == 0) which = i;
      if (which < 0 && strlen(k) != klen)
        return luaL_argerror(L, 1, "option names must not contain a NUL byte");
      if (which < 0)
        return luaL_argerror(L, 1, lua_pushfstring(L, "unknown option '%s' (the options are host "
                                                      "and port)", k));
      if (which == 0) {
        if (lua_type(L, -1) != LUA_TSTRING)
          return luaL_argerror(L, 1, lua_pushfstring(L, "option 'host' must be a string, got %s",
                                                     luaL_typename(L, -1)));
        size_t hlen;
        host = lua_tolstring(L, -1, &hlen);  /* anchored by the options table */
        if (strlen(host) != hlen)  /* "0.0.0.0\0x" would listen everywhere */
          return luaL_argerror(L, 1, "option 'host' must not contain a NUL byte");
      } else {
        int isint = 0;
        if (lua_type(L, -1) == LUA_TNUMBER) port = lua_tointegerx(L, -1, &isint);
        if (!isint || port < 0 || port > 65535)
          return luaL_argerror(L, 1, "option 'port' must be an integer in 0..65535");
      }
      lua_pop(L, 1);
    }
  }
  struct sockaddr_storage sa;
  const char *canon;
  if (!parse_host(host, (int)port, &sa, &canon))
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
  lr_server *s = server_start(host, (int)port, 0, err, sizeof err);
  if (!s) return luaL_error(L, "serve: %s", err);
  u->srv = s;
  snprintf(u->host, sizeof u->host, "%s", s->host);
  snprintf(u->url, sizeof u->url, "%s", s->url);
  u->port = s->port;
  return 1;
}

const luaL_Reg lr__server_funcs[] = {{"serve", l_serve}, {NULL, NULL}};

/* ---- lessonrun serve ----------------------------------------------------- */

static void serve_usage(FILE *f) {
  fprintf(f,
    "usage: lessonrun serve [--host H] [--port P]\n"
    "Runs the built-in latency server (httpbin-like) until Ctrl-C.\n"
    "  --host H   numeric address to bind (default 127.0.0.1; e.g. ::1, 0.0.0.0)\n"
    "  --port P   port, 0..65535 (default 0: any free port)\n"
    "  -h, --help show this help\n"
    "GET / on the server lists its endpoints.\n");
}

static int serve_fail(const char *msg, const char *what) {
  fprintf(stderr, "lessonrun serve: %s '%s'\n", msg, what);
  serve_usage(stderr);
  return 2;
}

/* The value of --name V or --name=V at argv[*i], or NULL if argv[*i] is not it. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *missing) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n) != 0) return NULL;
  if (a[n] == '=') return a + n + 1;
  if (a[n] != '\0') return NULL;
  if (*i + 1 >= argc) {
    *missing = 1;
    return NULL;
  }
  return argv[++*i];
}

int lr__serve_main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  uint64_t port = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    int missing = 0;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      serve_usage(stdout);
      return 0;
    }
    if ((v = option_value(argc, argv, &i, "--host", &missing))) {
      host = v;
    } else if ((v = option_value(argc, argv, &i, "--port", &missing))) {
      if (!parse_uint(v, 65535, &port))
        return serve_fail("port must be an integer in 0..65535, got", v);
    } else {
      return serve_fail(missing ? "missing value for" : "unknown argument", a);
    }
  }
  /* Block the stop signals before any thread exists, then wait for them
   * with sigwait: no handler, nothing unsafe done in signal context. */
  sigset_t stop_sigs;
  sigemptyset(&stop_sigs);
  sigaddset(&stop_sigs, SIGINT);
  sigaddset(&stop_sigs, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL) != 0) {
    fprintf(stderr, "lessonrun serve: cannot block signals\n");
    return 1;
  }
  char err[512];
  lr_server *s = server_start(host, (int)port, 1, err, sizeof err);
  if (!s) {
    struct sockaddr_storage sa;
    const char *canon;
    int bad_host = !parse_host(host, 0, &sa, &canon);
    fprintf(stderr, "lessonrun serve: %s\n", err);
    return bad_host ? 2 : 1;
  }
  printf("lessonrun: serving on %s (Ctrl-C to stop)\n", s->url);
  fflush(stdout);
  int sig = 0;
  while (sigwait(&stop_sigs, &sig) != 0) {}
  server_stop(s);
  return 0;
}
