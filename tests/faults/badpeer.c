/* badpeer: an HTTP peer on 127.0.0.1 that misbehaves on purpose, for the
 * fault tests (test_faults.lua, run by faults_test.sh).
 *
 *   badpeer            binds 127.0.0.1 on a free port, prints "PORT <n>"
 *
 * It reads each request up to its blank line and the Content-Length bytes
 * of body after it, takes the path from the request line and answers with
 * canned bytes:
 *
 *   /ok               200, "ok\n" (keep-alive)
 *   /never            reads the request, never answers, keeps the socket open
 *   /empty            reads the request, closes without a byte
 *   /close-status     part of the status line ("HTTP/1.1 20"), then close
 *   /close-headers    the status line and part of a header, then close
 *   /close-body       Content-Length: 1000, 100 bytes, then close
 *   /reset-body       the same, closed with SO_LINGER 0 (an RST)
 *   /long-body        Content-Length: 10, 50 bytes, then close
 *   /short-body       Content-Length: 100, 10 bytes, then close
 *   /bad-status       "HTXP/9 abc", then close
 *   /huge-headers     a valid status line and ~1 MB of header lines
 *   /chunked-forever  chunked, a chunk every 50 ms, never the last one
 *   /redirect-loop    302 to itself (keep-alive)
 *   /drip             Content-Length: 100, one byte every 100 ms
 *   /repeat-headers   200 with headers repeated, in mixed case (keep-alive)
 *   /echo             200, the whole request as it arrived (head and body) as
 *                     its body, X-Conn (the connection's number, from 1)
 *                     and X-Req (the request's on it, from 1); keep-alive
 *   /smuggled         418: what a request smuggled inside a body would get
 *   /redirect-file    302 to file:///etc/passwd (keep-alive)
 *   /redirect-ftp     302 to ftp://127.0.0.1/x (keep-alive)
 *   anything else     404 (keep-alive)
 *
 * It exits on SIGTERM or SIGINT, when its stdin closes (so it never outlives
 * the test that started it with a pipe there), and after 120 s at most.
 * One thread, poll(2), non-blocking sockets. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* accept4, memmem */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define MAX_REQUEST 16384
#ifndef LIFETIME_MS
#define LIFETIME_MS (120 * 1000)  /* never outlive a stuck test for long */
#endif

/* what a connection does once its pending output has been sent */
enum after { AFTER_READ, AFTER_CLOSE, AFTER_RESET, AFTER_HOLD, AFTER_TICK };
enum tick { TICK_NONE, TICK_CHUNK, TICK_DRIP };

typedef struct {
  int fd;
  char in[MAX_REQUEST];
  size_t inlen;
  char *out;            /* pending output, out[outoff..outlen) */
  size_t outlen, outoff, outcap;
  enum after after;
  enum tick tick;
  long left;            /* ticks still to send (TICK_DRIP) */
  long id, nreq;        /* the connection's number, requests read on it */
  long long next_tick;  /* ms, monotonic */
} conn;

static conn *conns[MAX_CONNS];
static int nconns;
static long nconns_ever;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void out_add(conn *c, const char *s, size_t n) {
  if (c->outlen + n > c->outcap) {
    size_t cap = c->outcap ? c->outcap : 4096;
    while (cap < c->outlen + n) cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p) die("realloc");
    c->out = p;
    c->outcap = cap;
  }
  memcpy(c->out + c->outlen, s, n);
  c->outlen += n;
}

static void out_str(conn *c, const char *s) { out_add(c, s, strlen(s)); }

