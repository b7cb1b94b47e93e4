/* The script a command line names (script.c). */
#ifndef LR_SCRIPT_H
#define LR_SCRIPT_H

#include <stddef.h>

#include <lua.h>

/* The path to load for NAME (NAME itself, or where the lookup found it, in
 * buf), or NULL with "cannot open NAME: ..." in err, saying where it looked
 * and naming near names.  A path is NAME as it is: loading it gives
 * lua5.4's own errors. */
const char *lr__script_find(const char *name, const char *lessons, char *buf, size_t n, char *err,
                            size_t errlen);
/* 1 if the function at idx (a loaded chunk) has the word among its constants */
int lr__function_mentions(lua_State *L, int idx, const char *word);

#endif
