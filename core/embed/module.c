/* luaopen_lessonrun: builds the C core table (lessonrun.core), makes the
 * built-in Lua modules loadable, and returns the composed API from
 * lessonrun.api.  Loading it twice in one state shares one runtime. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"

static void setfuncs(lua_State *L, const luaL_Reg *l) {
  lua_getfield(L, LUA_REGISTRYINDEX, LR_RUNTIME_KEY);
  luaL_setfuncs(L, l, 1);
}

/* Loads the bytecode; the source if this Lua library cannot (a different
 * Lua than the one lessonrun was built with). */
static int embedded_loader(lua_State *L) {
  const lr_embedded *e = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbufferx(L, e->bytecode, e->bclen, e->chunkname, "b") != LUA_OK) {
    lua_pop(L, 1);
    if (luaL_loadbufferx(L, e->src, e->len, e->chunkname, "t") != LUA_OK) return lua_error(L);
  }
  lua_pushstring(L, e->name);
  lua_call(L, 1, 1);
  return 1;
}

/* 1 if the file holds exactly the built-in text */
static int same_text(const char *path, const lr_embedded *e) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  char *buf = malloc(e->len + 1);
  size_t n = buf ? fread(buf, 1, e->len + 1, f) : 0;
  int same = buf && n == e->len && memcmp(buf, e->src, n) == 0;
  free(buf);
  fclose(f);
  return same;
}

/* The lessonrun executable's own Lua folder (the source tree's from the
 * build tree, else the installed one), or NULL in a stock lua5.4. */
static const char *luadir(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "lessonrun.luadir");
  const char *dir = lua_tostring(L, -1);  /* the registry keeps it alive */
  lua_pop(L, 1);
  return dir;
}

/* package.searchers entry: "lessonrun.x" from the executable's Lua folder,
 * so that package.path stays what lua5.4 makes of LUA_PATH. */
static int own_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1), *dir = luadir(L);
  if (!dir || strncmp(name, "lessonrun", 9) != 0 || (name[9] && name[9] != '.')) return 0;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushvalue(L, 1);
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", dir, dir);
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2)) return 1;  /* searchpath's "no file '...'" */
  const char *path = lua_tostring(L, -2);
  if (luaL_loadfilex(L, path, NULL) != LUA_OK)
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, path, lua_tostring(L, -1));
  lua_pushstring(L, path);
  return 2;
}

/* The built-in copies of the lua/lessonrun files serve when there is no
 * file for them (lessonrun's folder first, then package.path: a stock lua5.4
 * with only the .so on package.cpath) or the file there is the same text
 * (the installed copy, or the source tree's from the build tree); a file
 * that differs wins, so edits take effect at once. */
static void register_embedded(lua_State *L) {
  const char *dir = luadir(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_getglobal(L, "package");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  if (dir && lua_getfield(L, -1, "searchers") == LUA_TTABLE) {  /* after preload: before package.path */
    lua_pushcfunction(L, own_searcher);
    for (lua_Integer i = (lua_Integer)luaL_len(L, -2) + 1; i > 2; i--) {
      lua_geti(L, -2, i - 1);
      lua_seti(L, -3, i);
    }
    lua_seti(L, -2, 2);
  }
  if (dir) lua_pop(L, 1);
  if (dir) lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
  else lua_pushliteral(L, "");
  lua_getfield(L, -2, "path");
  if (lua_isstring(L, -1)) lua_concat(L, 2);
  else lua_pop(L, 1);
  const char *where = lua_tostring(L, -1);  /* stays on the stack */
  int searchable = lua_getfield(L, -2, "searchpath") == LUA_TFUNCTION;
  lua_pop(L, 1);
  for (const lr_embedded *e = lr__embedded; e->name; e++) {
    int builtin = 1;
    if (searchable && where[0]) {
      lua_getfield(L, -2, "searchpath");
      lua_pushstring(L, e->name);
      lua_pushvalue(L, -3);
      lua_call(L, 2, 1);
      const char *path = lua_tostring(L, -1);
      builtin = !path || same_text(path, e);
      lua_pop(L, 1);
    }
    if (builtin) {
      lua_pushlightuserdata(L, (void *)e);
      lua_pushcclosure(L, embedded_loader, 1);
      lua_setfield(L, -4, e->name);
    }
  }
  lua_pop(L, 3);
}

int luaopen_lessonrun(lua_State *L) {
  lr_runtime *rt = lr__get_runtime(L);
  lr__task_open(L, rt);
  lr__task_api_open(L, rt);
  lr__gather_open();
  lua_newtable(L);
  setfuncs(L, lr__task_funcs);
  setfuncs(L, lr__gather_funcs);
  setfuncs(L, lr__sleep_funcs);
  setfuncs(L, lr__error_funcs);
  setfuncs(L, lr__server_funcs);
  setfuncs(L, lr__fetch_funcs);
  setfuncs(L, lr__json_funcs);
  setfuncs(L, lr__semaphore_funcs);
  setfuncs(L, lr__term_funcs);
  setfuncs(L, lr__trace_funcs);
  setfuncs(L, lr__warn_funcs);
  setfuncs(L, lr__offload_funcs);
  lr__fetch_open(L);
  lr__semaphore_open(L);
  lr__sleep_open();
  lr__offload_open();
  lua_pushliteral(L, LR_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushlightuserdata(L, NULL);  /* what JSON's null decodes to (json.c) */
  lua_setfield(L, -2, "json_null");
  /* package.loaded["lessonrun.core"] is an empty proxy to the core table, so
   * that Lua's error messages name a function after the API ('sleep' or
   * 'lessonrun.sleep'), never after where it happens to be stored */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_newtable(L);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, -4);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "lessonrun.core");
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "lessonrun.core");
  lua_pop(L, 2);
  register_embedded(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lessonrun.api");
  lua_call(L, 1, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  lua_setfield(L, -2, "lessonrun.api");  /* it is "lessonrun" */
  lua_pop(L, 1);
  return 1;
}
