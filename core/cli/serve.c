/* lessonrun serve: the latency server (server/) from the command line,
 * until SIGINT or SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "server/server.h"

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
      if (!lr__parse_uint(v, 65535, &port))
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
  lr_server *s = lr__server_start(host, (int)port, 1, err, sizeof err);
  if (!s) {
    fprintf(stderr, "lessonrun serve: %s\n", err);
    return lr__server_host_ok(host) ? 1 : 2;
  }
  printf("lessonrun: serving on %s (Ctrl-C to stop)\n", lr__server_url(s));
  fflush(stdout);
  int sig = 0;
  while (sigwait(&stop_sigs, &sig) != 0) {}
  lr__server_stop(s);
  return 0;
}
