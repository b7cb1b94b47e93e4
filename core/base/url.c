/* URL parts (url.h): fetch reads a URL's host[:port], the error messages
 * find the user:password@ to hide. */
#include <string.h>

#include "base/url.h"

size_t lr__url_authority(const char *s, size_t n, size_t i, const char *stop, size_t *host) {
  size_t start = i;
  while (i < n && !strchr(stop, s[i])) i++;  /* (strchr finds the NUL too) */
  size_t at = i;
  while (at > start && s[at - 1] != '@') at--;
  *host = at;
  return i;
}
