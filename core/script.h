/* The script a command line names (script.c).  A lr_script owns its text
 * from lr__script_read until lr__script_free. */
#ifndef LR_SCRIPT_H
#define LR_SCRIPT_H

#include <limits.h>
#include <stddef.h>

#include <lua.h>

typedef struct {
  char *text;
  size_t len;
  char path[PATH_MAX]; /* where it was found: the chunk is named "@path" */
} lr_script;

/* Finds NAME and reads it whole: 0, or -1 with a message in err
 * ("cannot open x: ..."), as lua5.4 words it, plus where it looked. */
int lr__script_read(const char *name, const char *lessons, lr_script *s, char *err, size_t errlen);
/* luaL_loadfile's rules (BOM, "#" first line, text or binary) on the text */
int lr__script_load(lua_State *L, const lr_script *s);
int lr__script_mentions(const lr_script *s, const char *word);
void lr__script_free(lr_script *s);

#endif
