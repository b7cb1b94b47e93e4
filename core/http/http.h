/* http: libcurl multi on the loop, fetch and blocking_fetch; calls prims and below. */
#ifndef LR_HTTP_H
#define LR_HTTP_H

#include "prims/prims.h"

/* curl_uv.c: libcurl multi driven by the loop */
typedef struct lr_transfer lr_transfer;
typedef void (*lr_transfer_done)(lr_transfer *x, int result);
struct lr_transfer {
  void *easy;            /* CURL* */
  lr_transfer_done done;
  void *data;
};
int lr__curl_init(lr_runtime *rt, char *err, size_t errlen);  /* 0, or -1 and a message */
int lr__curl_add(lr_runtime *rt, lr_transfer *x);
void lr__curl_remove(lr_runtime *rt, lr_transfer *x);
void lr__curl_limits(lr_runtime *rt);
long lr__default_connections(void);

/* fetch.c */
extern const luaL_Reg lr__fetch_funcs[];
void lr__fetch_open(lua_State *L);

#endif
