/* server: the built-in latency server (httpbin-like), so lessons work
 * offline; uses base only.  internal.h says how it is built. */
#ifndef LR_SERVER_H
#define LR_SERVER_H

#include <lua.h>
#include <lauxlib.h>

#include "base/base.h"

/* start.c: a running server, from lr__server_start until lr__server_stop
 * (which joins its threads, answers or closes what still waits, and frees
 * it).  verbose: MHD's runtime messages go to stderr ("lessonrun serve: "). */
typedef struct lr_server lr_server;
/* NULL with a message in err (the host is not numeric, the port is taken...) */
lr_server *lr__server_start(const char *host, int port, int verbose, char *err, size_t errlen);
void lr__server_stop(lr_server *s);
const char *lr__server_url(const lr_server *s);  /* "http://127.0.0.1:8080" */
int lr__server_host_ok(const char *host);  /* 1 if lr__server_start can bind it (numeric, or localhost) */

/* server.c: serve() for Lua */
extern const luaL_Reg lr__server_funcs[];

/* cli/serve.c (the executable's): lessonrun serve [--host H] [--port P] */
int lr__serve_main(int argc, char **argv);

#endif