static void conn_close(int i, int reset) {
  conn *c = conns[i];
  if (reset) {
    struct linger lg = {1, 0};  /* close() then sends an RST, not a FIN */
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(c->fd);
  free(c->out);
  free(c);
  conns[i] = conns[--nconns];
}

/* Queues the answer to the request for `path`; req[0..reqlen) is the whole
 * request, head and body. */
static void respond(conn *c, const char *path, const char *req, size_t reqlen) {
  char head[512];  /* path is < 256 bytes */
  c->after = AFTER_READ;
  c->tick = TICK_NONE;
  if (strcmp(path, "/ok") == 0) {
    out_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n");
  } else if (strcmp(path, "/never") == 0) {
    c->after = AFTER_HOLD;
  } else if (strcmp(path, "/empty") == 0) {
    c->after = AFTER_CLOSE;
  } else if (strcmp(path, "/close-status") == 0) {
    out_str(c, "HTTP/1.1 20");
    c->after = AFTER_CLOSE;
  } else if (strcmp(path, "/close-headers") == 0) {
    out_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/pl");
    c->after = AFTER_CLOSE;
  } else if (strcmp(path, "/close-body") == 0 || strcmp(path, "/reset-body") == 0) {
    out_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n");
    for (int i = 0; i < 10; i++) out_str(c, "0123456789");
    c->after = path[1] == 'r' ? AFTER_RESET : AFTER_CLOSE;
  } else if (strcmp(path, "/long-body") == 0) {
    out_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n");
    for (int i = 0; i < 5; i++) out_str(c, "0123456789");
    c->after = AFTER_CLOSE;
  } else if (strcmp(path, "/short-body") == 0) {
    out_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789");
    c->after = AFTER_CLOSE;
  } else if (strcmp(path, "/bad-status") == 0) {
    out_str(c, "HTXP/9 abc\r\n\r\n");
    c->after = AFTER_CLOSE;
  } else if (strcmp(path, "/huge-headers") == 0) {
    char line[128];
    out_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n");
    for (int i = 0; i < 10000; i++) {  /* 10,000 lines of 100 bytes */
      snprintf(line, sizeof line, "X-Pad-%05d: %-85s\r\n", i, "x");
      out_str(c, line);
    }
    out_str(c, "Content-Length: 3\r\n\r\nok\n");
    c->after = AFTER_CLOSE;
  } else if (strcmp(path, "/chunked-forever") == 0) {
    out_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");
    c->after = AFTER_TICK;
    c->tick = TICK_CHUNK;
    c->next_tick = now_ms() + 50;
  } else if (strcmp(path, "/redirect-loop") == 0) {
    out_str(c, "HTTP/1.1 302 Found\r\nLocation: /redirect-loop\r\nContent-Length: 0\r\n\r\n");
  } else if (strcmp(path, "/repeat-headers") == 0) {
    out_str(c, "HTTP/1.1 200 OK\r\nX-Dup: one\r\nContent-Type: text/plain\r\nx-dup: two\r\n"
               "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-DUP:   three  \r\nContent-Length: 3\r\n\r\nok\n");
  } else if (strcmp(path, "/echo") == 0) {
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Conn: %ld\r\n"
             "X-Req: %ld\r\nContent-Length: %zu\r\n\r\n", c->id, c->nreq, reqlen);
    out_str(c, head);
    out_add(c, req, reqlen);
  } else if (strcmp(path, "/smuggled") == 0) {
    out_str(c, "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 9\r\n\r\nsmuggled\n");
  } else if (strcmp(path, "/redirect-file") == 0 || strcmp(path, "/redirect-ftp") == 0) {
    snprintf(head, sizeof head, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n",
             path[10] == 'f' && path[11] == 'i' ? "file:///etc/passwd" : "ftp://127.0.0.1/x");
    out_str(c, head);
  } else if (strcmp(path, "/drip") == 0) {
    out_str(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n");
    c->after = AFTER_TICK;
    c->tick = TICK_DRIP;
    c->left = 100;
    c->next_tick = now_ms() + 100;
  } else {
    snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\n\r\n%s\n",
             strlen(path) + 1, path);
    out_str(c, head);
  }
}

/* The Content-Length of the request head in[0..n), or 0 */
static size_t content_length(const char *in, size_t n) {
  static const char name[] = "\r\ncontent-length:";
  for (size_t i = 0; i + sizeof name - 1 <= n; i++)
    if (strncasecmp(in + i, name, sizeof name - 1) == 0) return strtoul(in + i + sizeof name - 1, NULL, 10);
  return 0;
}

/* A complete request in c->in?  Answers it and drops it from the buffer.
 * (One at a time: curl does not pipeline, it waits for each answer.) */
static void take_request(conn *c) {
  char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
  if (!end) return;
  size_t used = (size_t)(end + 4 - c->in) + content_length(c->in, (size_t)(end - c->in));
  if (used > c->inlen) return;  /* the body is still coming (read_in gives up if it cannot fit) */
  char path[256] = "/";
  char *sp = memchr(c->in, ' ', (size_t)(end - c->in));
  if (sp) {
    size_t n = strcspn(sp + 1, " \r\n");
    if (n >= sizeof path) n = sizeof path - 1;
    memcpy(path, sp + 1, n);
    path[n] = '\0';
  }
  c->nreq++;
  respond(c, path, c->in, used);
  memmove(c->in, c->in + used, c->inlen - used);
  c->inlen -= used;
}

