/* The task API: spawn, current, the task's methods (t:cancel(), t:name(),
 * ...) and the counts the tests read. */
#include "prims/prims.h"

/* task:cancelling() -> true once cancel() was called on it */
static int t_cancelling(lua_State *L) {
  lua_pushboolean(L, lr__checktask(L, 1)->cancel_requested);
  return 1;
}

static int t_state(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  lua_pushstring(L, lr__state_name(t->state));
  return 1;
}

static int t_done(lua_State *L) {
  lua_pushboolean(L, lr__finished(lr__checktask(L, 1)));
  return 1;
}

static int t_cancel(lua_State *L) {
  lua_pushboolean(L, lr__cancel(lr__runtime(L), lr__checktask(L, 1)));
  return 1;
}

/* task:result() -> results if done; raises its error if it failed; an error
 * if it has not finished (use wait to wait). */
static int t_result(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  if (!lr__finished(t)) return luaL_error(L, "result: %s has not finished (use wait)", lr__state_name(t->state));
  return lr__wait_finished(L, t);
}

/* task:error() -> the error value of a failed/cancelled task, or nil */
static int t_error(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  if (t->state == LR_FAILED || t->state == LR_CANCELLED) lr__push_error(L, t);
  else lua_pushnil(L);
  return 1;
}

static int t_traceback(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  if (t->state == LR_FAILED || t->state == LR_CANCELLED) lr__push_traceback(L, t);
  else lua_pushnil(L);
  return 1;
}

/* task:name() -> its name; task:name(s) sets it and returns the task */
static int t_name(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lr__push_name(L, lr__runtime(L), t, 1);
    return 1;
  }
  luaL_checkstring(L, 2);
  lr__push_extras_at(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "name");
  lua_settop(L, 1);
  return 1;
}

static int t_tostring(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  lr__push_name(L, lr__runtime(L), t, 1);
  lua_pushfstring(L, "%s [%s]", lua_tostring(L, -1), lr__state_name(t->state));
  return 1;
}

static int t_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lr__checktask(L, 1)->id);
  return 1;
}

static const luaL_Reg task_methods[] = {
  {"wait", lr__task_wait}, {"cancel", t_cancel}, {"state", t_state}, {"done", t_done},
  {"result", t_result}, {"error", t_error}, {"traceback", t_traceback},
  {"name", t_name}, {"id", t_id}, {"cancelling", t_cancelling}, {NULL, NULL}
};

/* spawn(fn, ...) -> task */
static int l_spawn(lua_State *L) {
  if (lua_type(L, 1) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, 1, "__call") == LUA_TNIL) {
      lr__function_expected(L, 1, "spawn");
      if (lr__totask(L, lr__runtime(L), 1))
        return luaL_argerror(L, 1, "function expected, got lessonrun.Task; a task starts when it is spawned: "
                                   "wait for it with t:wait()");
      return luaL_typeerror(L, 1, "function");
    }
    lua_pop(L, 1);
  }
  lr__spawn(L, lr__runtime(L), 1, lua_gettop(L) - 1);
  return 1;
}

/* current() -> the running task, or nil outside tasks */
static int l_current(lua_State *L) {
  lr_task *t = lr__current(L);
  if (t) lr__push_task(L, lr__runtime(L), t);
  else lua_pushnil(L);
  return 1;
}

static int l_istask(lua_State *L) {
  lua_pushboolean(L, lr__totask(L, lr__runtime(L), 1) != NULL);
  return 1;
}

static int l_ntasks(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lr__runtime(L)->nlive);
  return 1;
}

/* core.refs() -> registry references the C side holds now */
static int l_refs(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lr__runtime(L)->nrefs);
  return 1;
}

const luaL_Reg lr__task_funcs[] = {
  {"spawn", l_spawn}, {"current", l_current}, {"istask", l_istask}, {"ntasks", l_ntasks},
  {"refs", l_refs}, {NULL, NULL}
};

/* The methods go on the tasks' metatable that sched/task.c made. */
void lr__task_api_open(lua_State *L, lr_runtime *rt) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->task_mt_ref);
  if (lua_getfield(L, -1, "__index") == LUA_TNIL) {
    lua_newtable(L);
    lua_pushlightuserdata(L, rt);
    luaL_setfuncs(L, task_methods, 1);
    lua_setfield(L, -3, "__index");
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, t_tostring, 1);
    lua_setfield(L, -3, "__tostring");
  }
  lua_pop(L, 2);
}
