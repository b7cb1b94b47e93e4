/* base/args.h: checks of what Lua passes to a C function, in lauxlib's
 * style and words (args.c); the layers above and the server share them. */
#ifndef LR_ARGS_H
#define LR_ARGS_H

#include <stddef.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

/* Raises "bad argument #arg to 'fname' (MESSAGE)", MESSAGE made from fmt as
 * lua_pushfstring makes it (%s %d %I %f %p %c %U %%).  Where luaL_argerror
 * would name the function from the call's debug information, this names
 * fname, as the caller's own API spells it. */
int lr__opterror(lua_State *L, int arg, const char *fname, const char *fmt, ...);

/* s[0..n) holds a NUL byte: a C string of it would stop there (a name,
 * a URL or a host that is not what Lua holds) */
static inline int lr__has_nul(const char *s, size_t n) { return memchr(s, '\0', n) != NULL; }

/* Pushes and returns the key at idx as a message names it: a string with
 * each NUL byte written \0 ("timeout\0x" is not the option timeout), a
 * number or boolean as tostring shows it, anything else by its type ("(a
 * table)"), with no metamethod run. */
const char *lr__push_key_name(lua_State *L, int idx);

/* One option of an options table: which is its position in names, or -1
 * for any other key (one that is not a string, or has a NUL byte in it:
 * "host\0x" is no option).  The key is at -2 and the value at -1; the
 * function raises for what it refuses and leaves the stack as it was. */
typedef void (*lr_option_fn)(lua_State *L, int which, void *ud);

/* Calls each for every key of the table at idx, in lua_next's order;
 * returns how many keys there are.  names ends with NULL. */
int lr__each_option(lua_State *L, int idx, const char *const *names, lr_option_fn each, void *ud);

#endif
