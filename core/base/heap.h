/* The core's one binary min-heap, as typed static inline functions.
 *
 *   LR_HEAP_DEFINE(name, T, before, moved)
 *
 * defines, over an array a of n elements of type T whose storage the caller
 * owns and grows (so each user keeps its own growth and shrink policy):
 *
 *   static inline void   name_up(T *a, size_t i);            a[i] may be before its parent
 *   static inline size_t name_down(T *a, size_t n, size_t i); a[i] may be after a child; its new index
 *   static inline void   name_push(T *a, size_t *n, T v);    a must have room for *n + 1
 *   static inline void   name_remove(T *a, size_t *n, size_t i);  drops a[i] (read it first)
 *
 * a[0] is the least; pop is `top = a[0]; name_remove(a, &n, 0)`.
 * before(const T *x, const T *y) says x goes first (a strict order: add a
 * sequence number to break ties if equal keys must leave in the order they
 * came); moved(T *a, size_t i) is called after a[i] was written, to keep a
 * back-index in the element (LR_HEAP_UNTRACKED if none).  Both may be
 * macros or static functions: they are expanded or inlined at every step,
 * no comparator through a pointer.
 *
 * The server's delays (server/delays.c): T = lr_delay *, before compares
 * due, moved is LR_HEAP_UNTRACKED.
 * The timer queue (sched/timers.c) adopts it unchanged in behaviour with
 *   #define SLEEPER_BEFORE(x, y) ((x)->deadline < (y)->deadline || ((x)->deadline == (y)->deadline && (x)->seq < (y)->seq))
 *   #define SLEEPER_MOVED(a, i) ((a)[i].task->heap_idx = (uint32_t)(i))
 *   LR_HEAP_DEFINE(sleepers, lr_sleeper, SLEEPER_BEFORE, SLEEPER_MOVED)
 * heap_up/heap_down become sleepers_up/sleepers_down(rt->heap, rt->heap_len, i); lr__timer_add
 * grows rt->heap as today then calls sleepers_push(rt->heap, &rt->heap_len, e); heap_remove
 * sets the leaver's heap_idx to LR_NO_HEAP, calls sleepers_remove(rt->heap, &rt->heap_len, i)
 * and keeps its own shrink-when-empty (heap_max, LR_SHRINK_BYTES) around it. */
#ifndef LR_HEAP_H
#define LR_HEAP_H

#include <stddef.h>

#define LR_HEAP_UNTRACKED(a, i) ((void)0)

#define LR_HEAP_DEFINE(name, T, before, moved)                                   \
  static inline void name##_up(T *a, size_t i) {                                 \
    T v = a[i];                                                                  \
    while (i > 0) {                                                              \
      size_t p = (i - 1) / 2;                                                    \
      if (!before(&v, &a[p])) break;                                             \
      a[i] = a[p];                                                               \
      moved(a, i);                                                               \
      i = p;                                                                     \
    }                                                                            \
    a[i] = v;                                                                    \
    moved(a, i);                                                                 \
  }                                                                              \
                                                                                 \
  static inline size_t name##_down(T *a, size_t n, size_t i) {                   \
    T v = a[i];                                                                  \
    for (;;) {                                                                   \
      size_t c = 2 * i + 1;                                                      \
      if (c >= n) break;                                                         \
      if (c + 1 < n && before(&a[c + 1], &a[c])) c++;                            \
      if (!before(&a[c], &v)) break;                                             \
      a[i] = a[c];                                                               \
      moved(a, i);                                                               \
      i = c;                                                                     \
    }                                                                            \
    a[i] = v;                                                                    \
    moved(a, i);                                                                 \
    return i;                                                                    \
  }                                                                              \
                                                                                 \
  static inline void name##_push(T *a, size_t *n, T v) {                         \
    a[*n] = v;                                                                   \
    name##_up(a, (*n)++);                                                        \
  }                                                                              \
                                                                                 \
  static inline void name##_remove(T *a, size_t *n, size_t i) {                  \
    if (i == --*n) return;                                                       \
    a[i] = a[*n];                                                                \
    if (name##_down(a, *n, i) == i) name##_up(a, i);                             \
  }

#endif
