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
#include "http/http.h"

/* A socket curl asked us to watch.  Lifetime: made by on_socket, on h's
 * list until curl removes the socket or the multi goes (then unlinked and
 * closed), freed in its close callback. */
struct lr_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  lr_http *h;
  lr_sock *next, **prevp;  /* h->socks */
};

static void drain(lr_http *h) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(h->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *easy = m->easy_handle;
    CURLcode res = m->data.result;  /* read before the handle goes */
    lr_transfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(h->multi, easy);
    h->rt->pending_io--;
    if (x && x->done) x->done(x, (int)res);
  }
}

static void action(lr_http *h, curl_socket_t fd, int flags) {
  int running;
  CURLMcode rc = curl_multi_socket_action(h->multi, fd, flags, &running);
  (void)rc;  /* per-transfer failures arrive through info_read */
  drain(h);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  lr_sock *c = p->data;
  int flags = 0;
  /* on a socket error let curl read and write, so it finds out what
   * happened ("Connection reset by peer") rather than only that it did */
  if (status < 0) flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  action(c->h, c->fd, flags);
}

static void on_sock_closed(uv_handle_t *p) {
  free(p->data);
}

static void sock_close(lr_sock *c) {
  *c->prevp = c->next;
  if (c->next) c->next->prevp = c->prevp;
  uv_poll_stop(&c->poll);
  uv_close((uv_handle_t *)&c->poll, on_sock_closed);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  lr_http *h = userp;
  lr_sock *c = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (c) {
      sock_close(c);
      curl_multi_assign(h->multi, fd, NULL);
    }
    return 0;
  }
  if (!c) {
    c = malloc(sizeof *c);
    if (!c) return -1;
    c->fd = fd;
    c->h = h;
    if (uv_poll_init_socket(&h->rt->loop, &c->poll, fd) != 0) {
      free(c);
      return -1;
    }
    c->poll.data = c;
    c->next = h->socks;
    c->prevp = &h->socks;
    if (h->socks) h->socks->prevp = &c->next;
    h->socks = c;
    curl_multi_assign(h->multi, fd, c);
  }
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
  return uv_poll_start(&c->poll, events, on_poll) == 0 ? 0 : -1;
}

static void on_timeout(uv_timer_t *t) {
  lr_http *h = t->data;
  action(h, CURL_SOCKET_TIMEOUT, 0);
  /* libuv counts whole milliseconds, curl microseconds (and rounds down):
   * the timer may fire just before curl's deadline, and curl, finding
   * nothing due and its nearest deadline unchanged, does not ask again.  So
   * ask it what is left. */
  long ms = -1;
  if (h->multi && !uv_is_active((uv_handle_t *)t) && curl_multi_timeout(h->multi, &ms) == CURLM_OK &&
      ms >= 0)
    uv_timer_start(t, on_timeout, (uint64_t)ms, 0);
}

/* curl asks for a timeout: -1 stops the timer, 0 means as soon as possible
 * (a 0 ms uv timer, the next loop pass: socket_action is never called from
 * inside this callback).  The loop's clock is brought up to date first, so
 * that a timer started late in a loop pass does not fire early. */
static int on_timer(CURLM *multi, long ms, void *userp) {
  lr_http *h = userp;
  (void)multi;
  if (ms < 0) {
    uv_timer_stop(&h->curl_timer);
  } else {
    uv_update_time(&h->rt->loop);
    uv_timer_start(&h->curl_timer, on_timeout, (uint64_t)ms, 0);
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

/* The closer's part (state.c), after transfers were removed: the multi
 * closes its cached connections, which calls on_socket(REMOVE); the
 * sockets it did not report closed are closed here. */
void lr__curl_close(lr_http *h) {
  if (!h->multi) return;
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  while (h->socks) sock_close(h->socks);
}

int lr__curl_init(lr_http *h, char *err, size_t errlen) {
  if (h->multi) return 0;
  if (lr__curl_load(err, errlen) != 0) return -1;
  CURLM *m = curl_multi_init();
  if (!m) snprintf(err, errlen, "curl_multi_init failed");
  if (!m) return -1;
  h->multi = m;
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, h);
  curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  if (!h->max_connections) h->max_connections = lr__default_connections();
  lr__curl_limits(h);
  uv_timer_init(&h->rt->loop, &h->curl_timer);
  h->curl_timer.data = h;
  return 0;
}

void lr__curl_limits(lr_http *h) {
  if (!h->multi) return;
  curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, h->max_connections);
  curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, h->max_host_connections);
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, h->max_connections);
}

int lr__curl_add(lr_http *h, lr_transfer *x) {
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
  if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) return -1;
  h->rt->pending_io++;
  return 0;
}

/* Cancelled or shut down while in flight: take it out of the multi. */
void lr__curl_remove(lr_http *h, lr_transfer *x) {
  if (h->multi && x->easy) {
    curl_multi_remove_handle(h->multi, x->easy);
    h->rt->pending_io--;
  }
}
