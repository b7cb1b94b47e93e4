/* A task that failed: its traceback (the user's frames only, a re-raised
 * child's first), and its error until someone retrieves it (else reported
 * when its handle is collected). */
#include <stdio.h>
#include <string.h>

#include "sched/sched.h"

static int never_started(lua_State *L) {
  lua_pushfstring(L, "in task #%I: cancelled before it started", lua_tointeger(L, 1));
  return 1;
}

/* Pushes the traceback of a task cancelled before it ran (protected: the
 * driver cannot raise; out of memory, Lua's message instead). */
void lr__push_never_started(lua_State *L, lr_runtime *rt, lr_task *t) {
  lua_pushcfunction(L, never_started);
  lua_pushinteger(L, (lua_Integer)t->id);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return;
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->nomem_ref);
}

/* A failed task's error, until someone retrieves it (wait, gather, settle,
 * result, error, traceback): if nobody does before its handle is collected
 * or the state is closed, __gc reports it, as asyncio's "Task exception was
 * never retrieved".  Only failed tasks pay for one: it sits at the bottom
 * of their dead coroutine's stack, with the coroutine and the task's label
 * as its uservalues, and the task's park_data points to it. */
#define UNOBSERVED_MT "lessonrun.UnobservedError"
typedef struct {
  lr_runtime *rt;
  int observed;
} unobserved;

void lr__observe(lr_task *t) {
  unobserved *u = t->state == LR_FAILED ? t->park_data : NULL;
  if (u && !u->observed) {
    u->observed = 1;
    u->rt->unobserved--;
  }
}

/* A FAILED or CANCELLED task keeps (error value, traceback) on its stack. */
void lr__push_error(lua_State *L, lr_task *t) {
  lr__observe(t);
  lua_pushvalue(t->co, -2);
  lua_xmove(t->co, L, 1);
}

void lr__push_traceback(lua_State *L, lr_task *t) {
  lr__observe(t);
  lua_pushvalue(t->co, -1);
  lua_xmove(t->co, L, 1);
}

/* 1 if a traceback line ("src:line: in ...") is a frame of lessonrun's own
 * Lua files, built in ("lessonrun/api.lua") or an edited copy on disk. */
static int ours_frame(const char *line, size_t n) {
  const char *in = memmem(line, n, ": in ", 5);
  if (!in) return 0;
  const char *end = in;  /* the source's end: before ":<line>", when there is one */
  while (end > line && end[-1] >= '0' && end[-1] <= '9') end--;
  end = end < in && end > line && end[-1] == ':' ? end - 1 : in;
  return lr__our_source(line, (size_t)(end - line));
}

/* Pushes the frames of luaL_traceback's text tb (its heading dropped) that
 * show the user's code: lessonrun's own frames go, and so do the C frames
 * they called (error, reraise, fetch...), so a traceback starts at the
 * user's line. */
static void push_user_frames(lua_State *L, const char *tb) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *p = strchr(tb, '\n'), *cstart = NULL;  /* cstart: a run of C frames not yet kept */
  while (p) {
    const char *next = strchr(p + 1, '\n'), *end = next ? next : p + strlen(p);
    const char *line = p + 2;  /* after "\n\t" */
    if (end - p > 2 && strncmp(line, "[C]: ", 5) == 0) {
      if (!cstart) cstart = p;
    } else {
      int ours = end - p > 2 && ours_frame(line, (size_t)(end - line));
      /* "(...tail calls...)" under nothing kept: our frames were what was tail-called */
      if (!cstart && luaL_bufflen(&b) == 0 && strncmp(line, "(...tail calls...)", 18) == 0) ours = 1;
      if (!ours) luaL_addlstring(&b, cstart ? cstart : p, (size_t)(end - (cstart ? cstart : p)));
      cstart = NULL;
    }
    p = next;
  }
  if (cstart) luaL_addstring(&b, cstart);
  luaL_pushresult(&b);
}

