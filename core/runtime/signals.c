/* SIGINT (Ctrl-C).  The handler only does async-signal-safe things, as in
 * lua.c: count the press, set a hook on the running coroutine so Lua code
 * that never waits is stopped, and wake the loop (uv_async_send is safe
 * here) so a task parked on a timer is cancelled at once.  A second press
 * before the first was dealt with exits on the spot. */
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"

static lr_runtime *volatile sig_rt = NULL;
static struct sigaction old_action;
static int installed = 0;

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lr_runtime *rt = sig_rt;
  /* while the tasks left at exit are cancelled, Ctrl-C means "stop now": the
   * hook stays, so a task that catches it (pcall in a loop) is stopped too */
  int unhook = !rt || !rt->shutting_down;
  if (rt && lr__current(L)) lr__raise_interrupt(L, rt, unhook);
  else if (unhook) lua_sethook(L, NULL, 0, 0);
}

static void on_sigint(int sig) {
  (void)sig;
  lr_runtime *rt = sig_rt;
  if (!rt) return;
  if (!rt->on_sigint && (rt->interrupted || rt->sigint_handled != (int)lr__sigint_count)) {
    static const char msg[] = "\nlessonrun: interrupted twice, exiting\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(130);
  }
  lr__sigint_count++;
  if (rt->running)
    lua_sethook(rt->running, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  uv_async_send(&rt->sigint_async);
}

void lr__drive_hold(lr_runtime *rt, int hold) {
  if (hold) {
    if (rt->driving++ == 0) lr__sigint_install(rt);
  } else if (--rt->driving == 0) {
    lr__sigint_restore(rt);
  }
}

void lr__sigint_install(lr_runtime *rt) {
  if (installed) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sig_rt = rt;
  rt->sigint_handled = (int)lr__sigint_count;
  sigaction(SIGINT, &sa, &old_action);
  installed = 1;
}

void lr__sigint_restore(lr_runtime *rt) {
  if (!installed || sig_rt != rt) return;
  sigaction(SIGINT, &old_action, NULL);
  sig_rt = NULL;
  installed = 0;
}
