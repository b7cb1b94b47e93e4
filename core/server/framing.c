/* Where a request's body ends must be certain before it is read: the
 * checks on its head that libmicrohttpd leaves to us. */
#include <string.h>
#include <strings.h>

#include "base/http_token.h"
#include "server/internal.h"

typedef struct {
  const char *cl;           /* the first Content-Length value */
  size_t cl_len;
  int cl_conflict, te;
  const char *te_value;     /* the first Transfer-Encoding value */
  const char *bad;          /* why a header line is malformed, or NULL */
  const char *prev_end;     /* end of the last line seen, in MHD's read buffer */
} framing;

/* Bytes MHD leaves between two parts of one request it parsed in place:
 * the NULs it wrote over separators and line ends, and whitespace.  Any
 * other byte there was cut off by a NUL byte the client sent. */
static int only_separators(const char *p, const char *end) {
  for (; p < end; p++)
    if (*p != '\0' && *p != ' ' && *p != '\t') return 0;
  return 1;
}

static enum MHD_Result see_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t klen, const char *value, size_t vlen) {
  (void)kind;
  framing *f = cls;
  if (!value) value = "";
  if (f->bad) return MHD_NO;
  for (size_t i = 0; i < klen; i++)
    if (!lr__http_tchar((unsigned char)key[i])) {
      f->bad = "a header name that is not a token (whitespace before the colon?)";
      return MHD_NO;
    }
  /* libmicrohttpd 0.9.75 parses each line in place (name, NUL over the
   * colon, whitespace, value) but appends an obs-fold continuation to the
   * name in a copy elsewhere: a name apart from its value was folded. */
  if (klen == 0 || value <= key + klen || key[klen] != '\0' ||
      !only_separators(key + klen + 1, value)) {
    f->bad = "a header folded over lines (obs-fold) or cut by a NUL byte";
    return MHD_NO;
  }
  if (f->prev_end && f->prev_end <= key && !only_separators(f->prev_end, key)) {
    f->bad = "a NUL byte in a header";
    return MHD_NO;
  }
  f->prev_end = value + vlen;
  if (klen == 14 && strncasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH, 14) == 0) {
    if (!f->cl) {
      f->cl = value;
      f->cl_len = vlen;
    } else if (f->cl_len != vlen || memcmp(f->cl, value, vlen) != 0) {
      f->cl_conflict = 1;
    }
  } else if (klen == 17 && strncasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING, 17) == 0) {
    if (!f->te++) f->te_value = value;
  }
  return MHD_YES;
}

/* Why a request cannot be taken as it came, or NULL, with the status to
 * answer in *code.  Where its body ends must be certain (RFC 9112 6.3):
 * libmicrohttpd takes the first of two Content-Length headers, Transfer-
 * Encoding over Content-Length, "Content-Length :" as some other header,
 * and an unknown transfer coding as "read until close", and the rest of a
 * body read by the other rule would become the next request (or hang).
 * A NUL byte (%00) in the path would cut it short for the routing, and a
 * raw NUL byte anywhere in the head cuts what libmicrohttpd hands us. */
const char *lr__refused(struct MHD_Connection *c, const lr_req *r, const char *method,
                        const char *version, unsigned *code) {
  framing f = {0};
  *code = MHD_HTTP_BAD_REQUEST;
  if (r->uri_end && version > r->uri_end && !only_separators(r->uri_end, version))
    return "a NUL byte in the request line";
  f.prev_end = version + strlen(version);
  MHD_get_connection_values_n(c, MHD_HEADER_KIND, see_framing, &f);
  if (f.bad) return f.bad;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
  if (ci && method + ci->header_size >= f.prev_end &&  /* after the last header line */
      !only_separators(f.prev_end, method + ci->header_size))
    return "a NUL byte in a header";
  if (f.cl_conflict) return "conflicting Content-Length headers";
  if (f.te && f.cl) return "Transfer-Encoding and Content-Length together";
  if (f.te > 1) return "more than one Transfer-Encoding header";
  if (f.te && strcasecmp(f.te_value, "chunked") != 0) {
    *code = MHD_HTTP_NOT_IMPLEMENTED;
    return "Transfer-Encoding other than chunked";
  }
  for (const char *p = r->uri; *p && *p != '?'; p++)
    if (p[0] == '%' && p[1] == '0' && p[2] == '0') return "a NUL byte (%00) in the path";
  return NULL;
}
