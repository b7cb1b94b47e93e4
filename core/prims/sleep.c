/* Time for Lua: sleep (the task waits, the loop runs), blocking_sleep (the
 * whole program stops) and now. */
#include <errno.h>
#include <math.h>
#include <time.h>

#include "prims/prims.h"

/* ---- Lua API -------------------------------------------------------------- */

static lua_Number check_seconds(lua_State *L, int arg, int allow_inf) {
  lua_Number s = luaL_checknumber(L, arg);
  if (s != s) luaL_argerror(L, arg, "seconds must be a number, got nan");
  if (s < 0) luaL_argerror(L, arg, lua_pushfstring(L, "seconds must be >= 0, got %f", s));
  if (!allow_inf && isinf(s)) luaL_argerror(L, arg, "seconds must be finite");
  return s;
}

static void sleep_cleanup(lr_runtime *rt, lr_task *t) { lr__timer_remove(rt, t); }

static lr_wait_kind sleep_kind = {"sleep", NULL, sleep_cleanup, 0};
static lr_wait_kind yield_kind = {"yield", NULL, NULL, 0};  /* sleep(0): only for the trace */
static lr_wait_kind blocking_sleep_kind = {"blocking_sleep", "sleep", NULL, 0};

void lr__sleep_open(void) {
  lr__wait_kind_register(&sleep_kind);
  lr__wait_kind_register(&yield_kind);
  lr__wait_kind_register(&blocking_sleep_kind);
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  lr_task *t = lr__current(L);
  lr__check_cancel(L, lr__runtime(L), t);
  return 0;
}

/* sleep(seconds): park the task until the time has passed.  sleep(0) just
 * lets every other ready task and the loop run once; sleep(math.huge) waits
 * until cancelled. */
static int l_sleep(lua_State *L) {
  lua_Number s = check_seconds(L, 1, 1);
  lr_runtime *rt = lr__runtime(L);
  int nres;
  lr_task *t = lr__wait_enter(L, rt, "sleep", l_sleep, lua_gettop(L), &nres);
  if (!t) return nres;
  lr__wait_yieldable(L, "sleep");
  if (s == 0) {
    /* back of the ready queue: the driver polls the loop before it gets there */
    if (rt->trace) lr__trace(rt, LR_EV_PARK, t, yield_kind.id);
    t->state = LR_WAITING;
    lr__wake(rt, t, LR_WAKE_OK);
    return lua_yieldk(L, 0, 0, sleep_k);
  }
  if (!isinf(s) && lr__timer_add(rt, t, s) != 0) return luaL_error(L, "sleep: not enough memory");
  return lr__park(L, rt, t, &sleep_kind, NULL, 0, sleep_k);
}

/* blocking_sleep(seconds): stop the whole program (every task, the loop) for
 * that long, like Python's time.sleep.  The lesson's "what not to do". */
static int l_blocking_sleep(lua_State *L) {
  lua_Number s = check_seconds(L, 1, 0);
  lr_runtime *rt = lr__runtime(L);
  size_t ready = rt->rq_len;
  uint64_t began = lr__block_begin(L, rt, &blocking_sleep_kind);
  if (rt->virtual_time) {
    rt->vnow = lr__after_seconds(rt->vnow, s);
    lr__block_end(L, rt, &blocking_sleep_kind, began, ready);
    return 0;
  }
  int seen = (int)lr__sigint_count;
  struct timespec ts, rem;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  if (s > 1e9) { ts.tv_sec = (time_t)1e9; ts.tv_nsec = 0; }
  while (nanosleep(&ts, &rem) != 0 && errno == EINTR) {
    if ((int)lr__sigint_count != seen) return lr__raise_interrupt(L, rt, 1);
    ts = rem;
  }
  lr__block_end(L, rt, &blocking_sleep_kind, began, ready);
  return 0;
}

/* now() -> seconds since the runtime started (monotonic, ns resolution) */
static int l_now(lua_State *L) {
  lr_runtime *rt = lr__runtime(L);
  lua_pushnumber(L, (lua_Number)(lr__now_ns(rt) - rt->t0) / 1e9);
  return 1;
}

const luaL_Reg lr__sleep_funcs[] = {
  {"sleep", l_sleep}, {"blocking_sleep", l_blocking_sleep}, {"now", l_now}, {NULL, NULL}
};
