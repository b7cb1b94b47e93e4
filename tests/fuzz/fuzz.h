/* What the fuzz targets share: one lessonrun state per process, a check
 * function written in Lua (the composition) called with each input, and
 * abort() when it finds a broken invariant, which libFuzzer reports as a
 * crash with the input that caused it.
 *
 *   static const char CHECK[] = "return function(data) ... end";
 *   int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
 *     fuzz_call(fuzz_state(CHECK), d, n);   // plain pcall: no waiting
 *     return 0;
 *   }
 *
 * The state lives until the process exits (libFuzzer never returns); it is
 * reachable from a static, so LeakSanitizer does not count it.  The check
 * raises an error whose message starts with "invariant:" for a broken
 * invariant; any other error it lets through is also a failure (a check
 * catches the errors that are allowed itself). */
#ifndef LR_FUZZ_H
#define LR_FUZZ_H

#include <lauxlib.h>
#include <lessonrun.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static lr_state *fuzz_S;

/* The process's state, made on the first call with CHECK's function stored
 * as the global FUZZ_CHECK. */
static inline lua_State *fuzz_state(const char *check) {
  if (!fuzz_S) {
    fuzz_S = lr_new();
    if (!fuzz_S) abort();
    lua_State *L = lr_lua(fuzz_S);
    if (luaL_loadstring(L, check) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
      fprintf(stderr, "fuzz: the check does not load: %s\n", lua_tostring(L, -1));
      abort();
    }
    lua_setglobal(L, "FUZZ_CHECK");
  }
  return lr_lua(fuzz_S);
}

static inline void fuzz_fail(const char *how, const char *msg) {
  fprintf(stderr, "fuzz: %s: %s\n", how, msg ? msg : "(no message)");
  abort();
}

/* FUZZ_CHECK(data) as a plain call: for checks that never wait. */
static inline void fuzz_call(lua_State *L, const uint8_t *data, size_t size) {
  int top = lua_gettop(L);
  lua_getglobal(L, "FUZZ_CHECK");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    luaL_traceback(L, L, lua_tostring(L, -1), 0);
    fuzz_fail("the check failed", lua_tostring(L, -1));
  }
  lua_settop(L, top);
}

/* FUZZ_CHECK(data) as the root task of a run: for checks that sleep, spawn
 * or fetch (the loop runs until the task and what it spawned are done). */
static inline void fuzz_run(lua_State *L, const uint8_t *data, size_t size) {
  lua_pushlstring(L, (const char *)data, size);
  lua_setglobal(L, "FUZZ_INPUT");
  if (lr_dostring(fuzz_S, "FUZZ_CHECK(FUZZ_INPUT)", "=fuzz") != LR_OK)
    fuzz_fail("the check failed", lr_errmsg(fuzz_S));
}

#endif
