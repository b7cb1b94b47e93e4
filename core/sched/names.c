/* What a task is called: the name given with task:name(s), else one made
 * from its function ("task #3 (async.lua:4)"), and the rare per-task extras
 * that hold the given name. */
#include <stdio.h>
#include <string.h>

#include "sched/sched.h"

/* The rare extras (a given name, the re-raised child) live in a weak-keyed
 * registry table, task -> table, rather than in a second uservalue that
 * every task would pay 16 bytes for. */
#define EXTRAS_KEY "lessonrun.task_extras"

/* Pushes the extras table of the task at idx, or nil (creating it if asked). */
int lr__push_extras_at(lua_State *L, int idx, int create) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, LUA_REGISTRYINDEX, EXTRAS_KEY);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) != LUA_TTABLE && create) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
  return lua_type(L, -1);
}

void lr__push_extra(lua_State *L, lr_runtime *rt, lr_task *t, int create) {
  lr__push_task(L, rt, t);
  lr__push_extras_at(L, -1, create);
  lua_remove(L, -2);
}

/* "x.lua:4" for a function defined there, "x.lua" for a main chunk, else
 * "" (a C function): from debug info with 'S'. */
const char *lr__where_defined(const lua_Debug *ar, char *buf, size_t n) {
  if (ar->linedefined > 0) snprintf(buf, n, "%s:%d", ar->short_src, ar->linedefined);
  else if (ar->what && strcmp(ar->what, "main") == 0) snprintf(buf, n, "%s", ar->short_src);
  else if (n) buf[0] = '\0';
  return buf;
}

/* "task #3 (x.lua:4)", or "task #3" when the debug info says nowhere */
static void push_numbered(lua_State *L, lr_task *t, const lua_Debug *ar) {
  char where[LR_WHERE_SIZE];
  if (ar && lr__where_defined(ar, where, sizeof where)[0])
    lua_pushfstring(L, "task #%I (%s)", (lua_Integer)t->id, where);
  else
    lua_pushfstring(L, "task #%I", (lua_Integer)t->id);
}

/* The deepest level of co's stack.  lua_getstack(co, n) walks n frames, so
 * probing each level in turn is quadratic in the depth: search instead, as
 * lauxlib's traceback does. */
static int bottom_level(lua_State *co) {
  lua_Debug ar;
  int lo = 0, hi = 1;
  if (!lua_getstack(co, 0, &ar)) return 0;
  while (lua_getstack(co, hi, &ar)) {
    lo = hi;
    if (hi > INT32_MAX / 2) return lo;
    hi *= 2;
  }
  while (hi - lo > 1) {  /* level lo exists, level hi does not */
    int mid = lo + (hi - lo) / 2;
    if (lua_getstack(co, mid, &ar)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* Pushes the name given with task:name(s), else one made from the task's
 * function ("task #3 (async.lua:4)"), when it can still be found.  idx is the
 * task's handle on L's stack, or 0 when it is not at hand. */
void lr__push_name(lua_State *L, lr_runtime *rt, lr_task *t, int idx) {
  int top = lua_gettop(L);
  if (idx) lua_pushvalue(L, idx);
  else lr__push_task(L, rt, t);
  if (lua_type(L, -1) == LUA_TUSERDATA && lr__push_extras_at(L, -1, 0) == LUA_TTABLE &&
      lua_getfield(L, -1, "name") == LUA_TSTRING) {
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return;
  }
  lua_settop(L, top);
  lua_State *co = t->co;
  lua_Debug ar;
  if (!co) {  /* returned: its coroutine is gone (keep_results) */
    push_numbered(L, t, NULL);
  } else if (t->state == LR_PENDING && lua_gettop(co) > 0) {
    lua_pushvalue(co, 1);
    lua_xmove(co, L, 1);
    push_numbered(L, t, lua_getinfo(L, ">S", &ar) ? &ar : NULL);
  } else {  /* a started task: its function is the bottom frame of its stack */
    push_numbered(L, t, lua_getstack(co, bottom_level(co), &ar) && lua_getinfo(co, "S", &ar) ? &ar : NULL);
  }
}

/* "task #3 (x.lua:4)", or "task 'fetcher' (x.lua:4)" for a named one: for
 * reports, where a bare given name could read as part of the message. */
void lr__push_label(lua_State *L, lr_runtime *rt, lr_task *t) {
  int top = lua_gettop(L);
  lr__push_task(L, rt, t);
  if (lua_type(L, -1) == LUA_TUSERDATA && lr__push_extras_at(L, -1, 0) == LUA_TTABLE &&
      lua_getfield(L, -1, "name") == LUA_TSTRING) {
    lua_pushfstring(L, "task '%s'", lua_tostring(L, -1));
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return;
  }
  lua_settop(L, top);
  lr__push_name(L, rt, t, 0);
}

void lr__names_open(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, EXTRAS_KEY) != LUA_TTABLE) {
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_pushvalue(L, -1);
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, EXTRAS_KEY);
  }
  lua_pop(L, 1);
}
