/* server: the built-in latency server; uses base only. */
#ifndef LR_SERVER_H
#define LR_SERVER_H

#include <lua.h>
#include <lauxlib.h>

#include "base/base.h"

/* server.c: the built-in latency server */
extern const luaL_Reg lr__server_funcs[];
int lr__serve_main(int argc, char **argv);  /* lessonrun serve [--host H] [--port P] */

#endif
