/* The terminal: is output going to one (progress lines, colours), and how
 * wide is it (the timeline). */
#include <sys/ioctl.h>
#include <unistd.h>

#include "prims/prims.h"

static int fd_of(lua_State *L, int idx) {
  if (lua_isinteger(L, idx)) return (int)lua_tointeger(L, idx);
  luaL_Stream *s = luaL_testudata(L, idx, LUA_FILEHANDLE);
  if (s && s->f) return fileno(s->f);
  return luaL_argerror(L, idx, "file or file descriptor expected");
}

/* isatty([file | fd]) -> true if it is a terminal (default io.stdout) */
static int l_isatty(lua_State *L) {
  int fd = lua_isnoneornil(L, 1) ? STDOUT_FILENO : fd_of(L, 1);
  lua_pushboolean(L, isatty(fd));
  return 1;
}

/* termwidth([file | fd]) -> columns of the terminal, or nil */
static int l_termwidth(lua_State *L) {
  int fd = lua_isnoneornil(L, 1) ? STDOUT_FILENO : fd_of(L, 1);
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) lua_pushinteger(L, ws.ws_col);
  else lua_pushnil(L);
  return 1;
}

const luaL_Reg lr__term_funcs[] = {{"isatty", l_isatty}, {"termwidth", l_termwidth}, {NULL, NULL}};
