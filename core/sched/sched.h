/* sched: tasks, their groups, the timer queue, the trace and error values; calls base only. */
#ifndef LR_SCHED_H
#define LR_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#include <lua.h>
#include <lauxlib.h>
#include <uv.h>

#include "lessonrun.h"
#include "base/base.h"
#include "base/buf.h"

#define LR_VERSION "0.1.0"

typedef struct lr_task lr_task;
typedef struct lr_runtime lr_runtime;
typedef struct lr_group lr_group;
typedef struct lr_watchers lr_watchers;

enum lr_task_state {
  LR_PENDING,   /* spawned, never run */
  LR_READY,     /* in the ready queue, will be resumed */
  LR_RUNNING,   /* its coroutine is executing now */
  LR_WAITING,   /* parked on a wait point (sleep, wait, ...) */
  LR_DONE,      /* returned; results kept on its dead coroutine's stack */
  LR_FAILED,    /* raised an error */
  LR_CANCELLED  /* ended by cancellation */
};

#define lr__finished(t) ((t)->state >= LR_DONE)

/* Trace events (trace.c); recorded only while rt->trace is set. */
enum lr_event_kind {
  LR_EV_SPAWN, LR_EV_RUN, LR_EV_STOP, LR_EV_PARK, LR_EV_WAKE, LR_EV_END,
  LR_EV_BLOCK, LR_EV_UNBLOCK
};

typedef struct {
  uint64_t t;       /* ns since the runtime started (virtual under --virtual-time) */
  uint32_t task;    /* task id */
  uint32_t aux;     /* SPAWN: parent id; PARK/BLOCK: lr_wait_kind id; END: state */
  uint8_t kind;
} lr_event;

/* Why a parked task was woken. */
enum lr_wake { LR_WAKE_OK, LR_WAKE_CANCEL, LR_WAKE_DEADLOCK };

/* A wait kind: what a parked task waits on (a sleep, a transfer, a
 * semaphore...), defined by the primitive that owns it and registered once
 * (lr__wait_kind_register, from its open function) before any task parks on
 * it.  The trace and the warnings take its name from here, and cancellation
 * and shutdown run its cleanup, so the scheduler never lists the primitives.
 * A task holds the kind as its small id (5 bits), not as a pointer. */
typedef void (*lr_cleanup_fn)(lr_runtime *rt, lr_task *t);
typedef struct lr_wait_kind {
  const char *name;       /* for the trace and the warnings: "sleep" */
  const char *twin;       /* a blocking call's async twin ("sleep"), else NULL */
  lr_cleanup_fn cleanup;  /* undoes whatever would wake the task (stop its
                           * timer, leave its group...); runs on cancel and on
                           * shutdown, never twice; NULL: nothing to undo */
  unsigned id;            /* set by lr__wait_kind_register; 0 = "not waiting" */
} lr_wait_kind;
#define LR_MAX_WAIT_KINDS 32

/* waits.c */
void lr__wait_kind_register(lr_wait_kind *k);   /* idempotent, thread-safe */
const lr_wait_kind *lr__wait_kind(unsigned id);  /* NULL for 0 or an unknown id */

/* A task waiting for tasks (gather, wait, timeout): woken when they have
 * all finished or, if failfast, when the first one fails.  It costs nothing
 * per child: each unfinished child points to the group (lr_task.watch) and
 * the group counts them.  When the waiter moves on (woken, cancelled, timed
 * out) it only lets go: the children still pointing to the group drop it as
 * they finish, and the last one frees it. */
struct lr_group {
  lr_task *waiter;        /* NULL once the waiter has let go */
  lr_task *first_failed;  /* the first child to fail, NULL if none yet */
  size_t pending;         /* unfinished children that point here */
  int failfast;
};

/* The groups waiting for one task, when there are several. */
struct lr_watchers {
  size_t n, cap;
  lr_group *group[];
};

