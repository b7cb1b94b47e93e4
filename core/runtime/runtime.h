/* runtime: creating and closing the runtime, the driver loop, signals; calls sched and base. */
#ifndef LR_RUNTIME_H
#define LR_RUNTIME_H

#include "sched/sched.h"

/* runtime.c */
lr_runtime *lr__runtime(lua_State *L);      /* from upvalue 1 */
lr_runtime *lr__get_runtime(lua_State *L);  /* from the registry, creating it */
void lr__run_ready(lr_runtime *rt);
void lr__poll(lr_runtime *rt, int may_block);
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
extern volatile sig_atomic_t lr__sigint_count;

#endif
