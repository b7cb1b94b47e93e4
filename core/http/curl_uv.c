/* libcurl's multi interface on the libuv loop, after curl's multi-uv.c:
 * CURLMOPT_SOCKETFUNCTION maps CURL_POLL_* to one uv_poll_t per socket,
 * CURLMOPT_TIMERFUNCTION drives one uv_timer_t, and curl_multi_info_read is
 * drained after every curl_multi_socket_action.  Unlike the example, every
 * result is checked and finished transfers only wake their task (no Lua
 * runs here, and curl is never re-entered from its own callbacks). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>

#include "base/curl_api.h"

#include "lr.h"

#define SOCK_MAGIC 0x6c72736fu

typedef struct {
  uv_poll_t poll;
  unsigned magic;
  curl_socket_t fd;
  lr_runtime *rt;
} sock_ctx;

static void drain(lr_runtime *rt) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(rt->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *easy = m->easy_handle;
    CURLcode res = m->data.result;  /* read before the handle goes */
    lr_transfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(rt->multi, easy);
    rt->nfetch--;
    if (x && x->done) x->done(x, (int)res);
  }
}

static void action(lr_runtime *rt, curl_socket_t fd, int flags) {
  int running;
  CURLMcode rc = curl_multi_socket_action(rt->multi, fd, flags, &running);
  (void)rc;  /* per-transfer failures arrive through info_read */
  drain(rt);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_ctx *c = h->data;
  int flags = 0;
  /* on a socket error let curl read and write, so it finds out what
   * happened ("Connection reset by peer") rather than only that it did */
  if (status < 0) flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  action(c->rt, c->fd, flags);
}

static void on_sock_closed(uv_handle_t *h) {
  free(h->data);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  lr_runtime *rt = userp;
  sock_ctx *c = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (c) {
      uv_poll_stop(&c->poll);
      uv_close((uv_handle_t *)&c->poll, on_sock_closed);
      curl_multi_assign(rt->multi, fd, NULL);
    }
    return 0;
  }
  if (!c) {
    c = malloc(sizeof *c);
    if (!c) return -1;
    c->fd = fd;
    c->rt = rt;
    c->magic = SOCK_MAGIC;
    if (uv_poll_init_socket(&rt->loop, &c->poll, fd) != 0) {
      free(c);
      return -1;
    }
    c->poll.data = c;
    curl_multi_assign(rt->multi, fd, c);
  }
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
  return uv_poll_start(&c->poll, events, on_poll) == 0 ? 0 : -1;
}

static void on_timeout(uv_timer_t *h) {
  lr_runtime *rt = h->data;
  action(rt, CURL_SOCKET_TIMEOUT, 0);
  /* libuv counts whole milliseconds, curl microseconds (and rounds down):
   * the timer may fire just before curl's deadline, and curl, finding
   * nothing due and its nearest deadline unchanged, does not ask again.  So
   * ask it what is left. */
  long ms = -1;
  if (rt->multi && !uv_is_active((uv_handle_t *)h) && curl_multi_timeout(rt->multi, &ms) == CURLM_OK &&
      ms >= 0)
    uv_timer_start(h, on_timeout, (uint64_t)ms, 0);
}

/* curl asks for a timeout: -1 stops the timer, 0 means as soon as possible
 * (a 0 ms uv timer, the next loop pass: socket_action is never called from
 * inside this callback).  The loop's clock is brought up to date first, so
 * that a timer started late in a loop pass does not fire early. */
static int on_timer(CURLM *multi, long ms, void *userp) {
  lr_runtime *rt = userp;
  (void)multi;
  if (ms < 0) {
    uv_timer_stop(&rt->curl_timer);
  } else {
    uv_update_time(&rt->loop);
    uv_timer_start(&rt->curl_timer, on_timeout, (uint64_t)ms, 0);
  }
  return 0;
}

/* Descriptors open now: the entries of /proc/self/fd (less the one that
 * reads it), or, where it cannot be read (no /proc, or no descriptor left to
 * open it with), each number below the limit probed. */
static long open_fds(long limit) {
  DIR *d = opendir("/proc/self/fd");
  long n = 0;
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)))
      if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;
  }
  for (long fd = 0; fd < limit && fd < 65536; fd++)
    if (fcntl((int)fd, F_GETFD) != -1) n++;
  return n;
}

/* The default cap on connections: 256, but never more than a quarter of the
 * descriptors still free (the limit less those the runtime already holds:
 * the loop's, the multi's, a built-in server's), and at least 1, so that
 * many fetches at once queue in curl rather than fail for want of
 * descriptors (the built-in server, if it runs in this process, needs one
 * per connection too, and curl's resolver and closing connections more). */
long lr__default_connections(void) {
  struct rlimit rl;
  long n = 256;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    long limit = rl.rlim_cur > 1L << 30 ? 1L << 30 : (long)rl.rlim_cur;
    long avail = limit - open_fds(limit);
    if (avail / 4 < n) n = avail / 4;
  }
  return n < 1 ? 1 : n;
}

/* The runtime's closer, after transfers were removed: the multi closes its
 * cached connections, which calls on_socket(REMOVE). */
static void close_socks(uv_handle_t *h, void *arg) {
  (void)arg;
  sock_ctx *c = h->data;
  if (h->type == UV_POLL && c && c->magic == SOCK_MAGIC && !uv_is_closing(h)) {
    uv_poll_stop(&c->poll);
    uv_close(h, on_sock_closed);
  }
}

static void curl_close(lr_runtime *rt, void *ud) {
  (void)ud;
  if (!rt->curl_ready) return;
  curl_multi_cleanup(rt->multi);
  rt->multi = NULL;
  rt->curl_ready = 0;
  uv_walk(&rt->loop, close_socks, NULL);  /* sockets curl did not report closed */
}

int lr__curl_init(lr_runtime *rt, char *err, size_t errlen) {
  if (rt->curl_ready) return 0;
  if (lr__curl_load(err, errlen) != 0) return -1;
  CURLM *m = curl_multi_init();
  if (!m) snprintf(err, errlen, "curl_multi_init failed");
  if (!m) return -1;
  rt->multi = m;
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, rt);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, rt);
  curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  if (!rt->max_connections) rt->max_connections = lr__default_connections();
  lr__curl_limits(rt);
  uv_timer_init(&rt->loop, &rt->curl_timer);
  rt->curl_timer.data = rt;
  rt->curl_ready = 1;
  lr__add_closer(rt, curl_close, NULL);
  return 0;
}

void lr__curl_limits(lr_runtime *rt) {
  if (!rt->multi) return;
  curl_multi_setopt(rt->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, rt->max_connections);
  curl_multi_setopt(rt->multi, CURLMOPT_MAX_HOST_CONNECTIONS, rt->max_host_connections);
  curl_multi_setopt(rt->multi, CURLMOPT_MAXCONNECTS, rt->max_connections);
}

int lr__curl_add(lr_runtime *rt, lr_transfer *x) {
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
  if (curl_multi_add_handle(rt->multi, x->easy) != CURLM_OK) return -1;
  rt->nfetch++;
  return 0;
}

/* Cancelled or shut down while in flight: take it out of the multi. */
void lr__curl_remove(lr_runtime *rt, lr_transfer *x) {
  if (rt->multi && x->easy) {
    curl_multi_remove_handle(rt->multi, x->easy);
    rt->nfetch--;
  }
}