/* A task is the biggest thing per task that we control: 40 bytes, so that
 * its handle (a userdata: 40-byte header, 1 uservalue, this) is 96 bytes, a
 * size class of alloc.c; 8 bytes more cost 16 a task.  Hence no pointer to
 * the runtime (every function that acts on a task is given it: C functions
 * find it in upvalue 1), no result count (a finished task's results are all
 * of its dead coroutine's stack), and bit fields. */
struct lr_task {
  lua_State *co;         /* the task's coroutine (uservalue 1 anchors it) */
  void *park_data;
  union {                /* who waits for this task to finish: */
    lr_group *one;       /* a group, or none */
    lr_watchers *many;   /* (many_watchers) several groups */
  } watch;
  int ref;               /* slot in the runtime's live array while unfinished */
  uint32_t heap_idx;     /* index in the sleep heap, or LR_NO_HEAP */
  uint64_t id : 48;      /* 2^48 spawns: 9 years at a million a second */
  uint64_t state : 3;    /* enum lr_task_state */
  uint64_t wake : 2;     /* enum lr_wake */
  uint64_t wait : 5;     /* the lr_wait_kind id parked on, 0 once its cleanup ran
                          * or the task runs again */
  uint64_t in_fifo : 1;  /* heap_idx is a position in the sleepers' FIFO lane */
  uint64_t cancel_requested : 1;
  uint64_t cancel_delivered : 1;
  uint64_t interrupted : 1;  /* ended by Ctrl-C */
  uint64_t many_watchers : 1;
};
#define LR_NO_HEAP UINT32_MAX

#define LR_MAX_CLOSERS 8

/* The ready queue and the sleepers' arrays double as they fill and, above
 * this size, halve when a quarter full and go when empty: memory follows a
 * burst of a million tasks down as it drains (the ready queue as the tasks
 * first run and the sleepers' ring fills), and none is left behind. */
#define LR_SHRINK_BYTES ((size_t)64 << 10)

typedef struct {
  uint64_t deadline;  /* ns, loop clock */
  uint64_t seq;       /* FIFO order among equal deadlines */
  lr_task *task;
} lr_sleeper;

/* In the FIFO lane the order is the position: no seq (8 bytes a sleeper). */
typedef struct {
  uint64_t deadline;
  lr_task *task;
} lr_fifo_sleeper;

/* The registry field that holds the runtime (a full userdata) */
#define LR_RUNTIME_KEY "lessonrun.runtime"

struct lr_runtime {
  uv_loop_t loop;
  lua_State *L;          /* main thread */
  int closed;
  int driving;           /* > 0 while a driver loop runs */
  int polling;           /* inside uv_run */
  lua_State *running;    /* coroutine being resumed now (for SIGINT hook) */
  lr_task *current;      /* task being resumed now */
  uint64_t next_id;
  uint64_t t0;           /* now() counts from here */
  size_t nlive;          /* unfinished tasks: live[1..nlive] */
  int live_ref;          /* registry ref of the live array */
  int task_mt_ref;       /* registry ref of the tasks' metatable, */
  const void *task_mt;   /* and its address: telling a task costs no name lookup */

  /* ready queue: ring buffer */
  lr_task **rq;
  size_t rq_head, rq_len, rq_cap;

  /* sleepers: one binary min-heap and one uv timer for all of them */
  lr_sleeper *heap;
  size_t heap_len, heap_cap;
  uint64_t heap_seq;
  uint64_t heap_max;     /* no deadline in the heap is later (while it is not empty) */
  /* sleepers whose deadlines came in order (every sleep of one duration):
   * a ring, O(1) in and out; fifo_base is the position of its head */
  lr_fifo_sleeper *fifo;
  size_t fifo_head, fifo_len, fifo_cap, fifo_dead;
  uint32_t fifo_base;
  uv_timer_t timer;
  uint64_t timer_armed;  /* deadline the timer is armed for, 0 = none */

