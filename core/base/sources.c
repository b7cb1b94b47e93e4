/* Which sources are lessonrun's own Lua files (built in, or a copy on disk):
 * tracebacks and warnings leave their frames out and name the user's line. */
#include <string.h>

#include "base/base.h"

int lr__our_source(const char *src, size_t len) {
  if (len > 0 && (src[0] == '@' || src[0] == '=')) src++, len--;
  for (const lr_embedded *e = lr__embedded; e->name; e++) {
    size_t k = strlen(e->chunkname + 1);  /* "lessonrun/api.lua", its "@" left out */
    const char *tail = src + len - k;
    if (len >= k && memcmp(tail, e->chunkname + 1, k) == 0 && (len == k || tail[-1] == '/' || tail[-1] == '.'))
      return 1;
  }
  return 0;
}
