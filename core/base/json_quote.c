/* UTF-8 checks and JSON string quoting without jansson: the server's echo
 * must show any bytes as JSON (invalid UTF-8 as U+FFFD) where jansson would
 * refuse the string, and json.c names the byte jansson refused. */
#include <string.h>

#include "base/base.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0: no
 * overlongs, no surrogates, nothing past U+10FFFF. */
size_t lr__utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;  /* bounds of the second byte */
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return len;
}

char *lr__utf8_put(char *d, unsigned long cp) {
  if (cp < 0x80) {
    *d++ = (char)cp;
  } else if (cp < 0x800) {
    *d++ = (char)(0xC0 | (cp >> 6));
    *d++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *d++ = (char)(0xE0 | (cp >> 12));
    *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *d++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *d++ = (char)(0xF0 | (cp >> 18));
    *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *d++ = (char)(0x80 | (cp & 0x3F));
  }
  return d;
}

/* Writes s[0..n) as a quoted JSON string to dst (room for
 * LR_JSON_QUOTE_MAX(n) bytes) and returns its length.  Invalid UTF-8 becomes
 * U+FFFD when replace is set; otherwise it returns 0 with its offset in *bad. */
size_t lr__json_quote(char *dst, const char *s, size_t n, int replace, size_t *bad) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  char *d = dst;
  *d++ = '"';
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    if (c >= 0x80) {
      size_t len = lr__utf8_len(p + i, n - i);
      if (len == 0) {
        if (!replace) {
          if (bad) *bad = i;
          return 0;
        }
        d = lr__utf8_put(d, 0xFFFD);
        i++;
        continue;
      }
      memcpy(d, p + i, len);
      d += len;
      i += len;
      continue;
    }
    i++;
    if (c == '"' || c == '\\') {
      *d++ = '\\';
      *d++ = (char)c;
    } else if (c >= 0x20) {
      *d++ = (char)c;
    } else {
      *d++ = '\\';
      switch (c) {
        case '\b': *d++ = 'b'; break;
        case '\f': *d++ = 'f'; break;
        case '\n': *d++ = 'n'; break;
        case '\r': *d++ = 'r'; break;
        case '\t': *d++ = 't'; break;
        default:
          memcpy(d, "u00", 3);
          d[3] = hex[c >> 4];
          d[4] = hex[c & 15];
          d += 5;
      }
    }
  }
  *d++ = '"';
  return (size_t)(d - dst);
}