  uv_async_t sigint_async;
  int sigint_handled;    /* SIGINT presses already acted upon */
  /* Set by the runtime when it is made (runtime/signals.c): hold 1 marks
   * the loop as driven and, for the first holder, installs the SIGINT
   * handler; hold 0 undoes one.  For code below the runtime that runs Lua
   * outside the driver (a report's __tostring), so it never calls up. */
  void (*drive_hold)(lr_runtime *rt, int hold);
  volatile int interrupted;  /* a SIGINT cancelled the root task */
  lr_task *root;         /* task Ctrl-C cancels, if any */

  /* subsystems' shutdown (runtime.c: lr__add_closer), last added first */
  struct lr_closer {
    void (*fn)(lr_runtime *rt, void *ud);
    void *ud;
  } closers[LR_MAX_CLOSERS];
  int nclosers;

  int cancel_ref;        /* the cancellation error object */

  /* tracing (trace.c) and the virtual clock (timerq.c) */
  int trace;
  lr_buf events;         /* lr_event[len / sizeof (lr_event)] */
  int trace_names_ref;   /* table: task id -> name */
  int virtual_time;
  uint64_t vnow;         /* the virtual clock, ns */

  /* blocking-call warnings (prims/warn.c, for blocking_sleep and blocking_fetch) */
  int warn_blocking;
  int warned_ref;        /* table: call site -> true */
  size_t pending_io;     /* I/O in flight that will wake a task (HTTP's
                          * transfers): tasks a blocking call holds up */
  int jobs;              /* offload jobs on the thread pool */
  long nrefs;            /* registry refs held (lr__ref/lr__unref) */

  void *http;            /* http/'s state (lr_http), made on its first use and
                          * freed by its closer, so startup stays cheap */
  void (*on_sigint)(lr_runtime *rt, void *ud);  /* REPL overrides */
  void *on_sigint_ud;

  /* failed tasks whose error nobody retrieved (failure.c), and exit (runtime.c) */
  size_t unobserved;     /* such tasks not reported yet */
  uint64_t nfailed, nfailed_collected;  /* failures; failures when last collected */
  uint64_t collect_after;  /* uv_hrtime() before which no idle collection runs */
  int warn_pending;      /* warn about tasks cancelled at exit */
  /* oom: memory ran out at shutdown, or the script ends for it (1; 2 while
   * its cancelled root waits at the head of the ready queue: task.c) */
  int shutting_down, oom;
  uint64_t oom_since;    /* first of the tasks failing for memory one after another */
  unsigned oom_streak;   /* how many */
  int root_state;        /* how the last root task ended */
  int nomem_ref;         /* "not enough memory", made while memory was there */
};

/* Registry references the C side holds, counted so that a debug build can
 * check none is left at shutdown (runtime.c). */
static inline int lr__counted_ref(lr_runtime *rt, int r) { rt->nrefs++; return r; }
/* counted once luaL_ref has returned: it raises when out of memory */
#define lr__ref(L, rt) lr__counted_ref((rt), luaL_ref((L), LUA_REGISTRYINDEX))
#define lr__unref(L, rt, r) \
  do { if ((r) >= 0) { (rt)->nrefs--; luaL_unref((L), LUA_REGISTRYINDEX, (r)); } } while (0)

/* The runtime, from upvalue 1: every C function of ours has it there. */
static inline lr_runtime *lr__runtime(lua_State *L) {
  return (lr_runtime *)lua_touserdata(L, lua_upvalueindex(1));
}

/* The task running on L, or NULL (a plain coroutine, the main thread):
 * each task's coroutine has its task in its extra space. */
static inline lr_task *lr__current(lua_State *L) {
  lr_task *t = *(lr_task **)lua_getextraspace(L);
  return (t && t->co == L) ? t : NULL;
}

/* Unfinished tasks are anchored in one Lua array, live[1..nlive], each
 * knowing its slot (t->ref); a task that finishes swaps the last one into
 * its slot.  The array is also how the runtime walks its unfinished tasks,
 * so a task needs no list links of its own.  Pushes t's handle, or nil once
 * it has finished. */
