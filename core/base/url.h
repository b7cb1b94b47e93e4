/* base/url.h: where a URL's parts are (url.c). */
#ifndef LR_URL_H
#define LR_URL_H

#include <stddef.h>

/* What ends a URL's authority in the URL itself */
#define LR_URL_AUTHORITY_END "/?#"

/* The authority that starts at s[i] (just after "://"): returns where it
 * ends (the first NUL or byte of stop, or n) and sets *host to where its
 * host[:port] starts, after the last '@' of a user:password@ (i if none). */
size_t lr__url_authority(const char *s, size_t n, size_t i, const char *stop, size_t *host);

#endif
