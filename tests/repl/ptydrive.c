/* ptydrive: run a command in a pseudo-terminal and follow a script of steps,
 * so the REPL can be tested the way a person uses it (line editing, Ctrl-C,
 * Ctrl-D), with no expect/tcl dependency.
 *
 *   ptydrive STEPS-FILE -- command [args...]
 *
 * Steps, one per line ('#' starts a comment line, blank lines are skipped):
 *   send TEXT      write TEXT to the terminal (\n \r \t \\ \xHH escapes)
 *   expect TEXT    wait until TEXT appears in the output after the previous
 *                  match (same escapes); fails showing what was seen
 *   reject TEXT    fail if TEXT appeared anywhere in the output so far
 *   sleep MS       wait (output is still collected)
 *   timeout MS     time limit for the following expect/exitcode steps
 *   exitcode N     wait for the command to exit with status N
 * Exit status: 0 when every step passed, 1 otherwise (the command is killed);
 * 77 (ctest's SKIP_RETURN_CODE) where there are no pseudo-terminals, with the
 * reason on stderr and, when LR_SKIPPED_LOG names a file, appended to it as
 * "$LR_TEST_NAME: reason" (ctest shows skipped tests without their output).
 * PTYDRIVE_VERBOSE=1 in the environment prints the whole transcript at the end.
 */
#define _XOPEN_SOURCE 600  /* posix_openpt, grantpt, unlockpt, ptsname */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int master = -1;
static pid_t child = -1;
static int child_status = -1;  /* set once reaped */
static char *out;              /* everything the command printed */
static size_t out_len, out_cap, mark;  /* mark: end of the previous match */
static int timeout_ms = 5000;
static int lineno;

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Print s with control bytes made visible, so a failure shows what came. */
static void show(FILE *f, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n') fputs("\\n\n", f);
    else if (c == '\r') fputs("\\r", f);
    else if (c == '\\') fputs("\\\\", f);
    else if (c < 32 || c == 127) fprintf(f, "\\x%02x", c);
    else fputc(c, f);
  }
}

static void reap(int block) {
  if (child_status >= 0 || child < 0) return;
  int st;
  pid_t r = waitpid(child, &st, block ? 0 : WNOHANG);
  if (r == child) child_status = st;
}

static void fail(const char *fmt, const char *arg) {
  fprintf(stderr, "ptydrive: step at line %d: ", lineno);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n--- output since the previous match ---\n");
  show(stderr, out + mark, out_len - mark);
  fprintf(stderr, "\n--- end ---\n");
  if (child > 0 && child_status < 0) {
    kill(child, SIGKILL);
    reap(1);
  }
  exit(1);
}

/* Read whatever the command printed within wait_ms.  Returns 1 when it read
 * something, -1 when nothing came, 0 at EOF (the terminal closed: the
 * command and its children are gone). */
static int pump(int wait_ms) {
  struct pollfd p = { master, POLLIN, 0 };
  int r = poll(&p, 1, wait_ms);
  if (r < 0 && errno != EINTR) { perror("poll"); exit(1); }
  if (r <= 0) return -1;
  char buf[4096];
  ssize_t n = read(master, buf, sizeof buf);
  if (n <= 0) return 0;  /* EIO on Linux once the slave side has closed */
  if (out_len + (size_t)n + 1 > out_cap) {
    out_cap = (out_len + (size_t)n + 1) * 2;
    out = realloc(out, out_cap);
    if (!out) { perror("realloc"); exit(1); }
  }
  memcpy(out + out_len, buf, (size_t)n);
  out_len += (size_t)n;
  out[out_len] = '\0';
  return 1;
}

/* Decode escapes in place; returns the decoded length. */
static size_t unescape(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (*r != '\\' || !r[1]) { *w++ = *r; continue; }
    r++;
    switch (*r) {
      case 'n': *w++ = '\n'; break;
      case 'r': *w++ = '\r'; break;
      case 't': *w++ = '\t'; break;
      case 'x': {
        char hex[3] = { r[1], r[1] ? r[2] : 0, 0 };
        *w++ = (char)strtol(hex, NULL, 16);
        r += 2;
        break;
      }
      default: *w++ = *r; break;
    }
  }
  *w = '\0';
  return (size_t)(w - s);
}

static const char *find(const char *text, size_t n) {
  if (n == 0) return out + mark;
  return memmem(out + mark, out_len - mark, text, n);
}

static void step_expect(char *text) {
  char *shown = strdup(text);  /* as written in the steps, for messages */
  size_t n = unescape(text);
  long deadline = now_ms() + timeout_ms;
  int open = 1;
  for (;;) {
    const char *at = out ? find(text, n) : NULL;
    if (at) { mark = (size_t)(at - out) + n; free(shown); return; }
    long left = deadline - now_ms();
    if (left <= 0) fail("timed out waiting for \"%s\"", shown);
    if (!open) fail("the command closed the terminal before printing \"%s\"", shown);
    open = pump((int)left) != 0;
  }
}

static void step_reject(char *text) {
  char *shown = strdup(text);
  size_t n = unescape(text);
  while (pump(0) > 0) {}  /* what is already there */
  if (out && n > 0 && memmem(out, out_len, text, n)) fail("unexpected \"%s\"", shown);
  free(shown);
}