/* Build the traceback of a failed task; if it re-raised a child's error
 * (gather, wait), the child's traceback comes first.  Only the user's
 * frames are kept, and a child with none is left out. */
static void record_failure(lua_State *L, lr_runtime *rt, lr_task *t) {
  lua_State *co = t->co;
  int base = lua_gettop(L);
  lua_checkstack(co, 4);
  luaL_checkstack(L, 8, NULL);
  /* the re-raised child, if the error is the child's own */
  lr__push_extra(L, rt, t, 0);
  lr_task *origin = NULL;
  if (lua_istable(L, -1) && lua_getfield(L, -1, "origin") == LUA_TUSERDATA) {
    origin = lua_touserdata(L, -1);
    lr__push_error(L, origin);
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
    if (!lua_rawequal(L, -1, -2)) origin = NULL;
  }
  lua_settop(L, base);
  if (origin) {
    lr__push_traceback(L, origin);
    if (strchr(lua_tostring(L, -1), '\n')) {
      lua_pushliteral(L, "\n");
    } else {  /* a heading alone: the child ran only lessonrun's code (fetch_all's workers) */
      lua_pop(L, 1);
      origin = NULL;
    }
  }
  lr__push_name(L, rt, t, 0);
  lua_pushfstring(L, origin ? "stack traceback of %s, which re-raised it:" : "stack traceback of %s:",
                  lua_tostring(L, -1));
  lua_remove(L, -2);
  luaL_traceback(L, co, NULL, 0);
  push_user_frames(L, lua_tostring(L, -1));
  lua_remove(L, -2);
  if (origin && lua_rawlen(L, -1) == 0) lua_settop(L, base + 1);  /* nothing of ours to add: the child's */
  lua_concat(L, lua_gettop(L) - base);
  lua_xmove(L, co, 1);
}

static int unobserved_gc(lua_State *L) {
  unobserved *u = lua_touserdata(L, 1);
  if (!u || u->observed) return 0;
  u->observed = 1;
  u->rt->unobserved--;
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_State *co = lua_tothread(L, 2);
  lua_getiuservalue(L, 1, 2);
  if (!co || lua_gettop(co) < 3 || !lua_checkstack(L, 4)) return 0;
  lua_pushvalue(co, 2);
  lua_xmove(co, L, 1);
  lr__errtext(L, -1);  /* as lua.c words it: "(error object is a table value)" */
  lua_pushvalue(co, 3);
  lua_xmove(co, L, 1);
  const char *tb = lua_tostring(L, -1);
  fprintf(stderr, "lessonrun: %s failed and nobody waited for it: %s\n%s\n",
          lua_tostring(L, 3), lua_tostring(L, 4), tb ? tb : "");
  fflush(stderr);
  return 0;
}

/* precord(rt, t, failed) -> the unobserved-error sentinel or nil; leaves the
 * traceback on the task's coroutine. */
int lr__precord(lua_State *L) {
  lr_runtime *rt = lua_touserdata(L, 1);
  lr_task *t = lua_touserdata(L, 2);
  int failed = lua_toboolean(L, 3);
  lua_settop(L, 0);
  if (failed) {
    unobserved *u = lua_newuserdatauv(L, sizeof *u, 2);
    u->rt = rt;
    u->observed = 1;  /* until it is complete */
    luaL_setmetatable(L, UNOBSERVED_MT);
    lua_pushthread(t->co);
    lua_xmove(t->co, L, 1);
    lua_setiuservalue(L, 1, 1);
    lr__push_label(L, rt, t);
    lua_setiuservalue(L, 1, 2);
  } else {
    lua_pushnil(L);
  }
  record_failure(L, rt, t);
  if (failed) ((unobserved *)lua_touserdata(L, 1))->observed = 0;
  return 1;
}

void lr__failure_open(lua_State *L) {
  if (luaL_newmetatable(L, UNOBSERVED_MT)) {
    lua_pushcfunction(L, unobserved_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}
