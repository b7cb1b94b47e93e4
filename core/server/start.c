/* Starting and stopping a server: its uv thread (delays.c), then MHD on the
 * address asked for. */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/thread.h"
#include "server/internal.h"

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

int lr__server_host_ok(const char *host) {
  struct sockaddr_storage sa;
  const char *canon;
  return parse_host(host, 0, &sa, &canon) != 0;
}

const char *lr__server_url(const lr_server *s) { return s->url; }

/* A lesson's 1,000 concurrent requests need 2,000 descriptors in this
 * process (both ends): lift the soft limit to the hard one. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);  /* best effort: the old limit still works */
  }
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

static void server_free(lr_server *s) {
  uv_mutex_destroy(&s->mu);
  if (s->tfd >= 0) close(s->tfd);
  free(s->heap);
  free(s);
}

void lr__server_stop(lr_server *s) {
  if (lr__delays_stop(s) != 0) {
    /* cannot happen with libuv >= 1.x; leaking beats hanging or crashing */
    fprintf(stderr, "lessonrun: the server's timer thread did not stop; leaving it\n");
    return;
  }
  MHD_stop_daemon(s->mhd);  /* nothing is suspended any more */
  server_free(s);
}

/* Starts MHD on sa: 0, or -1 with the reason in err (s->mhd may then be
 * set, with no port). */
static int listen_on(lr_server *s, int family, const struct sockaddr_storage *sa, int port,
                     char *err, size_t errlen) {
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                   MHD_USE_ERROR_LOG | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
  lr_sigmask m;
  lr__sigmask_block_all(&m);  /* MHD's polling thread takes no signals either */
  atomic_store(&s->capturing, 1);
  s->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, lr__on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                            MHD_OPTION_URI_LOG_CALLBACK, lr__on_uri, s,
                            MHD_OPTION_NOTIFY_COMPLETED, lr__on_completed, s,
                            MHD_OPTION_END);
  atomic_store(&s->capturing, 0);
  lr__sigmask_restore(&m);
  const union MHD_DaemonInfo *info =
      s->mhd ? MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  if (!s->mhd || !info || info->port == 0) {
    size_t n = strlen(s->err);
    while (n && (s->err[n - 1] == '\n' || s->err[n - 1] == '.')) s->err[--n] = '\0';
    snprintf(err, errlen, "cannot listen on %s port %d%s%s%s", s->host, port, n ? " (" : "",
             s->err, n ? ")" : "");
    return -1;
  }
  s->port = info->port;
  const char *l = family == AF_INET6 ? "[" : "", *r = family == AF_INET6 ? "]" : "";
  snprintf(s->hostport, sizeof s->hostport, "%s%s%s:%u", l, s->host, r, s->port);
  snprintf(s->url, sizeof s->url, "http://%s", s->hostport);
  return 0;
}

lr_server *lr__server_start(const char *host, int port, int verbose, char *err, size_t errlen) {
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
  int rc;
  if (uv_mutex_init(&s->mu) != 0) {
    snprintf(err, errlen, "cannot create a mutex");
    goto fail_mutex;
  }
  s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (s->tfd < 0) {
    snprintf(err, errlen, "cannot create a timer: %s", strerror(errno));
    goto fail_free;
  }
  if ((rc = lr__delays_open(s)) != 0) {
    snprintf(err, errlen, "cannot create the timer loop: %s", uv_strerror(rc));
    goto fail_free;
  }
  raise_fd_limit();
  if ((rc = lr__thread_create_masked(&s->thread, lr__delays_main, s)) != 0) {
    snprintf(err, errlen, "cannot start the timer thread: %s", uv_strerror(-rc));
    goto fail_thread;
  }
  if (listen_on(s, family, &sa, port, err, errlen) != 0) goto fail_listen;
  return s;

fail_listen:
  if (s->mhd) {
    lr__server_stop(s);
    return NULL;
  }
  if (lr__delays_stop(s) != 0) return NULL;  /* cannot happen: leaking beats hanging */
  goto fail_free;
fail_thread:
  lr__delays_close(s);
fail_free:
  server_free(s);
  return NULL;
fail_mutex:
  free(s);
  return NULL;
}
