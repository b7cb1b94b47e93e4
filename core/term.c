/* The terminal: is output going to one (progress lines, colours), how wide
 * is it (the timeline), and the standard descriptors being open at all. */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lr.h"

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

/* A closed 0, 1 or 2 would be the next descriptor libuv opens, and libuv
 * asserts that it never closes one of those; /dev/null takes their place, as
 * a program started with `>&-` would see a stream that discards. */
void lr__std_fds_open(void) {
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int nul = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (nul >= 0 && nul != fd) {  /* a lower one was closed too: it took that */
      dup2(nul, fd);
      close(nul);
    }
  }
}

const luaL_Reg lr__term_funcs[] = {{"isatty", l_isatty}, {"termwidth", l_termwidth}, {NULL, NULL}};
