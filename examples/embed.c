/* embed.c: lessonrun inside your own C program.  A chunk runs as the root
 * task, so sleep and gather work at its top level.
 *   cc embed.c $(pkg-config --cflags --libs lessonrun) -o embed */
#include <stdio.h>
#include <lessonrun.h>

int main(void) {
  lr_state *S = lr_new();
  if (!S) return 1;
  lua_pushstring(lr_lua(S), "C");  /* the Lua state is yours to extend */
  lua_setglobal(lr_lua(S), "host");
  const char *breakfast =
      "local t0 = now()\n"
      "local a, b = gather(function() sleep(0.3) return 'tea' end,\n"
      "                    function() sleep(0.3) return 'toast' end)\n"
      "print(('%s and %s from %s in %.2f s'):format(a, b, host, now() - t0))";
  if (lr_dostring(S, breakfast, "=breakfast") != LR_OK)
    fprintf(stderr, "%s\n", lr_errmsg(S));
  /* an error: a status, and a message with the task's traceback */
  if (lr_dostring(S, "sleep(0.01) error('burnt toast')", "=kitchen") == LR_ERROR)
    printf("error, as expected: %s\n", lr_errmsg(S));
  lr_close(S);
  return 0;
}
