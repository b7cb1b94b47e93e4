/* Tracing: when on, every task's spawn, run, park (and on what), wake and
 * end is appended to one array of small fixed-size events, which the Lua
 * side (lessonrun/timeline.lua) turns into pictures.  When off it costs one
 * branch per transition. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"

static const char *const kind_names[] = {
  "spawn", "run", "stop", "park", "wake", "end", "block", "unblock"
};

void lr__trace(lr_runtime *rt, int kind, lr_task *t, uint32_t aux) {
  lr_event *e = (lr_event *)lr__buf_room(&rt->events, sizeof *e);  /* (malloc'd: aligned) */
  if (!e) {  /* out of memory: stop tracing, not the program; trace(true) tries again */
    rt->trace = 0;
    rt->events.err = 0;
    return;
  }
  e->t = lr__now_ns(rt) - rt->t0;
  e->task = t ? (uint32_t)t->id : 0;
  e->aux = aux;
  e->kind = (uint8_t)kind;
  lr__buf_commit(&rt->events, sizeof *e);
}

static void add_arg(luaL_Buffer *b, lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {  /* balanced: the redacted copy is popped before the buffer grows */
      size_t n, cut, k = 0;
      const char *s = lua_tolstring(L, idx, &n);
      s = lr__push_redacted(L, s, n);  /* a URL's password never reaches a chart */
      n = lua_rawlen(L, -1);
      cut = n;
      if (n > 12) {  /* cut on a UTF-8 character boundary */
        cut = 10;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
      }
      char tmp[64];  /* 12 bytes at most, 4 each, the quotes and ".." */
      tmp[k++] = '"';
      for (size_t i = 0; i < cut; i++) {  /* control bytes (NUL...) as \ddd, as %q writes them */
        unsigned char c = (unsigned char)s[i];
        int digit_next = i + 1 < cut && s[i + 1] >= '0' && s[i + 1] <= '9';
        if (c < 32 || c == 127) k += (size_t)snprintf(tmp + k, sizeof tmp - k, digit_next ? "\\%03d" : "\\%d", c);
        else tmp[k++] = (char)c;
      }
      if (cut < n) tmp[k++] = '.', tmp[k++] = '.';
      tmp[k++] = '"';
      lua_pop(L, 1);
      luaL_addlstring(b, tmp, k);
      break;
    }
    case LUA_TNUMBER: {  /* formatted here: the buffer owns the stack top */
      char tmp[32];
      if (lua_isinteger(L, idx)) snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, lua_tointeger(L, idx));
      else snprintf(tmp, sizeof tmp, "%.6g", (double)lua_tonumber(L, idx));
      luaL_addstring(b, tmp);
      break;
    }
    case LUA_TBOOLEAN:
      luaL_addstring(b, lua_toboolean(L, idx) ? "true" : "false");
      break;
    default:
      luaL_addstring(b, luaL_typename(L, idx));
  }
}


/* A name for the timeline: `task("A", 1)` when the function is a local or
 * upvalue of the caller, else where it was defined ("async.lua:8"). */
static void push_spawn_name(lua_State *L, int first, int nargs) {
  char fname[64] = "";
  lua_Debug ar;
  int top = lua_gettop(L);
  /* the first caller that is the user's Lua code, not ours (gather, ...) */
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "S", &ar) || ar.what[0] == 'C' || lr__our_source(ar.source, strlen(ar.source))) continue;
    const char *n;
    for (int i = 1; !fname[0] && (n = lua_getlocal(L, &ar, i)); i++) {
      if (n[0] != '(' && lua_rawequal(L, -1, first)) snprintf(fname, sizeof fname, "%s", n);
      lua_pop(L, 1);
    }
    lua_getinfo(L, "f", &ar);
    for (int i = 1; !fname[0] && (n = lua_getupvalue(L, -1, i)); i++) {
      if (n[0] && lua_rawequal(L, -1, first)) snprintf(fname, sizeof fname, "%s", n);
      lua_pop(L, 1);
    }
    break;
  }
  lua_settop(L, top);
  if (!fname[0]) {  /* a global, e.g. spawn(offload, ...) */
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (!fname[0] && lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, first))
        snprintf(fname, sizeof fname, "%s", lua_tostring(L, -2));
      lua_pop(L, 1);
    }
    lua_settop(L, top);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (fname[0]) {
    luaL_addstring(&b, fname);
  } else {
    lua_Debug fa;
    char where[LR_WHERE_SIZE] = "";
    lua_pushvalue(L, first);  /* (popped by lua_getinfo: the buffer's top stays) */
    if (lua_getinfo(L, ">S", &fa)) lr__where_defined(&fa, where, sizeof where);
    luaL_addstring(&b, where[0] ? where : "function");
    if (where[0] && fa.linedefined <= 0) {  /* a main chunk: no arguments */
      luaL_pushresult(&b);
      return;
    }
  }
  luaL_addchar(&b, '(');
  for (int i = 1; i <= nargs && i <= 3; i++) {
    if (i > 1) luaL_addstring(&b, ", ");
    add_arg(&b, L, first + i);
  }
  if (nargs > 3) luaL_addstring(&b, ", ...");
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
}

