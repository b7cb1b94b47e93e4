/* prims: the Lua-facing primitives (sleep, wait, semaphore, offload, json, warnings, term); call runtime and below. */
#ifndef LR_PRIMS_H
#define LR_PRIMS_H

#include "runtime/runtime.h"

/* blocking calls: trace them and warn when they held other tasks up */
uint64_t lr__block_begin(lua_State *L, lr_runtime *rt, const lr_wait_kind *kind);
void lr__block_end(lua_State *L, lr_runtime *rt, const lr_wait_kind *kind, uint64_t began,
                   size_t ready_before);
extern const luaL_Reg lr__warn_funcs[];

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
/* s[0..n) as a quoted JSON string in dst (LR_JSON_QUOTE_MAX(n) bytes); 0 on invalid UTF-8 unless replace */
size_t lr__json_quote(char *dst, const char *s, size_t n, int replace, size_t *bad);
#define LR_JSON_QUOTE_MAX(n) (6 * (n) + 2)
extern const luaL_Reg lr__json_funcs[];

#endif
