/* runtime: creating and closing the runtime, the driver loop, signals; calls sched and base. */
#ifndef LR_RUNTIME_H
#define LR_RUNTIME_H

#include "sched/sched.h"

/* runtime.c */
lr_runtime *lr__get_runtime(lua_State *L);  /* from the registry, creating it */
void lr__run_ready(lr_runtime *rt);
void lr__poll(lr_runtime *rt, int may_block);
#define LR_STEP_READY 1  /* run the tasks that are ready now */
#define LR_STEP_POLL 2   /* then run the loop once, blocking if none is */
/* One round of the driver, as lr__run_until makes them: the ready tasks,
 * then the loop, unless until (may be NULL) has finished by then. */
void lr__step(lr_runtime *rt, int what, lr_task *until);
int lr__run_until(lr_runtime *rt, lr_task *t);
void lr__shutdown_tasks(lr_runtime *rt);
void lr__collect_unobserved(lr_runtime *rt);  /* report failed tasks now garbage */
/* A subsystem that holds C resources (loop handles, a curl multi) adds its
 * closer when it starts, so the runtime never names it: the runtime's __gc
 * runs each closer once, last added first, after every parked task's cleanup
 * and before closing whatever handles are left and then the loop. */
void lr__add_closer(lr_runtime *rt, void (*fn)(lr_runtime *rt, void *ud), void *ud);

/* signals.c */
void lr__sigint_install(lr_runtime *rt);
void lr__sigint_restore(lr_runtime *rt);
void lr__drive_hold(lr_runtime *rt, int hold);  /* rt->drive_hold (sched.h) */

/* host.c: the runtime as an executable drives it between its own reads
 * (the REPL); the executable sets no field of it. */
/* Runs inside the loop (from the SIGINT async callback), never in the
 * signal handler: it may cancel tasks but must not run Lua. */
typedef void (*lr_host_sigint)(lr_runtime *rt, void *ud);
/* Ctrl-C calls on_sigint(rt, ud) until lr__host_end, instead of cancelling
 * the root task; the host drives the loop with lr__host_step meanwhile. */
void lr__host_begin(lr_runtime *rt, lr_host_sigint on_sigint, void *ud);
/* Ctrl-C as before begin, then the tasks left are cancelled, as after a
 * script (lr__shutdown_tasks). */
void lr__host_end(lr_runtime *rt);
/* lr__step, protected: LUA_OK, or a status with the error on top of
 * rt->L's stack. */
int lr__host_step(lr_runtime *rt, int what, lr_task *until);
size_t lr__host_ready(lr_runtime *rt);  /* tasks ready to run */
/* t stands for the script while it runs: Ctrl-C and running out of memory
 * end it as they end a script (begin may be called again, for the next). */
void lr__host_root_begin(lr_runtime *rt, lr_task *t);
/* no root task; its interruption and the Ctrl-C presses so far forgotten */
void lr__host_root_end(lr_runtime *rt);
void lr__host_sigint_forget(lr_runtime *rt);  /* the presses so far count as dealt with */
void lr__host_interrupt(lr_runtime *rt, lr_task *t);    /* cancel t as Ctrl-C does */
int lr__host_interrupted(lr_runtime *rt, lr_task *t);   /* t (or the root) was ended by Ctrl-C */
/* A poll handle of the host's on the runtime's loop (uv_poll_init's
 * result); lr__host_close closes it before returning, so h may then go. */
int lr__host_poll_init(lr_runtime *rt, uv_poll_t *h, int fd);
void lr__host_close(lr_runtime *rt, uv_handle_t *h);
/* Set before the first task runs: the timeline's recording, the warnings
 * when a blocking call holds up other tasks (on by default), the simulated
 * clock (for good). */
void lr__host_set_trace(lr_runtime *rt, int on);
void lr__host_set_blocking_warnings(lr_runtime *rt, int on);
void lr__host_set_virtual_time(lr_runtime *rt);

#endif
