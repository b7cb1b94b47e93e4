/* lr_buf: the core's one growable byte buffer.
 *
 * It may start in room inside its owner (a small result then costs no
 * malloc) and moves to the heap when it outgrows it; it may have a size
 * limit; its bytes are always followed by a NUL (so text in it is a C
 * string); and a failure is sticky: once an append failed (no memory, or
 * past the limit) every later one fails the same way, so a writer can append
 * blindly and look at b->err once at the end.  Nothing here aborts.
 *
 * Lifetime: the owner holds the lr_buf (by value) and calls lr__buf_free
 * once; the room, if any, must outlive it.  With no room, p is NULL or
 * malloc'd: the owner may hand p to anyone who will free() it (then it must
 * not call lr__buf_free).
 *
 * How each user of the old hand-written buffers takes it:
 *   fetch.c (body, hdrs): lr__buf_init(&f->body, f->body_room, sizeof f->body_room), b.max = max_body; lr__buf_add's LR_BUF_FULL is too_large, LR_BUF_NOMEM nomem; lr__buf_reset between redirects.
 *   offload.c (sbuf): lr_buf b = LR_BUF_INIT; sb_add(b, s, n) becomes lr__buf_add(&b, s, n) (-1 either way: OOM).
 *   json.c (append_text): hold's text/len/cap become an lr_buf; the callback returns lr__buf_add(&h->text, buf, size) ? -1 : 0.
 *   trace.c (events): e = (lr_event *)lr__buf_room(&rt->events, sizeof *e) then lr__buf_commit(.., sizeof *e) (malloc'd, so aligned); NULL stops tracing; count is len / sizeof *e.
 *   server (echo writer, request bodies): jw's buffer, and lr_req's body with max = MAX_BODY (LR_BUF_FULL is "too big"). */
#ifndef LR_BUF_H
#define LR_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { LR_BUF_NOMEM = -1, LR_BUF_FULL = -2 };  /* lr_buf.err, and what appends return */

typedef struct {
  char *p;        /* the bytes, p[len] == '\0'; NULL until the first append (no room) */
  size_t len;     /* bytes held */
  size_t cap;     /* bytes p can take, the NUL included */
  size_t max;     /* most bytes it may hold (SIZE_MAX: no limit) */
  int err;        /* 0, or the first failure (LR_BUF_NOMEM, LR_BUF_FULL): sticky */
  int heap;       /* p was malloc'd here; else it is the owner's room (or NULL) */
} lr_buf;

#define LR_BUF_INIT {NULL, 0, 0, SIZE_MAX, 0, 0}

/* Starts b in room[0..size) (size >= 1), or empty if room is NULL. */
static inline void lr__buf_init(lr_buf *b, char *room, size_t size) {
  *b = (lr_buf)LR_BUF_INIT;
  if (room) {
    b->p = room;
    b->cap = size;
    room[0] = '\0';
  }
}

/* The slow path of lr__buf_room (buf.c): grows p, doubling. */
char *lr__buf_grow(lr_buf *b, size_t n);

/* Room for n more bytes at the end (p + len), the NUL after them included;
 * the caller writes there, then calls lr__buf_commit.  NULL on failure
 * (b->err says which). */
static inline char *lr__buf_room(lr_buf *b, size_t n) {
  if (!b->err && n < b->cap - b->len && n <= b->max - b->len) return b->p + b->len;
  return lr__buf_grow(b, n);
}

/* Takes the n bytes written at lr__buf_room's pointer. */
static inline void lr__buf_commit(lr_buf *b, size_t n) {
  b->len += n;
  b->p[b->len] = '\0';
}

/* Appends s[0..n): 0, or LR_BUF_NOMEM / LR_BUF_FULL (b unchanged). */
static inline int lr__buf_add(lr_buf *b, const void *s, size_t n) {
  char *d = lr__buf_room(b, n);
  if (!d) return b->err;
  if (n) memcpy(d, s, n);
  lr__buf_commit(b, n);
  return 0;
}

/* Empties b (keeping its memory and limit) and clears its failure. */
static inline void lr__buf_reset(lr_buf *b) {
  b->len = 0;
  b->err = 0;
  if (b->p) b->p[0] = '\0';
}

/* Frees what b allocated; b is then empty (its room, if any, is not reused). */
void lr__buf_free(lr_buf *b);

#endif
