/* Blocking calls (blocking_sleep, blocking_fetch) stop the loop.  That is
 * the lesson when nothing else is waiting (sync.lua), and a bug when other
 * tasks are: then we say so, once per call site, in words for a learner,
 * the way asyncio's debug mode reports slow callbacks. */
#include <stdio.h>

#include "prims/prims.h"

uint64_t lr__block_begin(lua_State *L, lr_runtime *rt, const lr_wait_kind *kind) {
  if (rt->trace) lr__trace(rt, LR_EV_BLOCK, lr__current(L), kind->id);
  return lr__now_ns(rt);
}

void lr__block_end(lua_State *L, lr_runtime *rt, const lr_wait_kind *kind, uint64_t began,
                   size_t ready_before) {
  if (rt->trace) lr__trace(rt, LR_EV_UNBLOCK, lr__current(L), kind->id);
  if (!rt->warn_blocking) return;
  /* held up: tasks that were ready, sleepers now due, transfers in flight */
  size_t held = ready_before + lr__overdue(rt) + rt->pending_io;
  double secs = (double)(lr__now_ns(rt) - began) / 1e9;
  if (held == 0 || secs < 0.1) return;  /* asyncio's slow-callback threshold */
  lua_Debug ar;
  char site[LUA_IDSIZE + 24] = "?";
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
      snprintf(site, sizeof site, "%s:%d", ar.short_src, ar.currentline);
      break;
    }
  }
  if (rt->warned_ref == LUA_NOREF) {
    lua_newtable(L);
    rt->warned_ref = lr__ref(L, rt);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->warned_ref);
  int seen = lua_getfield(L, -1, site) != LUA_TNIL;
  lua_pop(L, 1);
  if (!seen) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, site);
  }
  lua_pop(L, 1);
  if (seen) return;
  fprintf(stderr,
          "lessonrun: warning: %s at %s stopped the loop for %.2f s while %zu other task%s "
          "waited to run; use %s (its async twin) so they run meanwhile "
          "(--no-blocking-warnings hides this)\n",
          kind->name, site, secs, held, held == 1 ? "" : "s", kind->twin);
  fflush(stderr);
}

/* blocking_warnings([on]) -> whether they were on; turns them on or off */
/* the switch's argument: a boolean (nil reads as false, as lauxlib's optional
 * arguments do); 0, "no" or a table are mistakes, not "on" */
static int on_off(lua_State *L) {
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TBOOLEAN);
  return lua_toboolean(L, 1);
}

static int l_blocking_warnings(lua_State *L) {
  lr_runtime *rt = lr__runtime(L);
  lua_pushboolean(L, rt->warn_blocking);
  if (!lua_isnone(L, 1)) rt->warn_blocking = on_off(L);
  return 1;
}

/* pending_warnings([on]) -> whether they were on; the warning about tasks
 * still running when the script ends (and so cancelled) */
static int l_pending_warnings(lua_State *L) {
  lr_runtime *rt = lr__runtime(L);
  lua_pushboolean(L, rt->warn_pending);
  if (!lua_isnone(L, 1)) rt->warn_pending = on_off(L);
  return 1;
}

const luaL_Reg lr__warn_funcs[] = {
  {"blocking_warnings", l_blocking_warnings}, {"pending_warnings", l_pending_warnings}, {NULL, NULL}
};
