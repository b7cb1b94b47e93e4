/* prims: the Lua-facing primitives (sleep, wait, semaphore, offload, json, warnings, term); call runtime and below. */
#ifndef LR_PRIMS_H
#define LR_PRIMS_H

#include "runtime/runtime.h"

/* blocking calls: trace them and warn when they held other tasks up */
uint64_t lr__block_begin(lua_State *L, lr_runtime *rt, const lr_wait_kind *kind);
void lr__block_end(lua_State *L, lr_runtime *rt, const lr_wait_kind *kind, uint64_t began,
                   size_t ready_before);
extern const luaL_Reg lr__warn_funcs[];

/* A table whose fields are built on first read (a response's headers) has a
 * metatable with __lr_settle, which builds them; code that walks tables raw
 * (lua_next: json_encode, offload) settles each table first, so that it sees
 * every field without knowing who made the table. */
static inline void lr__settle(lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) return;
  if (lua_getfield(L, -1, "__lr_settle") == LUA_TFUNCTION) {
    lua_pushvalue(L, idx < 0 ? idx - 2 : idx);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
  } else {
    lua_pop(L, 2);
  }
}

/* semaphore.c */
extern const luaL_Reg lr__semaphore_funcs[];
void lr__semaphore_open(lua_State *L);

/* offload.c */
extern const luaL_Reg lr__offload_funcs[];
void lr__offload_open(void);

/* term.c */
extern const luaL_Reg lr__term_funcs[];

/* json.c */
int lr__json_decode(lua_State *L, const char *s, size_t len);
int lr__json_encode(lua_State *L, int idx, char *errbuf, size_t errlen);
extern const luaL_Reg lr__json_funcs[];

#endif
