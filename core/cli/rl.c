/* Loading GNU readline (rl.h says why it is not linked). */
#include "base/base.h"
#include "rl.h"

lr_rl lr__rl;

int lr__rl_load(void) {
#define X(f) #f,
  static const char *const names[] = { RL_FUNCS(X) RL_VARS(X) };
#undef X
  void *syms[sizeof names / sizeof *names];
  char err[256];
  if (lr__dl_bind("libreadline.so.8", names, syms, sizeof names / sizeof *names, err, sizeof err) != 0) {
    fprintf(stderr, "lessonrun: no line editing: %s\n", err);
    return -1;
  }
  size_t i = 0;
#define X(f) lr__rl.f = (__typeof__(&f))syms[i++];
  RL_FUNCS(X)
  RL_VARS(X)
#undef X
  return 0;
}