static inline void lr__push_task(lua_State *L, lr_runtime *rt, lr_task *t) {
  if (t->ref == LUA_NOREF) { lua_pushnil(L); return; }
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->live_ref);
  lua_rawgeti(L, -1, t->ref);
  lua_remove(L, -2);
}

/* The clock sleeps and now() count on, in ns: the loop's, or the virtual one */
static inline uint64_t lr__now_ns(lr_runtime *rt) {
  return rt->virtual_time ? rt->vnow : uv_hrtime();
}

/* "pending", "ready", ... for an enum lr_task_state (else "pending") */
static inline const char *lr__state_name(unsigned state) {
  static const char *const names[] = {
    "pending", "ready", "running", "waiting", "done", "failed", "cancelled"
  };
  return names[state < sizeof names / sizeof names[0] ? state : 0];
}

#define LR_TASK_MT "lessonrun.Task"

/* ready.c: the ready queue, and waking a parked task onto it */
/* Room in the ready queue for n tasks: 0, or -1 when out of memory.  A task
 * is in it at most once, and only while unfinished, so spawn makes room for
 * every live task and waking never has to grow it (where it could not fail). */
int lr__rq_reserve(lr_runtime *rt, size_t n);
void lr__rq_push(lr_runtime *rt, lr_task *t);
lr_task *lr__rq_pop(lr_runtime *rt);  /* rq_len > 0 */
void lr__wake(lr_runtime *rt, lr_task *t, int why);

/* task.c: creating, resuming, parking, cancelling and finishing tasks */
lr_task *lr__spawn(lua_State *L, lr_runtime *rt, int first, int nargs);
lr_task *lr__checktask(lua_State *L, int idx);
lr_task *lr__totask(lua_State *L, lr_runtime *rt, int idx);  /* the task at idx, or NULL */
lr_task *lr__live_at(lr_runtime *rt, size_t i);  /* 1 <= i <= rt->nlive */
int lr__park(lua_State *L, lr_runtime *rt, lr_task *t, const lr_wait_kind *kind,
             void *data, lua_KContext ctx, lua_KFunction k);
void lr__cleanup(lr_runtime *rt, lr_task *t);
/* Called on waking (and before waiting): raises if t was cancelled (or
 * deadlocked).  Cancellation is level-triggered: a cancelled task that
 * catches it gets it again at its next wait point.  A macro, so that rt is
 * only evaluated then (lr__runtime(L) is not free, and this is on every wake). */
#define lr__check_cancel(L, rt, t) \
  (((t)->cancel_requested || (t)->wake == LR_WAKE_DEADLOCK) ? lr__raise_wake_error((L), (rt), (t)) : 0)
int lr__raise_wake_error(lua_State *L, lr_runtime *rt, lr_task *t);
void lr__resume(lr_runtime *rt, lr_task *t);
int lr__cancel(lr_runtime *rt, lr_task *t);
int lr__push_results(lua_State *L, lr_task *t, int idx, int first_only);  /* idx: its handle */
void lr__task_open(lua_State *L, lr_runtime *rt);

/* names.c: what a task is called */
void lr__push_name(lua_State *L, lr_runtime *rt, lr_task *t, int idx);
void lr__push_label(lua_State *L, lr_runtime *rt, lr_task *t);  /* "task 'given'", else as push_name */
/* The extras of the task whose handle is at idx / of t: a table or nil
 * (made if create), pushed; returns its type */
int lr__push_extras_at(lua_State *L, int idx, int create);
void lr__push_extra(lua_State *L, lr_runtime *rt, lr_task *t, int create);
#define LR_WHERE_SIZE (LUA_IDSIZE + 16)
const char *lr__where_defined(const lua_Debug *ar, char *buf, size_t n);
void lr__names_open(lua_State *L);

