/* embed: the state behind lessonrun.h and luaopen_lessonrun, the one place that knows every feature. */
#ifndef LR_EMBED_H
#define LR_EMBED_H

#include "http/http.h"
#include "server/server.h"

/* state.c */
int lr__exec(lr_state *S, int nargs);
lr_state *lr__new(const char *luadir, int noenv);  /* noenv: lua5.4 -E */
const char *lr__new_error(void);  /* why lr__new returned NULL */
lr_runtime *lr__state_runtime(lr_state *S);

#endif
