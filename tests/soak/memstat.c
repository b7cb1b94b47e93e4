/* memstat: a Lua module for the soak tests, loaded into lessonrun from the
 * path in $LR_MEMSTAT (ctest sets it).  The process's RSS keeps memory that
 * was freed: glibc returns it to the system only when asked, so a reading
 * after a burst says more about the allocator than about leaks.  This gives
 * the tests the two readings that do tell:
 *
 *   memstat.trim()      malloc_trim(0): hand freed pages back (the C side's
 *                       collectgarbage); returns 1 if memory was released
 *   memstat.in_use()    bytes malloc'd and not yet freed, all threads (under
 *                       AddressSanitizer, its own count: glibc's is not used)
 *   memstat.allocator() "glibc" or "asan" */
#include <malloc.h>
#include <stddef.h>

#include <lauxlib.h>
#include <lua.h>

/* Defined by the sanitizer runtime when it is loaded; absent otherwise. */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static int l_trim(lua_State *L) {
  lua_pushinteger(L, malloc_trim(0));
  return 1;
}

static int l_in_use(lua_State *L) {
  if (__sanitizer_get_current_allocated_bytes) {
    lua_pushinteger(L, (lua_Integer)__sanitizer_get_current_allocated_bytes());
  } else {
    struct mallinfo2 m = mallinfo2();  /* sums every arena */
    lua_pushinteger(L, (lua_Integer)(m.uordblks + m.hblkhd));
  }
  return 1;
}

static int l_allocator(lua_State *L) {
  lua_pushstring(L, __sanitizer_get_current_allocated_bytes ? "asan" : "glibc");
  return 1;
}

int luaopen_memstat(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"trim", l_trim}, {"in_use", l_in_use}, {"allocator", l_allocator}, {NULL, NULL}
  };
  luaL_newlib(L, funcs);
  return 1;
}
