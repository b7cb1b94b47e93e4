/* The ceiling for lessonrun's fetch design: plain C driving one libcurl multi
 * handle from libuv, the way curl's docs/examples/multi-uv.c does it (a
 * uv_poll_t per socket from CURLMOPT_SOCKETFUNCTION, one uv_timer_t from
 * CURLMOPT_TIMERFUNCTION, curl_multi_info_read drained after every
 * curl_multi_socket_action), with LIMIT easy handles kept in flight: when one
 * finishes it is taken out, its URL set again and it is added back (no Lua,
 * no per-request allocation, the body only counted).
 *
 *   cc -O2 -o ceiling bench/ceiling.c $(pkg-config --cflags --libs libuv libcurl)
 *   ./ceiling URL [N] [LIMIT]
 *
 * Prints  RESULT impl=ceiling n=N ok=K wall=S rps=R cpu=S rss_kb=KB  (ok:
 * transfers that ended with CURLE_OK, status 200 and the expected body
 * length; cpu: user + system time of the whole process, start-up included). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <uv.h>

typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
} sock_ctx;

typedef struct {
  CURL *easy;
  size_t got;  /* body bytes of the current transfer */
} slot;

static uv_loop_t *loop;
static uv_timer_t timer;
static CURLM *multi;
static const char *url;
static long n_total, started, finished, ok;
static long expect_len = -1;  /* the first good response's length */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  (void)p;
  ((slot *)ud)->got += size * n;
  return size * n;
}

static void start_one(slot *s) {
  s->got = 0;
  curl_easy_setopt(s->easy, CURLOPT_URL, url);
  if (curl_multi_add_handle(multi, s->easy) != CURLM_OK) {
    fprintf(stderr, "ceiling: curl_multi_add_handle failed\n");
    exit(1);
  }
  started++;
}

/* Drain finished transfers; reuse each handle for the next request.  Runs
 * after curl_multi_socket_action returned, never inside a curl callback. */
static void check_done(void) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *e = m->easy_handle;
    CURLcode res = m->data.result;
    slot *s = NULL;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (res == CURLE_OK && status == 200) {
      if (expect_len < 0) expect_len = (long)s->got;
      if ((long)s->got == expect_len) ok++;
    } else {
      fprintf(stderr, "ceiling: %s (status %ld)\n", curl_easy_strerror(res), status);
    }
    finished++;
    curl_multi_remove_handle(multi, e);
    if (started < n_total) start_one(s);
  }
  if (finished == n_total) uv_stop(loop);  /* idle cached connections stay open */
}

static void action(curl_socket_t fd, int flags) {
  int running;
  curl_multi_socket_action(multi, fd, flags, &running);
  check_done();
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_ctx *c = h->data;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  action(c->fd, flags);
}

static void on_timeout(uv_timer_t *t) {
  (void)t;
  action(CURL_SOCKET_TIMEOUT, 0);
}

static int on_timer(CURLM *m, long ms, void *ud) {
  (void)m; (void)ud;
  if (ms < 0) uv_timer_stop(&timer);
  else uv_timer_start(&timer, on_timeout, (uint64_t)ms, 0);  /* 0 ms: next loop pass */
  return 0;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp) {
  sock_ctx *c = sockp;
  (void)e; (void)ud;
  if (what == CURL_POLL_REMOVE) {
    if (c) {
      uv_poll_stop(&c->poll);
      uv_close((uv_handle_t *)&c->poll, on_closed);
      curl_multi_assign(multi, fd, NULL);
    }
    return 0;
  }
  if (!c) {
    c = malloc(sizeof *c);
    if (!c) return -1;
    c->fd = fd;
    if (uv_poll_init_socket(loop, &c->poll, fd) != 0) { free(c); return -1; }
    c->poll.data = c;
    curl_multi_assign(multi, fd, c);
  }
  int ev = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= UV_WRITABLE;
  return uv_poll_start(&c->poll, ev, on_poll) == 0 ? 0 : -1;
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, h->type == UV_POLL ? on_closed : NULL);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s URL [N] [LIMIT]\n", argv[0]);
    return 2;
  }
  url = argv[1];
  n_total = argc > 2 ? atol(argv[2]) : 10000;
  long limit = argc > 3 ? atol(argv[3]) : 100;
  if (n_total < 1 || limit < 1) return 2;
  if (limit > n_total) limit = n_total;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  loop = uv_default_loop();
  uv_timer_init(loop, &timer);
  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, limit);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, limit);

  slot *slots = calloc((size_t)limit, sizeof *slots);
  if (!slots) return 1;
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < limit; i++) {
    slots[i].easy = curl_easy_init();
    if (!slots[i].easy) return 1;
    curl_easy_setopt(slots[i].easy, CURLOPT_PRIVATE, (char *)&slots[i]);
    curl_easy_setopt(slots[i].easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(slots[i].easy, CURLOPT_WRITEDATA, &slots[i]);
    curl_easy_setopt(slots[i].easy, CURLOPT_NOSIGNAL, 1L);
    start_one(&slots[i]);
  }
  uv_run(loop, UV_RUN_DEFAULT);  /* until check_done stops it */
  double wall = (double)(uv_hrtime() - t0) / 1e9;

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  printf("RESULT impl=ceiling n=%ld ok=%ld wall=%.6f rps=%.1f cpu=%.3f rss_kb=%ld\n", finished, ok, wall,
         (double)finished / wall, cpu, ru.ru_maxrss);

  for (long i = 0; i < limit; i++) {
    curl_multi_remove_handle(multi, slots[i].easy);
    curl_easy_cleanup(slots[i].easy);
  }
  curl_multi_cleanup(multi);  /* closes the connections: on_socket(REMOVE) */
  uv_walk(loop, close_any, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  free(slots);
  curl_global_cleanup();
  return ok == n_total ? 0 : 1;
}
