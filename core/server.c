/* The built-in latency server (httpbin-like), in its own thread.
 * STUB: being written; see lr.h for the interface. */
#include "lr.h"

static int l_serve(lua_State *L) {
  return luaL_error(L, "serve: not implemented yet");
}

const luaL_Reg lr__server_funcs[] = {{"serve", l_serve}, {NULL, NULL}};

int lr__serve_main(int argc, char **argv) {
  (void)argc; (void)argv;
  return 1;
}