/* failure.c: a failed task's traceback and error */
void lr__push_error(lua_State *L, lr_task *t);      /* t FAILED or CANCELLED */
void lr__push_traceback(lua_State *L, lr_task *t);  /* t FAILED or CANCELLED */
void lr__observe(lr_task *t);  /* its error was seen: no "nobody waited" report */
void lr__push_never_started(lua_State *L, lr_runtime *rt, lr_task *t);  /* never raises */
/* lua_CFunction(rt, t, failed): builds t's traceback on its coroutine and
 * returns the unobserved-error sentinel (failed) or nil */
int lr__precord(lua_State *L);
void lr__failure_open(lua_State *L);

/* group.c: a task waiting for tasks (lr_group) */
lr_group *lr__group_new(lua_State *L, const char *fname, lr_task *waiter, int failfast);
void lr__group_leave(lr_group *g);  /* the waiter lets go */
int lr__group_watch(lr_group *g, lr_task *c);  /* 0, or -1 out of memory */
void lr__group_watch_or_raise(lua_State *L, const char *fname, lr_group *g, lr_task *c);
/* Called by the waiter's continuation: let go of its group (t->park_data) if
 * the cleanup has not; returns the first child that failed (NULL if none, or
 * if abandoned). */
lr_task *lr__group_done(lr_task *t);
void lr__group_cleanup(lr_runtime *rt, lr_task *t);  /* a waiter's wait kind's cleanup */
void lr__notify_watchers(lr_runtime *rt, lr_task *t);  /* t finished */
void lr__drop_watchers(lr_task *t);  /* for the runtime's __gc: t will never finish */

/* timerq.c: the timer queue */
void lr__timers_init(lr_runtime *rt);
void lr__timers_close(lr_runtime *rt);
size_t lr__overdue(lr_runtime *rt);
int lr__timer_add(lr_runtime *rt, lr_task *t, lua_Number s);
void lr__timer_remove(lr_runtime *rt, lr_task *t);
int lr__virtual_advance(lr_runtime *rt);
void lr__set_virtual_time(lr_runtime *rt);

/* trace.c */
void lr__trace(lr_runtime *rt, int kind, lr_task *t, uint32_t aux);
void lr__trace_spawn(lua_State *L, lr_runtime *rt, lr_task *t, int first, int nargs);
void lr__trace_init(lr_runtime *rt);
void lr__trace_close(lr_runtime *rt);
extern const luaL_Reg lr__trace_funcs[];

/* errors.c */
void lr__push_cancel(lua_State *L, lr_runtime *rt);
int lr__is_cancel(lua_State *L, int idx);
extern const luaL_Reg lr__error_funcs[];

/* Ctrl-C stopped a call on L (the SIGINT hook, a blocking call): marks the
 * task running on L, if any, and the runtime as interrupted and raises the
 * cancellation error; unhook: remove the SIGINT handler's hook from L first
 * (this error is the interruption it was set for). */
int lr__raise_interrupt(lua_State *L, lr_runtime *rt, int unhook);
/* SIGINT presses so far: the runtime's handler counts them (signals.c); a
 * blocking call compares it with what it saw before. */
extern volatile sig_atomic_t lr__sigint_count;
void lr__push_errobj(lua_State *L, const char *kind, const char *msg);
/* Replaces the error value at idx by its text for the user and returns it:
 * never raises, and a __tostring that fails or waits gives a message instead
 * (as lua.c's msghandler, "(error object is a table value)") */
const char *lr__errtext(lua_State *L, int idx);
/* Raises "function expected, got nil; pass the function and its arguments:
 * f(g, a), not f(g(a))" when the value at arg is one a call could have
 * returned (nothing, nil, a boolean, number, string or table); else returns. */
void lr__function_expected(lua_State *L, int arg, const char *fname);
/* Pushes s[0..n) with each URL's user:password@ as user:***@ (user@ as ***@) */
const char *lr__push_redacted(lua_State *L, const char *s, size_t n);

#endif
