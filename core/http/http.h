/* http: libcurl multi on the loop, fetch and blocking_fetch; calls prims and below.
 *
 * The files, one concern each: state.c (the state behind rt->http),
 * curl_uv.c (curl's multi on the loop), request.c (a request's options),
 * checks.c (its URL and headers), transfer.c (a transfer's buffers and
 * callbacks), deadline.c (a fetch's own timeout), pool.c (easy handles kept
 * for the next fetch), setup.c (a handle set up from the options),
 * failure.c (error kinds and the error raised), response.c (the response
 * object), fetch.c (the Lua functions). */
#ifndef LR_HTTP_H
#define LR_HTTP_H

#include "prims/prims.h"
#include "base/buf.h"
#include <curl/curl.h>  /* types only: a file that calls curl includes base/curl_api.h */

/* ---- state.c: HTTP's part of a runtime ---------------------------------- */

typedef struct lr_sock lr_sock;
typedef struct lr_http {
  lr_runtime *rt;
  CURLM *multi;            /* NULL until the first fetch starts curl */
  uv_timer_t curl_timer;   /* (initialised with the multi) */
  long max_connections, max_host_connections;  /* 0: the default, settled then */
  CURL *blocking_easy;     /* blocking_fetch's persistent handle */
  CURL **easy_pool;        /* pool.c: handles of finished fetches, reset, for the next ones */
  size_t easy_npool, easy_cappool;
  lr_sock *socks;          /* curl_uv.c: the sockets curl watches, a list */
} lr_http;

/* rt's HTTP state, made on first use (its closer added then: at shutdown it
 * frees the pool, the multi and the sockets, then the state itself in the
 * timer's close callback); NULL when out of memory */
lr_http *lr__http(lr_runtime *rt);

/* ---- curl_uv.c: libcurl multi driven by the loop ------------------------ */

typedef struct lr_transfer lr_transfer;
typedef void (*lr_transfer_done)(lr_transfer *x, int result);
/* Lifetime: the owner keeps it until done runs or lr__curl_remove returns */
struct lr_transfer {
  CURL *easy;
  lr_transfer_done done;
  void *data;
};
int lr__curl_init(lr_http *h, char *err, size_t errlen);  /* 0, or -1 and a message */
int lr__curl_add(lr_http *h, lr_transfer *x);
void lr__curl_remove(lr_http *h, lr_transfer *x);
void lr__curl_limits(lr_http *h);
void lr__curl_close(lr_http *h);  /* the closer's part: multi and sockets */
long lr__default_connections(void);

/* ---- request.c, checks.c: a request's options, checked before anything
 * is allocated ------------------------------------------------------------ */

#define LR_DEFAULT_MAX_BODY (64 * 1024 * 1024)

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
} lr_request;

/* Parses fetch(url, opts) at stack 1, 2, leaving the stack at 4 slots: 3
 * the headers table or nil, 4 the body (maybe a JSON encoding) or nil. */
void lr__parse_request(lua_State *L, const char *fname, lr_request *r, int check_only);
void lr__check_url(lua_State *L, lr_request *r);
void lr__check_headers(lua_State *L, lr_request *r, int idx);
int lr__same_authority(const char *url, const char *v, size_t vl);

/* ---- transfer.c, deadline.c: one transfer ------------------------------- */

struct lr_deadline;
/* Lifetime: fetch_new makes it, and whoever ends the fetch frees it with
 * lr__fetch_free (the task once resumed, its cleanup if cancelled, the
 * failed set-up); its deadline's timer outlives it until closed. */
typedef struct {
  lr_transfer x;       /* first: curl_uv.c hands it back */
  lr_http *http;       /* NULL for blocking_fetch: its handle is not pooled */
  lr_task *task;
  struct curl_slist *headers;
  lr_buf body, hdrs;   /* in the rooms below until they outgrow them; hdrs:
                        * "name\0value\0" pairs of the last response */
  curl_off_t max_body;
  int too_large;
  int nomem;           /* the body or the headers could not grow */
  int headers_done;    /* the blank line that ends the headers arrived */
  int result;          /* CURLcode */
  int finished;        /* the transfer ended, by itself or by its deadline */
  int removed;         /* taken out of the multi before it ended (its deadline) */
  struct lr_deadline *deadline;  /* fetch with a timeout: its own timer */
  char errbuf[CURL_ERROR_SIZE];
  /* where body and hdrs start: nginx's headers take ~130 bytes, and a
   * fetch_t of at most 1 KB stays in malloc's fastest bins */
  char body_room[256], hdrs_room[320];
} lr_fetch;

lr_fetch *lr__fetch_new(void);
void lr__fetch_free(lr_fetch *f);
size_t lr__on_body(char *ptr, size_t size, size_t n, void *ud);    /* CURLOPT_WRITEFUNCTION */
size_t lr__on_header(char *ptr, size_t size, size_t n, void *ud);  /* CURLOPT_HEADERFUNCTION */
int lr__deadline_start(lr_fetch *f, long ms);  /* 0, or -1: curl's timeout alone */
void lr__deadline_drop(lr_fetch *f);

/* ---- pool.c, setup.c: a handle set up for a request --------------------- */

CURL *lr__easy_get(lr_http *h);  /* NULL when out of memory */
void lr__easy_put(lr_http *h, CURL *e);
void lr__easy_pool_close(lr_http *h);
const char *lr__setup(lua_State *L, lr_fetch *f, lr_request *r);  /* NULL or a message */

/* ---- failure.c, response.c: how a transfer ends ------------------------- */

int lr__is_error_status(lr_fetch *f);
int lr__raise_failure(lua_State *L, lr_fetch *f, const char *fname, const char *url);
/* The response, or the error raised, for a transfer that is over; frees f */
int lr__finish(lua_State *L, lr_fetch *f, const char *fname, const char *url);
void lr__response_open(lua_State *L);

/* ---- fetch.c -------------------------------------------------------------- */
extern const luaL_Reg lr__fetch_funcs[];
void lr__fetch_open(lua_State *L);

#endif
