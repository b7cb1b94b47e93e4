/* The floor under the sleep benchmark: the time this machine takes to hand a
 * process N KiB of fresh memory (about what N bare Lua coroutines need: 928 B
 * each, plus their call frames), touched by two threads at once in memory
 * advised for huge pages, as lessonrun's allocator and its prefault helper
 * do.  No task runs; whatever lessonrun takes beyond this is its own.
 * Prints one RESULT line in the sleep benchmark's format.
 *   memfloor N */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct { char *p; size_t n; } span;

static void *touch(void *arg) {
  span *s = arg;
  for (size_t i = 0; i < s->n; i += 4096) s->p[i] = 1;
  return NULL;
}

static long peak_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return kb;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
  if (n <= 0) { fprintf(stderr, "usage: memfloor N\n"); return 2; }
  size_t huge = (size_t)2 << 20, bytes = ((size_t)n * 1024 + huge - 1) & ~(huge - 1);
  double t0 = now();
  char *raw = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) { perror("mmap"); return 1; }
  char *p = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
  madvise(p, bytes, MADV_HUGEPAGE);
  span a = { p, bytes / 2 }, b = { p + bytes / 2, bytes - bytes / 2 };
  pthread_t th;
  if (pthread_create(&th, NULL, touch, &b) != 0) { perror("pthread_create"); return 1; }
  touch(&a);
  pthread_join(th, NULL);
  double wall = now() - t0;
  printf("RESULT impl=memfloor n=%ld done=%ld wall=%.6f overhead=%.6f rss_kb=%ld\n", n, n, wall,
         wall, peak_rss_kb());
  return 0;
}
