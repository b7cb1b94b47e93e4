/* The embedding API (lessonrun.h): a Lua state with lessonrun opened, and
 * running a chunk as the root task. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <lualib.h>

#include "embed/embed.h"

struct lr_state {
  lua_State *L;
  lr_alloc *alloc;
  lr_runtime *rt;
  char *err;
};

static void set_err(lr_state *S, const char *msg) {
  free(S->err);
  S->err = msg ? strdup(msg) : NULL;
}

static int pinit(lua_State *L) {
  const char *luadir = lua_touserdata(L, 1);
  if (lua_toboolean(L, 2)) {  /* lua5.4 -E: package ignores LUA_PATH and LUA_CPATH */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  if (luadir && luadir[0]) {  /* module.c finds our Lua sources there; package.path stays lua5.4's */
    lua_pushstring(L, luadir);
    lua_setfield(L, LUA_REGISTRYINDEX, "lessonrun.luadir");
  }
  luaL_requiref(L, "lessonrun", luaopen_lessonrun, 0);
  /* scripts see the primitives as globals */
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) == LUA_TSTRING) lua_setglobal(L, lua_tostring(L, -2));
    else lua_pop(L, 1);
  }
  lua_setglobal(L, "lessonrun");
  lua_pushlightuserdata(L, lr__get_runtime(L));
  return 1;
}

/* as lauxlib's: an error outside any protected call */
static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n", msg ? msg : "error object is not a string");
  fflush(stderr);
  return 0;
}

/* warnings as luaL_newstate sets them up: off until warn("@on") */
static void warnf_on(void *ud, const char *msg, int tocont);
static void warnf_off(void *ud, const char *msg, int tocont);

static int warn_control(lua_State *L, const char *msg, int tocont) {
  if (tocont || *(msg++) != '@') return 0;
  if (strcmp(msg, "off") == 0) lua_setwarnf(L, warnf_off, L);
  else if (strcmp(msg, "on") == 0) lua_setwarnf(L, warnf_on, L);
  return 1;
}

static void warnf_off(void *ud, const char *msg, int tocont) { warn_control(ud, msg, tocont); }

static void warnf_cont(void *ud, const char *msg, int tocont) {
  lua_State *L = ud;
  fputs(msg, stderr);
  if (tocont) {
    lua_setwarnf(L, warnf_cont, L);
  } else {
    fputs("\n", stderr);
    fflush(stderr);
    lua_setwarnf(L, warnf_on, L);
  }
}

static void warnf_on(void *ud, const char *msg, int tocont) {
  if (warn_control(ud, msg, tocont)) return;
  fputs("Lua warning: ", stderr);
  warnf_cont(ud, msg, tocont);
}

lr_state *lr_new(void) { return lr__new(NULL, 0); }

/* why the last lr__new on this thread returned NULL */
static _Thread_local char new_err[256] = "not enough memory";

const char *lr__new_error(void) { return new_err; }

lr_state *lr__new(const char *luadir, int noenv) {
  snprintf(new_err, sizeof new_err, "not enough memory");
  lr_state *S = calloc(1, sizeof *S);
  if (!S) return NULL;
  S->alloc = lr__alloc_new();
  S->L = S->alloc ? lua_newstate(lr__alloc, S->alloc) : NULL;
  if (!S->L) { lr__alloc_free(S->alloc); free(S); return NULL; }
  lua_atpanic(S->L, panic);
  lua_setwarnf(S->L, warnf_off, S->L);
  /* Tasks are long-lived and numerous: the generational collector does not
   * re-mark every one of them each time the heap doubles, as incremental does.
   * But every minor collection re-marks every live coroutine (Lua keeps them
   * gray): a minor collection after 50 % growth rather than 20 % makes that
   * rarer (100k sleeping tasks: -10 % time) for at most 30 % more garbage
   * waiting between collections. */
  lua_gc(S->L, LUA_GCGEN, 50, 0);
  lua_pushcfunction(S->L, pinit);
  lua_pushlightuserdata(S->L, (void *)luadir);  /* a string could fail to allocate, unprotected */
  lua_pushboolean(S->L, noenv);
  if (lua_pcall(S->L, 2, 1, 0) != LUA_OK) {
    if (lua_type(S->L, -1) == LUA_TSTRING) snprintf(new_err, sizeof new_err, "%s", lua_tostring(S->L, -1));
    lua_close(S->L);
    lr__alloc_free(S->alloc);
    free(S);
    return NULL;
  }
  S->rt = lua_touserdata(S->L, -1);
  lua_pop(S->L, 1);
  return S;
}

