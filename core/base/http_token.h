/* RFC 9110 5.6.2: the characters of a token (a method, a header field's
 * name): visible ASCII but the delimiters "(),/:;<=>?@[\]{} and DQUOTE. */
#ifndef LR_HTTP_TOKEN_H
#define LR_HTTP_TOKEN_H

#include <string.h>

static inline int lr__http_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

#endif
