/* GNU readline for the REPL (rl.c), and Tab completion with it (complete.c). */
#ifndef LR_RL_H
#define LR_RL_H

#include <stdio.h>

#include <lua.h>
#include <readline/readline.h>
#include <readline/history.h>

/* GNU readline is loaded when a REPL starts on a terminal, not linked:
 * linking it (and libtinfo) would cost every script's start-up relocations
 * and page faults for something only the REPL uses (bench/README.md). */
#define RL_FUNCS(X)                                                         \
  X(rl_callback_handler_install) X(rl_callback_handler_remove)              \
  X(rl_callback_read_char) X(rl_replace_line) X(add_history)                \
  X(using_history) X(stifle_history) X(read_history) X(write_history)       \
  X(rl_copy_text) X(rl_save_prompt) X(rl_restore_prompt) X(rl_redisplay)

#define RL_VARS(X)                                                          \
  X(rl_catch_signals) X(rl_readline_name) X(rl_point) X(rl_end)             \
  X(rl_attempted_completion_function) X(rl_attempted_completion_over)       \
  X(rl_completion_append_character) X(rl_completer_word_break_characters)

/* readline's functions and the addresses of its variables, once loaded */
typedef struct {
#define X(f) __typeof__(&f) f;
  RL_FUNCS(X)
  RL_VARS(X)
#undef X
} lr_rl;
extern lr_rl lr__rl;

/* 0 when loaded; else -1 with the reason on stderr (the REPL then reads
 * plain lines) */
int lr__rl_load(void);

/* Tab completes the globals of L and their fields ("lessonrun.fe",
 * "t:wa") from now on; L must outlive the REPL. */
void lr__complete_setup(lua_State *L);

#endif
