/* Build tool: compiles a Lua file to bytecode for embed.cmake, with the
 * Lua library lessonrun links, so the bytecode matches it.  Debug info is
 * kept: tracebacks still name the file and its lines.
 *   lr_luac <file.lua> <chunkname> <out> */
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

static int writer(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  return fwrite(p, 1, n, ud) == n ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s file.lua chunkname out\n", argv[0]);
    return 2;
  }
  lua_State *L = luaL_newstate();
  if (!L) return 1;
  FILE *in = fopen(argv[1], "rb");
  int rc = 1;
  if (!in) {
    perror(argv[1]);
  } else {
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    FILE *out = NULL;
    if (n == sizeof buf) fprintf(stderr, "%s: too big\n", argv[1]);
    else if (luaL_loadbufferx(L, buf, n, argv[2], "t") != LUA_OK)
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
    else if (!(out = fopen(argv[3], "wb")))
      perror(argv[3]);
    else
      rc = lua_dump(L, writer, out, 0) != 0;
    if (out && fclose(out) != 0) rc = 1;
  }
  lua_close(L);
  return rc;
}