void lr__trace_spawn(lua_State *L, lr_runtime *rt, lr_task *t, int first, int nargs) {
  first = lua_absindex(L, first);
  lr_task *parent = lr__current(L);
  lr__trace(rt, LR_EV_SPAWN, t, parent ? (uint32_t)parent->id : 0);
  if (rt->trace_names_ref == LUA_NOREF || rt->trace_names_ref == 0) {
    lua_newtable(L);
    rt->trace_names_ref = lr__ref(L, rt);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->trace_names_ref);
  push_spawn_name(L, first, nargs);
  lua_rawseti(L, -2, (lua_Integer)t->id);
  lua_pop(L, 1);
}

void lr__trace_init(lr_runtime *rt) { lr__buf_init(&rt->events, NULL, 0); }

void lr__trace_close(lr_runtime *rt) {
  lr__buf_free(&rt->events);
}

/* trace([on]) -> whether tracing was on; trace(true) starts recording */
static int l_trace(lua_State *L) {
  lr_runtime *rt = lr__runtime(L);
  lua_pushboolean(L, rt->trace);
  if (!lua_isnone(L, 1)) rt->trace = lua_toboolean(L, 1);
  return 1;
}

/* trace_name(task_id, name): the name shown for a task */
static int l_trace_name(lua_State *L) {
  lr_runtime *rt = lr__runtime(L);
  lua_Integer id = luaL_checkinteger(L, 1);
  luaL_checkstring(L, 2);
  if (rt->trace_names_ref == LUA_NOREF || rt->trace_names_ref == 0) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->trace_names_ref);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, id);
  return 0;
}

/* trace_data() -> {t={...}, task={...}, kind={...}, aux={...}, names={...},
 * now=seconds, virtual=bool}: the events as columns (cheap for 100k tasks) */
static int l_trace_data(lua_State *L) {
  lr_runtime *rt = lr__runtime(L);
  int n = (int)(rt->events.len / sizeof(lr_event));
  lua_createtable(L, 0, 8);
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    const lr_event *e = (const lr_event *)rt->events.p + i;
    lua_pushnumber(L, (lua_Number)e->t / 1e9);
    lua_rawseti(L, -5, i + 1);
    lua_pushinteger(L, e->task);
    lua_rawseti(L, -4, i + 1);
    lua_pushstring(L, kind_names[e->kind]);
    lua_rawseti(L, -3, i + 1);
    if (e->kind == LR_EV_PARK || e->kind == LR_EV_BLOCK || e->kind == LR_EV_UNBLOCK)
      lua_pushstring(L, lr__wait_kind(e->aux) ? lr__wait_kind(e->aux)->name : "");
    else if (e->kind == LR_EV_END)
      lua_pushstring(L, lr__state_name(e->aux));
    else
      lua_pushinteger(L, e->aux);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -5, "aux");
  lua_setfield(L, -4, "kind");
  lua_setfield(L, -3, "task");
  lua_setfield(L, -2, "t");
  if (rt->trace_names_ref != LUA_NOREF && rt->trace_names_ref != 0)
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->trace_names_ref);
  else
    lua_newtable(L);
  lua_setfield(L, -2, "names");
  lua_pushnumber(L, (lua_Number)(lr__now_ns(rt) - rt->t0) / 1e9);
  lua_setfield(L, -2, "now");
  lua_pushboolean(L, rt->virtual_time);
  lua_setfield(L, -2, "virtual");
  return 1;
}

const luaL_Reg lr__trace_funcs[] = {
  {"trace", l_trace}, {"trace_data", l_trace_data}, {"trace_name", l_trace_name}, {NULL, NULL}
};