lua_State *lr_lua(lr_state *S) { return S->L; }

const char *lr_errmsg(lr_state *S) { return S->err ? S->err : ""; }

/* Runs stack[1] with the values above it as the root task, then cancels
 * whatever it left running.  Returns status (and a message on failure). */
static int pexec(lua_State *L) {
  lr_runtime *rt = lua_touserdata(L, lua_upvalueindex(1));
  if (!rt->root) rt->oom = 0;
  lr_task *t = lr__spawn(L, rt, 1, lua_gettop(L) - 1);
  lr_task *saved = rt->root;
  rt->root = t;
  lr__run_until(rt, t);
  int ran_out = rt->oom && t->state == LR_FAILED;  /* its own failure was out of memory */
  rt->root = saved;
  if (!saved) lr__shutdown_tasks(rt);
  int interrupted = t->interrupted || (rt->interrupted && t->state == LR_CANCELLED);
  if (!saved && rt->oom && !interrupted && t->state != LR_FAILED) {
    /* the runtime ran out of memory (the script was cancelled for it, or
     * its tasks could not be): a failure, as lua5.4's out of memory is */
    lua_pushliteral(L, "not enough memory");
    lua_pushinteger(L, LR_ERROR);
    return 2;
  }
  if (t->state == LR_DONE && !(saved == NULL && rt->interrupted)) {
    lua_pushinteger(L, LR_OK);
    return 1;
  }
  if (t->state == LR_DONE) {  /* Ctrl-C while the tasks left at exit were cancelled */
    lua_pushliteral(L, "interrupted");
    lua_pushinteger(L, LR_INTERRUPTED);
    return 2;
  }
  lr__push_error(L, t);
  if (interrupted) {
    lua_pushliteral(L, "interrupted");
  } else {
    const char *msg = lr__errtext(L, -1);
    lr__push_traceback(L, t);
    const char *tb = lua_tostring(L, -1);
    /* out of memory: the message alone, as in lua5.4 (Lua calls no message
     * handler for it), whether or not the allocator had room for a traceback;
     * a script's own error("not enough memory") keeps its traceback */
    if (!tb || !tb[0] || strcmp(tb, msg) == 0 || ran_out) {
      lua_pop(L, 1);
    } else {
      lua_pushliteral(L, "\n");
      lua_insert(L, -2);
      lua_concat(L, 3);
    }
  }
  lua_pushinteger(L, interrupted ? LR_INTERRUPTED : LR_ERROR);
  return 2;
}

/* Internal entry for lessonrun.c: stack holds the loaded chunk and nargs
 * arguments.  Leaves the stack as it found it (minus those). */
int lr__exec(lr_state *S, int nargs) {
  lua_State *L = S->L;
  int base = lua_gettop(L) - nargs;
  lua_pushlightuserdata(L, S->rt);
  lua_pushcclosure(L, pexec, 1);
  lua_insert(L, base);
  int st = lua_pcall(L, nargs + 1, 2, 0), rc;
  if (st != LUA_OK) {  /* out of memory or the like, outside any task */
    set_err(S, lr__errtext(L, -1));
    rc = LR_ERROR;
    lua_settop(L, base - 1);
    return rc;
  }
  rc = (int)lua_tointeger(L, -1);
  if (rc == LR_OK) set_err(S, NULL);
  else set_err(S, lua_tostring(L, -2));
  lua_settop(L, base - 1);
  S->rt->interrupted = 0;
  return rc;
}

static int loaded(lr_state *S, int status) {
  if (status == LUA_OK) return lr__exec(S, 0);
  set_err(S, lr__errtext(S->L, -1));
  lua_pop(S->L, 1);
  return LR_ERROR;
}

int lr_dofile(lr_state *S, const char *path) {
  return loaded(S, luaL_loadfilex(S->L, path, NULL));
}

int lr_dostring(lr_state *S, const char *chunk, const char *chunkname) {
  return loaded(S, luaL_loadbufferx(S->L, chunk, strlen(chunk), chunkname ? chunkname : chunk, NULL));
}

lr_runtime *lr__state_runtime(lr_state *S) { return S->rt; }

void lr_close(lr_state *S) {
  if (!S) return;
  lua_close(S->L);
  lr__alloc_free(S->alloc);
  free(S->err);
  free(S);
}
