/* Whole numbers from text that a person typed: a URL's path, a command line. */
#include "base/base.h"

int lr__parse_uint(const char *p, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  if (!*p) return 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9') return 0;
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v > max) return 0;
  *out = v;
  return 1;
}