static void step_send(char *text) {
  size_t n = unescape(text);
  while (n > 0) {
    ssize_t w = write(master, text, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("cannot write to the terminal (%s)", strerror(errno));
    }
    text += w;
    n -= (size_t)w;
  }
}

static void step_sleep(int ms) {
  long deadline = now_ms() + ms;
  for (long left; (left = deadline - now_ms()) > 0;)
    if (pump((int)left) == 0) { usleep((useconds_t)left * 1000); break; }
}

static void step_exitcode(int want) {
  long deadline = now_ms() + timeout_ms;
  char msg[128];
  for (;;) {
    reap(0);
    if (child_status >= 0) break;
    if (now_ms() >= deadline) {
      snprintf(msg, sizeof msg, "%d", want);
      fail("timed out waiting for the command to exit with %s", msg);
    }
    if (pump(50) == 0) usleep(20000);
  }
  while (pump(0) > 0) {}  /* what it printed last */
  if (WIFSIGNALED(child_status)) {
    snprintf(msg, sizeof msg, "killed by signal %d, expected exit %d", WTERMSIG(child_status), want);
    fail("%s", msg);
  }
  if (WEXITSTATUS(child_status) != want) {
    snprintf(msg, sizeof msg, "exit status %d, expected %d", WEXITSTATUS(child_status), want);
    fail("%s", msg);
  }
}

/* Opens a pseudo-terminal pair the way forkpty will; returns 0, or -1 with
 * the step that failed and why in buf ("posix_openpt: No such device"). */
static int pty_probe(char *buf, size_t n) {
  const char *step = "posix_openpt", *name;
  int m = posix_openpt(O_RDWR | O_NOCTTY), s;
  if (m < 0) goto fail;
  step = "grantpt";
  if (grantpt(m) != 0) goto fail;
  step = "unlockpt";
  if (unlockpt(m) != 0) goto fail;
  step = "ptsname";
  if (!(name = ptsname(m))) goto fail;
  step = name;  /* opening the terminal side itself (/dev/pts/N) */
  if ((s = open(name, O_RDWR | O_NOCTTY)) < 0) goto fail;
  close(s);
  close(m);
  return 0;
fail:
  snprintf(buf, n, "%s: %s", step, strerror(errno));
  if (m >= 0) close(m);
  return -1;
}

/* No pseudo-terminals here (a chroot or container without /dev/pts): say
 * why where ctest's summary will show it, and skip. */
static int skip(const char *why) {
  const char *test = getenv("LR_TEST_NAME"), *log = getenv("LR_SKIPPED_LOG");
  fprintf(stderr, "ptydrive: skipped: no pseudo-terminal (%s)\n", why);
  if (log && log[0]) {
    FILE *f = fopen(log, "a");
    if (f) {
      fprintf(f, "  %s: skipped: no pseudo-terminal (%s)\n", test ? test : "ptydrive", why);
      fclose(f);
    }
  }
  return 77;
}

int main(int argc, char **argv) {
  if (argc < 4 || strcmp(argv[2], "--") != 0) {
    fprintf(stderr, "usage: ptydrive STEPS-FILE -- command [args...]\n");
    return 2;
  }
  FILE *steps = fopen(argv[1], "r");
  if (!steps) { perror(argv[1]); return 2; }
  /* a plain terminal: no colours, no bracketed-paste sequences */
  setenv("TERM", "dumb", 1);
  struct winsize ws = { 24, 80, 0, 0 };
  char why[256];
  if (pty_probe(why, sizeof why) != 0) return skip(why);
  child = forkpty(&master, NULL, NULL, &ws);
  if (child < 0) {  /* the probe had one: this is not a missing feature */
    perror("forkpty");
    return 2;
  }
  if (child == 0) {
    signal(SIGINT, SIG_DFL);
    execvp(argv[3], argv + 3);
    fprintf(stderr, "ptydrive: cannot run %s: %s\n", argv[3], strerror(errno));
    _exit(127);
  }
  char line[4096];
  while (fgets(line, sizeof line, steps)) {
    lineno++;
    line[strcspn(line, "\n")] = '\0';
    char *arg = strchr(line, ' ');
    if (arg) *arg++ = '\0';
    else arg = line + strlen(line);
    if (line[0] == '#' || line[0] == '\0') continue;
    if (strcmp(line, "send") == 0) step_send(arg);
    else if (strcmp(line, "expect") == 0) step_expect(arg);
    else if (strcmp(line, "reject") == 0) step_reject(arg);
    else if (strcmp(line, "sleep") == 0) step_sleep(atoi(arg));
    else if (strcmp(line, "timeout") == 0) timeout_ms = atoi(arg);
    else if (strcmp(line, "exitcode") == 0) step_exitcode(atoi(arg));
    else fail("unknown step \"%s\"", line);
  }
  fclose(steps);
  if (getenv("PTYDRIVE_VERBOSE")) {  /* the whole transcript, for debugging */
    fputs("--- transcript ---\n", stderr);
    show(stderr, out ? out : "", out_len);
    fputs("\n--- end ---\n", stderr);
  }
  if (child_status < 0) {  /* the script did not wait for it: do not leave it */
    kill(child, SIGKILL);
    reap(1);
  }
  free(out);
  return 0;
}