/* Sends what it can.  Returns -1 when the connection is gone (closed). */
static int flush_out(int i) {
  conn *c = conns[i];
  while (c->outoff < c->outlen) {
    ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n < 0) {
      conn_close(i, 0);
      return -1;
    }
    c->outoff += (size_t)n;
  }
  c->outoff = c->outlen = 0;
  if (c->after == AFTER_CLOSE || c->after == AFTER_RESET) {
    conn_close(i, c->after == AFTER_RESET);
    return -1;
  }
  return 0;
}

/* Reads what arrived.  Returns -1 when the peer closed (and so do we). */
static int read_in(int i) {
  conn *c = conns[i];
  char scratch[4096];
  for (;;) {
    /* once answering, keep reading only to notice the client leaving */
    int reading = c->after == AFTER_READ && c->outlen == 0;
    char *dst = reading ? c->in + c->inlen : scratch;
    size_t room = reading ? sizeof c->in - c->inlen : sizeof scratch;
    if (room == 0) {  /* a request too long for us: give up on it */
      conn_close(i, 0);
      return -1;
    }
    ssize_t n = recv(c->fd, dst, room, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n <= 0) {
      conn_close(i, 0);
      return -1;
    }
    if (reading) {
      c->inlen += (size_t)n;
      take_request(c);
    }
  }
}

static void tick(conn *c, long long now) {
  if (c->tick == TICK_CHUNK) {
    out_str(c, "5\r\nhello\r\n");
    c->next_tick = now + 50;
  } else if (c->tick == TICK_DRIP) {
    out_str(c, "x");
    c->next_tick = now + 100;
    if (--c->left == 0) {  /* the whole body: the next request may come */
      c->tick = TICK_NONE;
      c->after = AFTER_READ;
    }
  }
}

static void accept_all(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  /* EAGAIN, or a transient error: poll again */
    if (nconns == MAX_CONNS) {
      close(fd);
      continue;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) die("calloc");
    c->fd = fd;
    c->after = AFTER_READ;
    c->id = ++nconns_ever;
    conns[nconns++] = c;
  }
}

int main(void) {
  /* a shell may have started us with these ignored (`cmd &`); we want the
   * default: end the process */
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
  if (listen(lfd, 512) != 0) die("listen");
  if (getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) die("getsockname");
  printf("PORT %d\n", ntohs(a.sin_port));
  fflush(stdout);

  long long deadline = now_ms() + LIFETIME_MS;
  static struct pollfd pfd[MAX_CONNS + 2];
  int stdin_open = 1;
  for (;;) {
    long long now = now_ms();
    if (now >= deadline) break;
    for (int i = 0; i < nconns; i++) {
      conn *c = conns[i];
      if (c->after == AFTER_TICK && c->outlen == 0 && now >= c->next_tick) tick(c, now);
    }
    long long wait = deadline - now;
    int n = 0;
    pfd[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
    pfd[n++] = (struct pollfd){.fd = stdin_open ? 0 : -1, .events = POLLIN};
    for (int i = 0; i < nconns; i++) {
      conn *c = conns[i];
      short ev = POLLIN;
      if (c->outoff < c->outlen) ev |= POLLOUT;
      if (c->after == AFTER_TICK && c->outlen == 0 && c->next_tick - now < wait)
        wait = c->next_tick - now < 0 ? 0 : c->next_tick - now;
      pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
    }
    int rc = poll(pfd, (nfds_t)n, (int)wait);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) die("poll");
    if (pfd[1].revents) {  /* stdin: data is ignored, end of file ends us */
      char buf[256];
      ssize_t r = read(0, buf, sizeof buf);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) break;
    }
    /* connections first (their slots move when one closes), newest first */
    for (int k = n - 1; k >= 2; k--) {
      int i = k - 2;
      if (i >= nconns || conns[i]->fd != pfd[k].fd) continue;
      if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
        if (read_in(i) < 0) continue;
      flush_out(i);  /* also closes the ones whose answer is complete */
    }
    if (pfd[0].revents & POLLIN) accept_all(lfd);
  }
  while (nconns > 0) conn_close(nconns - 1, 0);
  close(lfd);
  return 0;
}
