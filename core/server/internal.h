/* The latency server's parts, shared between its files (server.h is what
 * the other layers see).
 *
 * Threads: libmicrohttpd runs the HTTP side in its own polling thread
 * (epoll), and a second thread runs a private libuv loop that owns the
 * timers of /delay (delays.c).  A delayed request is suspended in the MHD
 * thread and handed over through a mutex-protected queue and a uv_async_t;
 * the uv thread keeps the delays in a heap by due time and one timerfd armed
 * for the earliest, and resumes each when it is due.  So a delay costs a
 * heap entry, never a thread or a sleep, and a blocking Lua script (the main
 * thread) cannot stall the server.  A timerfd rather than uv timers: those
 * count whole milliseconds from a truncated clock and fire late by a part of
 * one, which a lesson's rounds of /delay add up; the timerfd is armed for
 * the nanosecond the request arrived plus its delay.
 *
 * Lifetimes: the server (lr_server) is made by lr__server_start and freed by
 * lr__server_stop (start.c); a request's state (lr_req) belongs to the MHD
 * thread, created in the URI callback and freed in the completed callback
 * (routes.c); a delay (lr_delay) belongs to the uv thread from the moment it
 * is queued and is freed right after its connection has been resumed,
 * exactly once.  Stopping resumes every suspended connection before
 * MHD_stop_daemon, which MHD requires. */
#ifndef LR_SERVER_INTERNAL_H
#define LR_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "base/mhd_api.h"
#include "server/server.h"

#define MAX_DELAY_S 60.0
#define MAX_BYTES (100u * 1024 * 1024)
#define MAX_REDIRECTS 100
#define MAX_BODY (1u * 1024 * 1024)   /* what /anything keeps of a body */
#define CONNECTION_LIMIT 20000
#define HOST_MAX 64                   /* longest numeric IPv6 text is 45 */

typedef struct lr_delay lr_delay;

struct lr_server {
  struct MHD_Daemon *mhd;
  uv_loop_t loop;
  uv_async_t async;         /* wakes the uv thread: new delays, or stop */
  int tfd;                  /* timerfd, armed for the earliest delay (uv thread) */
  uv_poll_t tpoll;
  lr_delay **heap;          /* delays by due time (uv thread) */
  size_t heap_len, heap_cap;
  pthread_t thread;         /* the uv thread */
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

/* delays.c: the uv thread and its timers */
int lr__delays_open(lr_server *s);   /* its loop and handles: 0 or a uv error (nothing left open) */
void lr__delays_close(lr_server *s); /* closes them when the thread never ran */
void *lr__delays_main(void *arg);    /* the thread: runs the loop until stopped */
int lr__delays_stop(lr_server *s);   /* resumes every delay, joins the thread: 0 or -1 (left) */
/* queues c's resumption at due (uv_hrtime) and suspends c: 0, -1 if stopping, -2 out of memory */
int lr__delays_add(lr_server *s, struct MHD_Connection *c, uint64_t due);
int lr__delays_stopping(lr_server *s);

/* echo.c: responses, and the JSON echo writer (written here rather than
 * through jansson: what the echo shows may hold invalid UTF-8, shown as
 * U+FFFD, which jansson refuses).  A failed allocation marks the writer
 * failed (its buffer's err); sending it then answers 500. */
typedef struct {
  lr_buf b;                 /* no room: its p is malloc'd, handed to MHD */
  int indent;
  int first;                /* no member yet in the innermost object or list */
} lr_jw;

#define LR_JW_INIT {LR_BUF_INIT, 0, 0}

void lr__jw_raw(lr_jw *w, const char *s, size_t n);
void lr__jw_open(lr_jw *w, char bracket);
void lr__jw_close(lr_jw *w, char bracket);
void lr__jw_key(lr_jw *w, const char *k, size_t n);
void lr__jw_kstr(lr_jw *w, const char *k, const char *v);
void lr__jw_values(lr_jw *w, struct MHD_Connection *c, enum MHD_ValueKind kind);

enum MHD_Result lr__send_response(struct MHD_Connection *c, unsigned status,
                                  struct MHD_Response *resp, const char *ctype);
enum MHD_Result lr__send_text(struct MHD_Connection *c, unsigned status, const char *text);
/* sends w's text (and frees it), with one extra header if name is not NULL */
enum MHD_Result lr__send_json(struct MHD_Connection *c, unsigned status, lr_jw *w,
                              const char *name, const char *value);
lr_jw lr__error_json(const char *msg);  /* {"error": msg} */
enum MHD_Result lr__send_error(struct MHD_Connection *c, unsigned status, const char *msg);
/* {"args", "headers", "origin", "url", "method"} and, with_data, the body as "data" */
enum MHD_Result lr__send_echo(lr_server *s, struct MHD_Connection *c, lr_req *r,
                              const char *method, int with_data);

/* framing.c: why a request cannot be taken as it came (NULL if it can), with
 * the status to answer in *code */
const char *lr__refused(struct MHD_Connection *c, const lr_req *r, const char *method,
                        const char *version, unsigned *code);

/* routes.c: MHD's callbacks */
enum MHD_Result lr__on_request(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **req_cls);
void *lr__on_uri(void *cls, const char *uri, struct MHD_Connection *c);
void lr__on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                      enum MHD_RequestTerminationCode toe);

#endif
