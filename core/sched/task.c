/* Tasks: a coroutine plus its scheduling state.  C resumes them (only from
 * the driver, never from inside a libuv callback), parks them at wait
 * points, wakes and cancels them.  Lua sees a "lessonrun.Task" userdata. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lr.h"

#define TASK_MT "lessonrun.Task"

_Static_assert(sizeof(void *) != 8 || sizeof(lr_task) == 40, "lr_task grew: see lr.h");

/* ---- ready queue ------------------------------------------------------- */

/* A task is in the ready queue at most once, and only while unfinished, so
 * a queue with room for every live task never has to grow where growing
 * could fail without a way to say so (a wake in a libuv callback, the
 * cancellations at shutdown): spawn makes that room, or raises. */
static int rq_reserve(lr_runtime *rt, size_t n) {
  if (n <= rt->rq_cap) return 0;
  /* realloc (mremap for big rings: no copy, no second copy resident),
   * then move the part that wrapped around to just after the old end */
  size_t old = rt->rq_cap, cap = old ? old * 2 : 256;
  while (cap < n) cap *= 2;
  lr_task **q = realloc(rt->rq, cap * sizeof *q);
  if (!q) return -1;
  lr__advise_huge(q, cap * sizeof *q);
  size_t wrapped = rt->rq_head + rt->rq_len > old ? rt->rq_head + rt->rq_len - old : 0;
  memcpy(q + old, q, wrapped * sizeof *q);
  rt->rq = q;
  rt->rq_cap = cap;
  return 0;
}

static void rq_push(lr_runtime *rt, lr_task *t) {
  /* rq_len < nlive <= rq_cap: see rq_reserve */
  rt->rq[(rt->rq_head + rt->rq_len) % rt->rq_cap] = t;
  rt->rq_len++;
}

lr_task *lr__rq_pop(lr_runtime *rt) {
  lr_task *t = rt->rq[rt->rq_head];
  rt->rq_head = (rt->rq_head + 1) % rt->rq_cap;
  rt->rq_len--;
  /* (never below the live tasks, nor gone while any is live: rq_reserve) */
  if (rt->rq_len <= rt->rq_cap / 4 && rt->nlive <= rt->rq_cap / 2 && (rt->rq_len || !rt->nlive) &&
      rt->rq_cap * sizeof *rt->rq > LR_SHRINK_BYTES) {
    rt->rq = lr__ring_shrink(rt->rq, sizeof *rt->rq, &rt->rq_head, rt->rq_len, &rt->rq_cap);
  }
  return t;
}

/* ---- finding and creating tasks ---------------------------------------- */

lr_task *lr__current(lua_State *L) {
  lr_task *t = *(lr_task **)lua_getextraspace(L);
  return (t && t->co == L) ? t : NULL;
}

lr_task *lr__checktask(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, TASK_MT);
}

/* luaL_testudata without its lookup of the metatable by name */
lr_task *lr__totask(lua_State *L, lr_runtime *rt, int idx) {
  lr_task *t = lua_touserdata(L, idx);
  if (!t || !lua_getmetatable(L, idx)) return NULL;
  if (lua_topointer(L, -1) != rt->task_mt) t = NULL;
  lua_pop(L, 1);
  return t;
}

/* Unfinished tasks are anchored in one Lua array, live[1..nlive], each
 * knowing its slot (t->ref); a task that finishes swaps the last one into
 * its slot.  The array is also how the runtime walks its unfinished tasks,
 * so a task needs no list links of its own. */
void lr__push_task(lua_State *L, lr_runtime *rt, lr_task *t) {
  if (t->ref == LUA_NOREF) { lua_pushnil(L); return; }
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->live_ref);
  lua_rawgeti(L, -1, t->ref);
  lua_remove(L, -2);
}

lr_task *lr__live_at(lr_runtime *rt, size_t i) {
  lua_State *L = rt->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->live_ref);
  lua_rawgeti(L, -1, (lua_Integer)i);
  lr_task *t = lua_touserdata(L, -1);
  lua_pop(L, 2);
  return t;
}

/* Spawn a task running stack[first] with the nargs values after it as
 * arguments.  Pushes the task handle. */
lr_task *lr__spawn(lua_State *L, lr_runtime *rt, int first, int nargs) {
  luaL_checkstack(L, 3, NULL);
  if (rq_reserve(rt, rt->nlive + 1) != 0) luaL_error(L, "not enough memory");
  lr_task *t = lua_newuserdatauv(L, sizeof *t, 1);
  memset(t, 0, sizeof *t);
  t->heap_idx = LR_NO_HEAP;
  t->ref = LUA_NOREF;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->task_mt_ref);
  lua_setmetatable(L, -2);
  lua_State *co = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);
  if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "spawn: too many arguments");
  for (int i = 0; i <= nargs; i++) lua_pushvalue(L, first + i);
  lua_xmove(L, co, nargs + 1);
  t->co = co;
  *(lr_task **)lua_getextraspace(co) = t;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->live_ref);
  lua_pushvalue(L, -2);
  t->ref = (int)(rt->nlive + 1);
  lua_rawseti(L, -2, t->ref);
  lua_pop(L, 1);
  rt->nlive++;
  t->id = rt->next_id++;
  t->state = LR_PENDING;
  if (rt->trace) lr__trace_spawn(L, rt, t, first, nargs);
  rq_push(rt, t);
  return t;
}

/* ---- names, results, errors -------------------------------------------- */

/* The rare extras (a given name, the re-raised child) live in a weak-keyed
 * registry table, task -> table, rather than in a second uservalue that
 * every task would pay 16 bytes for. */
#define EXTRAS_KEY "lessonrun.task_extras"

/* Pushes the extras table of the task at idx, or nil (creating it if asked). */
static int push_extras_at(lua_State *L, int idx, int create) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, LUA_REGISTRYINDEX, EXTRAS_KEY);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) != LUA_TTABLE && create) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
  return lua_type(L, -1);
}

static void push_extra(lua_State *L, lr_runtime *rt, lr_task *t, int create) {
  lr__push_task(L, rt, t);
  push_extras_at(L, -1, create);
  lua_remove(L, -2);
}

static void push_name_of(lua_State *L, lr_task *t, int idx) {
  lua_Debug ar;
  lua_pushvalue(L, idx);
  if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0)
    lua_pushfstring(L, "task #%I (%s:%d)", (lua_Integer)t->id, ar.short_src, ar.linedefined);
  else if (ar.what && strcmp(ar.what, "main") == 0)
    lua_pushfstring(L, "task #%I (%s)", (lua_Integer)t->id, ar.short_src);
  else
    lua_pushfstring(L, "task #%I", (lua_Integer)t->id);
}

/* The deepest level of co's stack.  lua_getstack(co, n) walks n frames, so
 * probing each level in turn is quadratic in the depth: search instead, as
 * lauxlib's traceback does. */
static int bottom_level(lua_State *co) {
  lua_Debug ar;
  int lo = 0, hi = 1;
  if (!lua_getstack(co, 0, &ar)) return 0;
  while (lua_getstack(co, hi, &ar)) {
    lo = hi;
    if (hi > INT32_MAX / 2) return lo;
    hi *= 2;
  }
  while (hi - lo > 1) {  /* level lo exists, level hi does not */
    int mid = lo + (hi - lo) / 2;
    if (lua_getstack(co, mid, &ar)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* Pushes the name given with task:name(s), else one made from the task's
 * function ("task #3 (async.lua:4)"), when it can still be found.  idx is the
 * task's handle on L's stack, or 0 when it is not at hand. */
void lr__push_name(lua_State *L, lr_runtime *rt, lr_task *t, int idx) {
  int top = lua_gettop(L);
  if (idx) lua_pushvalue(L, idx);
  else lr__push_task(L, rt, t);
  if (lua_type(L, -1) == LUA_TUSERDATA && push_extras_at(L, -1, 0) == LUA_TTABLE &&
      lua_getfield(L, -1, "name") == LUA_TSTRING) {
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return;
  }
  lua_settop(L, top);
  lua_State *co = t->co;
  if (!co) {  /* returned: its coroutine is gone (keep_results) */
    lua_pushfstring(L, "task #%I", (lua_Integer)t->id);
    return;
  }
  if (t->state == LR_PENDING && lua_gettop(co) > 0) {
    lua_pushvalue(co, 1);
    lua_xmove(co, L, 1);
    push_name_of(L, t, -1);
    lua_remove(L, -2);
    return;
  }
  /* a started task: its function is the bottom frame of its stack */
  lua_Debug ar;
  if (lua_getstack(co, bottom_level(co), &ar) && lua_getinfo(co, "S", &ar)) {
    if (ar.linedefined > 0) {
      lua_pushfstring(L, "task #%I (%s:%d)", (lua_Integer)t->id, ar.short_src, ar.linedefined);
      return;
    }
    if (strcmp(ar.what, "main") == 0) {
      lua_pushfstring(L, "task #%I (%s)", (lua_Integer)t->id, ar.short_src);
      return;
    }
  }
  lua_pushfstring(L, "task #%I", (lua_Integer)t->id);
}

/* "task #3 (x.lua:4)", or "task 'fetcher' (x.lua:4)" for a named one: for
 * reports, where a bare given name could read as part of the message. */
static void push_label(lua_State *L, lr_runtime *rt, lr_task *t) {
  int top = lua_gettop(L);
  lr__push_task(L, rt, t);
  if (lua_type(L, -1) == LUA_TUSERDATA && push_extras_at(L, -1, 0) == LUA_TTABLE &&
      lua_getfield(L, -1, "name") == LUA_TSTRING) {
    lua_pushfstring(L, "task '%s'", lua_tostring(L, -1));
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return;
  }
  lua_settop(L, top);
  lr__push_name(L, rt, t, 0);
}

/* A task that returned gives up its coroutine (~1 KB, most of a task):
 * its n results move to the handle's uservalue (nothing when n == 0, the
 * value itself when n == 1, else an array) and n to park_data, so a program that keeps many
 * finished handles (gather's list, a fetch per task) keeps only them.  The
 * handle is on top of L; for n > 1, the table made by results_table is
 * below it and the live table. */
static void keep_results(lua_State *L, lr_task *t) {
  lua_State *co = t->co;
  int n = lua_gettop(co);
  luaL_checkstack(L, 3, NULL);
  if (n == 0) {
    lua_pushnil(L);
  } else if (n == 1) {
    lua_xmove(co, L, 1);
  } else {
    lua_pushvalue(L, -3);
    for (int i = n; i >= 1; i--) {
      lua_xmove(co, L, 1);
      lua_rawseti(L, -2, i);
    }
  }
  lua_setiuservalue(L, -2, 1);
  t->co = NULL;
  t->park_data = (void *)(uintptr_t)n;
}

static int new_table(lua_State *L) {
  lua_createtable(L, (int)lua_tointeger(L, 1), 0);
  return 1;
}

/* Pushes a table with room for n results and returns 1, or returns 0 when
 * memory ran out (protected: the driver cannot raise). */
static int results_table(lua_State *L, int n) {
  lua_pushcfunction(L, new_table);
  lua_pushinteger(L, n);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return 1;
  lua_pop(L, 1);
  return 0;
}

static int never_started(lua_State *L) {
  lua_pushfstring(L, "in task #%I: cancelled before it started", lua_tointeger(L, 1));
  return 1;
}

/* Pushes the traceback of a task cancelled before it ran (protected: the
 * driver cannot raise; out of memory, Lua's message instead). */
static void push_never_started(lua_State *L, lr_runtime *rt, lr_task *t) {
  lua_pushcfunction(L, never_started);
  lua_pushinteger(L, (lua_Integer)t->id);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return;
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->nomem_ref);
}

/* The results of a DONE task, whose handle is at idx. */
int lr__push_results(lua_State *L, lr_task *t, int idx, int first_only) {
  int n = (int)(uintptr_t)t->park_data;
  idx = lua_absindex(L, idx);
  if (first_only) {
    if (n == 0) { lua_pushnil(L); return 1; }
    lua_getiuservalue(L, idx, 1);
    if (n > 1) { lua_rawgeti(L, -1, 1); lua_remove(L, -2); }
    return 1;
  }
  luaL_checkstack(L, n + 1, "too many results");
  if (n == 0) return 0;
  lua_getiuservalue(L, idx, 1);
  if (n == 1) return 1;
  for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return n;
}

/* A FAILED or CANCELLED task keeps (error value, traceback) on its stack. */
static void observe(lr_task *t);

void lr__push_error(lua_State *L, lr_task *t) {
  observe(t);
  lua_pushvalue(t->co, -2);
  lua_xmove(t->co, L, 1);
}

void lr__push_traceback(lua_State *L, lr_task *t) {
  observe(t);
  lua_pushvalue(t->co, -1);
  lua_xmove(t->co, L, 1);
}

/* ---- groups: tasks waiting for tasks (lr.h) ---------------------------- */

static lr_group *group_new(lua_State *L, const char *fname, lr_task *waiter, int failfast) {
  lr_group *g = malloc(sizeof *g);
  if (!g) luaL_error(L, "%s: not enough memory", fname);
  g->waiter = waiter;
  g->first_failed = NULL;
  g->pending = 0;
  g->failfast = failfast;
  return g;
}

/* The waiter lets go: its wait is over or abandoned. */
static void group_leave(lr_group *g) {
  g->waiter = NULL;
  if (g->pending == 0) free(g);
}

/* A child lets go (it finished, or the runtime is closing). */
static void group_release(lr_group *g) {
  if (--g->pending == 0 && !g->waiter) free(g);
}

/* Make group g wait for the unfinished task c; 0, or -1 if out of memory.
 * Groups whose waiter has let go are dropped on the way, so that a task
 * waited on with a timeout again and again does not collect them. */
static int group_watch(lr_group *g, lr_task *c) {
  if (!c->many_watchers) {
    lr_group *old = c->watch.one;
    if (!old || !old->waiter) {
      if (old) group_release(old);
      c->watch.one = g;
      g->pending++;
      return 0;
    }
    lr_watchers *w = malloc(sizeof *w + 4 * sizeof w->group[0]);
    if (!w) return -1;
    w->n = 1;
    w->cap = 4;
    w->group[0] = old;
    c->watch.many = w;
    c->many_watchers = 1;
  }
  lr_watchers *w = c->watch.many;
  size_t n = 0;
  for (size_t i = 0; i < w->n; i++) {
    if (w->group[i]->waiter) w->group[n++] = w->group[i];
    else group_release(w->group[i]);
  }
  w->n = n;
  if (w->n == w->cap) {
    lr_watchers *bigger = realloc(w, sizeof *w + 2 * w->cap * sizeof w->group[0]);
    if (!bigger) return -1;
    bigger->cap *= 2;
    c->watch.many = w = bigger;
  }
  w->group[w->n++] = g;
  g->pending++;
  return 0;
}

/* Child t has finished: tell the group (if its waiter still waits), let go. */
static void group_notify(lr_runtime *rt, lr_group *g, lr_task *t) {
  if (g->waiter) {
    int failed = t->state != LR_DONE;
    if (failed && !g->first_failed) g->first_failed = t;
    else if (failed && g->failfast) observe(t);  /* gather raises the first: this one is its too (as asyncio's) */
    if (g->pending == 1 || (failed && g->failfast)) lr__wake(rt, g->waiter, LR_WAKE_OK);
  }
  group_release(g);
}

/* Let go of every group waiting for t (t finished, or the runtime closes). */
static void drop_watchers(lr_runtime *rt, lr_task *t) {
  if (t->many_watchers) {
    lr_watchers *w = t->watch.many;
    for (size_t i = 0; i < w->n; i++) {
      if (rt) group_notify(rt, w->group[i], t);
      else group_release(w->group[i]);
    }
    free(w);
    t->many_watchers = 0;
  } else if (t->watch.one) {
    if (rt) group_notify(rt, t->watch.one, t);
    else group_release(t->watch.one);
  }
  t->watch.one = NULL;
}

/* For the runtime's __gc: t will never finish. */
void lr__drop_watchers(lr_task *t) { drop_watchers(NULL, t); }

/* ---- finishing --------------------------------------------------------- */

static void finish(lr_runtime *rt, lr_task *t, int state) {
  t->state = state;
  if (rt->trace) lr__trace(rt, LR_EV_END, t, state);
  if (t == rt->root && state != LR_DONE && t->cancel_requested && rt->interrupted)
    t->interrupted = 1;
  if (t == rt->root) rt->root_state = state;
  drop_watchers(rt, t);
  /* out of the live array: the last task takes this one's slot */
  lua_State *L = rt->L;
  lua_checkstack(L, 3);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->live_ref);
  if (state == LR_DONE) {
    lua_rawgeti(L, -1, t->ref);
    keep_results(L, t);
    lua_pop(L, 1);
  }
  int last = (int)rt->nlive;
  if (t->ref != last) {
    lua_rawgeti(L, -1, last);
    ((lr_task *)lua_touserdata(L, -1))->ref = t->ref;
    lua_rawseti(L, -2, t->ref);
  }
  lua_pushnil(L);
  lua_rawseti(L, -2, last);
  lua_pop(L, 1);
  rt->nlive--;
  t->ref = LUA_NOREF;
}

/* 1 if a traceback line ("src:line: in ...") is a frame of lessonrun's own
 * Lua files, built in ("lessonrun/api.lua") or an edited copy on disk. */
static int ours_frame(const char *line, size_t n) {
  const char *in = memmem(line, n, ": in ", 5);
  if (!in) return 0;
  const char *end = in;  /* the source's end: before ":<line>", when there is one */
  while (end > line && end[-1] >= '0' && end[-1] <= '9') end--;
  end = end < in && end > line && end[-1] == ':' ? end - 1 : in;
  return lr__our_source(line, (size_t)(end - line));
}

/* Pushes the frames of luaL_traceback's text tb (its heading dropped) that
 * show the user's code: lessonrun's own frames go, and so do the C frames
 * they called (error, reraise, fetch...), so a traceback starts at the
 * user's line. */
static void push_user_frames(lua_State *L, const char *tb) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *p = strchr(tb, '\n'), *cstart = NULL;  /* cstart: a run of C frames not yet kept */
  while (p) {
    const char *next = strchr(p + 1, '\n'), *end = next ? next : p + strlen(p);
    const char *line = p + 2;  /* after "\n\t" */
    if (end - p > 2 && strncmp(line, "[C]: ", 5) == 0) {
      if (!cstart) cstart = p;
    } else {
      int ours = end - p > 2 && ours_frame(line, (size_t)(end - line));
      /* "(...tail calls...)" under nothing kept: our frames were what was tail-called */
      if (!cstart && luaL_bufflen(&b) == 0 && strncmp(line, "(...tail calls...)", 18) == 0) ours = 1;
      if (!ours) luaL_addlstring(&b, cstart ? cstart : p, (size_t)(end - (cstart ? cstart : p)));
      cstart = NULL;
    }
    p = next;
  }
  if (cstart) luaL_addstring(&b, cstart);
  luaL_pushresult(&b);
}

/* Build the traceback of a failed task; if it re-raised a child's error
 * (gather, wait), the child's traceback comes first.  Only the user's
 * frames are kept, and a child with none is left out. */
static void record_failure(lua_State *L, lr_runtime *rt, lr_task *t) {
  lua_State *co = t->co;
  int base = lua_gettop(L);
  lua_checkstack(co, 4);
  luaL_checkstack(L, 8, NULL);
  /* the re-raised child, if the error is the child's own */
  push_extra(L, rt, t, 0);
  lr_task *origin = NULL;
  if (lua_istable(L, -1) && lua_getfield(L, -1, "origin") == LUA_TUSERDATA) {
    origin = lua_touserdata(L, -1);
    lr__push_error(L, origin);
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
    if (!lua_rawequal(L, -1, -2)) origin = NULL;
  }
  lua_settop(L, base);
  if (origin) {
    lr__push_traceback(L, origin);
    if (strchr(lua_tostring(L, -1), '\n')) {
      lua_pushliteral(L, "\n");
    } else {  /* a heading alone: the child ran only lessonrun's code (fetch_all's workers) */
      lua_pop(L, 1);
      origin = NULL;
    }
  }
  lr__push_name(L, rt, t, 0);
  lua_pushfstring(L, origin ? "stack traceback of %s, which re-raised it:" : "stack traceback of %s:",
                  lua_tostring(L, -1));
  lua_remove(L, -2);
  luaL_traceback(L, co, NULL, 0);
  push_user_frames(L, lua_tostring(L, -1));
  lua_remove(L, -2);
  if (origin && lua_rawlen(L, -1) == 0) lua_settop(L, base + 1);  /* nothing of ours to add: the child's */
  lua_concat(L, lua_gettop(L) - base);
  lua_xmove(L, co, 1);
}

/* A failed task's error, until someone retrieves it (wait, gather, settle,
 * result, error, traceback): if nobody does before its handle is collected
 * or the state is closed, __gc reports it, as asyncio's "Task exception was
 * never retrieved".  Only failed tasks pay for one: it sits at the bottom
 * of their dead coroutine's stack, with the coroutine and the task's label
 * as its uservalues, and the task's park_data points to it. */
#define UNOBSERVED_MT "lessonrun.UnobservedError"
typedef struct {
  lr_runtime *rt;
  int observed;
} unobserved;

static void observe(lr_task *t) {
  unobserved *u = t->state == LR_FAILED ? t->park_data : NULL;
  if (u && !u->observed) {
    u->observed = 1;
    u->rt->unobserved--;
  }
}

static int unobserved_gc(lua_State *L) {
  unobserved *u = lua_touserdata(L, 1);
  if (!u || u->observed) return 0;
  u->observed = 1;
  u->rt->unobserved--;
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_State *co = lua_tothread(L, 2);
  lua_getiuservalue(L, 1, 2);
  if (!co || lua_gettop(co) < 3 || !lua_checkstack(L, 4)) return 0;
  lua_pushvalue(co, 2);
  lua_xmove(co, L, 1);
  lr__errtext(L, -1);  /* as lua.c words it: "(error object is a table value)" */
  lua_pushvalue(co, 3);
  lua_xmove(co, L, 1);
  const char *tb = lua_tostring(L, -1);
  fprintf(stderr, "lessonrun: %s failed and nobody waited for it: %s\n%s\n",
          lua_tostring(L, 3), lua_tostring(L, 4), tb ? tb : "");
  fflush(stderr);
  return 0;
}

/* precord(rt, t, failed) -> the unobserved-error sentinel or nil; leaves the
 * traceback on the task's coroutine. */
static int precord(lua_State *L) {
  lr_runtime *rt = lua_touserdata(L, 1);
  lr_task *t = lua_touserdata(L, 2);
  int failed = lua_toboolean(L, 3);
  lua_settop(L, 0);
  if (failed) {
    unobserved *u = lua_newuserdatauv(L, sizeof *u, 2);
    u->rt = rt;
    u->observed = 1;  /* until it is complete */
    luaL_setmetatable(L, UNOBSERVED_MT);
    lua_pushthread(t->co);
    lua_xmove(t->co, L, 1);
    lua_setiuservalue(L, 1, 1);
    push_label(L, rt, t);
    lua_setiuservalue(L, 1, 2);
  } else {
    lua_pushnil(L);
  }
  record_failure(L, rt, t);
  if (failed) ((unobserved *)lua_touserdata(L, 1))->observed = 0;
  return 1;
}

/* Memory is exhausted: every further resume would cost a full collection
 * that frees nothing.  The script ends with "not enough memory", as
 * lua5.4's would: its root task is cancelled and resumed first
 * (lr__run_ready holds the others back meanwhile). */
static void end_for_memory(lr_runtime *rt) {
  lr_task *r = rt->root;
  rt->oom = 1;
  if (!r || lr__finished(r)) return;
  lr__cancel(rt, r);
  for (size_t i = 0; i < rt->rq_len; i++) {  /* to the head of the queue */
    size_t k = (rt->rq_head + i) % rt->rq_cap;
    if (rt->rq[k] == r) {
      rt->rq[k] = rt->rq[rt->rq_head];
      rt->rq[rt->rq_head] = r;
      rt->oom = 2;
      return;
    }
  }
}

/* A task failed for memory: one of a burst is the task's own affair (as
 * in pcall), but a second of nothing else finishing is exhaustion. */
static void thrashing(lr_runtime *rt) {
  uint64_t now = uv_hrtime();
  if (rt->oom_streak++ == 0) rt->oom_since = now;
  else if (rt->oom_streak >= 8 && now - rt->oom_since > 1000000000u) end_for_memory(rt);
}

/* Resume a ready task and record what it did: park, finish or fail. */
void lr__resume(lr_runtime *rt, lr_task *t) {
  lua_State *co = t->co, *L = rt->L;
  int nargs = 0, nres = 0, st;
  if (lr__finished(t)) return;
  if (t->state == LR_PENDING) {
    if (t->cancel_requested) {  /* cancelled before it ever ran */
      lua_settop(co, 0);
      lr__push_cancel(co, rt);
      push_never_started(L, rt, t);
      lua_xmove(L, co, 1);
      finish(rt, t, LR_CANCELLED);
      return;
    }
    nargs = lua_gettop(co) - 1;
  }
  if (rt->oom == 2 && t == rt->root) rt->oom = 1;  /* it got its turn: the queue is in order again */
  t->wait = 0;  /* what it was woken with is its continuation's now */
  t->state = LR_RUNNING;
  lr_task *prev_cur = rt->current;
  lua_State *prev_run = rt->running;
  rt->current = t;
  rt->running = co;
  if (rt->trace) lr__trace(rt, LR_EV_RUN, t, 0);
  st = lua_resume(co, L, nargs, &nres);
  if (rt->trace) lr__trace(rt, LR_EV_STOP, t, 0);
  rt->current = prev_cur;
  rt->running = prev_run;
  if (st == LUA_YIELD) {
    if (t->state == LR_RUNNING) {  /* a bare coroutine.yield(): treat as sleep(0) */
      lua_pop(co, nres);
      t->state = LR_READY;
      rq_push(rt, t);
    }
    return;
  }
  if (st == LUA_OK) rt->oom_streak = 0;
  if (st == LUA_OK) {  /* the results are all that is left on its stack */
    if (nres <= 1 || results_table(L, nres)) {
      finish(rt, t, LR_DONE);
      if (nres > 1) lua_pop(L, 1);
      return;
    }
    lua_settop(co, 0);  /* no room for its results: it fails for want of memory */
    lua_rawgeti(co, LUA_REGISTRYINDEX, rt->nomem_ref);
    st = LUA_ERRMEM;
  }
  int cancelled = st != LUA_ERRMEM && lr__is_cancel(co, -1), sentinel = 0;
  if (st == LUA_ERRMEM && rt->shutting_down) rt->oom = 1;
  else if (st == LUA_ERRMEM && t != rt->root) thrashing(rt);
  else if (st == LUA_ERRMEM) rt->oom = 1;  /* the script ends for it: the others wait (lr__run_ready) */
  else rt->oom_streak = 0;
  /* its traceback and, if it failed, the report for when nobody looks:
   * built in protected mode, as both allocate and the driver cannot raise */
  if (!(rt->shutting_down && rt->oom) && lua_checkstack(L, 4) && lua_checkstack(co, 4)) {
    lua_pushcfunction(L, precord);
    lua_pushlightuserdata(L, rt);
    lua_pushlightuserdata(L, t);
    lua_pushboolean(L, !cancelled);
    if (lua_pcall(L, 3, 1, 0) == LUA_OK) {
      sentinel = !lua_isnil(L, -1);
    } else {  /* no memory even after an emergency collection: each further
               * failure would cost another */
      if (rt->shutting_down) rt->oom = 1;
      else if (t != rt->root) end_for_memory(rt);
      lua_pop(L, 1);
      lua_pushnil(L);
      lua_rawgeti(co, LUA_REGISTRYINDEX, rt->nomem_ref);
    }
  } else {
    lua_pushnil(L);
    lua_rawgeti(co, LUA_REGISTRYINDEX, rt->nomem_ref);
  }
  /* close its pending to-be-closed variables (a semaphore slot held with
   * <close>, say): move the traceback aside, reset, put it back */
  lua_xmove(co, L, 1);
  lua_resetthread(co);
  lua_xmove(L, co, 1);
  t->park_data = NULL;
  if (sentinel) {  /* below the error and the traceback: lr__push_error's -2 and -1 */
    lua_xmove(L, co, 1);
    lua_insert(co, 1);
    t->park_data = lua_touserdata(co, 1);
    rt->unobserved++;
    rt->nfailed++;
  } else {
    lua_pop(L, 1);
  }
  finish(rt, t, cancelled ? LR_CANCELLED : LR_FAILED);
}

/* ---- parking, waking, cancelling ---------------------------------------- */

void lr__wake(lr_runtime *rt, lr_task *t, int why) {
  if (t->state != LR_WAITING) return;
  if (rt->trace) lr__trace(rt, LR_EV_WAKE, t, 0);
  /* t->wait stays until its cleanup runs: if it never does (out of memory at
   * shutdown), the runtime's close still lets go of what it was given */
  t->wake = why;
  t->state = LR_READY;
  rq_push(rt, t);
  if (rt->polling) uv_stop(&rt->loop);  /* let the driver run it now */
}

int lr__park(lua_State *L, lr_runtime *rt, lr_task *t, const lr_wait_kind *kind,
             void *data, lua_KContext ctx, lua_KFunction k) {
  if (rt->trace) lr__trace(rt, LR_EV_PARK, t, kind->id);
  t->state = LR_WAITING;
  t->wait = kind->id;
  t->park_data = data;
  t->wake = LR_WAKE_OK;
  return lua_yieldk(L, 0, ctx, k);
}

/* The slow path of lr__check_cancel: t was cancelled or deadlocked. */
int lr__raise_wake_error(lua_State *L, lr_runtime *rt, lr_task *t) {
  if (t->cancel_requested) {
    t->cancel_delivered = 1;
    lr__push_cancel(L, rt);
    return lua_error(L);
  }
  if (t->wake == LR_WAKE_DEADLOCK) {
    t->wake = LR_WAKE_OK;
    return luaL_error(L, "deadlock: this task waits for something that can never happen "
                         "(every task is waiting and no timer or I/O is pending)");
  }
  return 0;
}

int lr__cancel(lr_runtime *rt, lr_task *t) {
  if (lr__finished(t)) return 0;
  if (t->cancel_requested) return 1;
  t->cancel_requested = 1;
  if (t->state == LR_WAITING) {
    lr__cleanup(rt, t);
    lr__wake(rt, t, LR_WAKE_CANCEL);
  }
  return 1;
}

/* ---- waiting for tasks --------------------------------------------------- */

/* A parked waiter lets go of its group once: in its continuation, or in
 * this cleanup if the wait is abandoned (cancel, deadlock, shutdown), which
 * the continuation then sees as park_data == NULL. */
static void group_cleanup(lr_runtime *rt, lr_task *t) {
  (void)rt;
  if (t->park_data) group_leave(t->park_data);
  t->park_data = NULL;
}

/* Called by a continuation: let go of the group if the cleanup has not;
 * returns the first child that failed (NULL if none, or if abandoned). */
static void wait_for_cleanup(lr_runtime *rt, lr_task *t);
static lr_wait_kind gather_kind = {"gather", NULL, group_cleanup, 0};
static lr_wait_kind wait_kind = {"wait", NULL, group_cleanup, 0};
static lr_wait_kind wait_for_kind = {"wait", NULL, wait_for_cleanup, 0};

static lr_task *group_done(lr_task *t) {
  lr_group *g = t->park_data;
  if (!g) return NULL;
  lr_task *first_failed = g->first_failed;
  group_leave(g);
  t->park_data = NULL;
  return first_failed;
}

/* Watch the unfinished task c, or let go of g and raise. */
static void group_watch_or_raise(lua_State *L, const char *fname, lr_group *g, lr_task *c) {
  if (group_watch(g, c) != 0) {
    group_leave(g);
    luaL_error(L, "%s: not enough memory", fname);
  }
}

/* The index in list[1..n] of the task `failed`, else (the list changed
 * meanwhile) of the first failed task there, else 0. */
static lua_Integer failed_index(lua_State *L, int list, lua_Integer n, lr_task *failed) {
  lua_Integer first = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    lr_task *c = lr__totask(L, lr__runtime(L), -1);
    lua_pop(L, 1);
    if (!c || !lr__finished(c) || c->state == LR_DONE) continue;
    if (c == failed) return i;
    if (!first) first = i;
  }
  return first;
}

/* Re-raise a finished task's error in the caller, remembering where it came
 * from so the report shows the child's traceback too. */
static int reraise(lua_State *L, int idx) {
  lr_task *from = lua_touserdata(L, idx);
  lr_task *cur = lr__current(L);
  idx = lua_absindex(L, idx);
  if (cur && cur != from) {
    push_extra(L, lr__runtime(L), cur, 1);
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, "origin");
    lua_pop(L, 1);
  }
  lr__push_error(L, from);
  return lua_error(L);
}

static int waitall_k(lua_State *L, int status, lua_KContext ctx) {
  lr_task *t = lr__current(L);
  (void)status; (void)ctx;
  lr_task *failed = group_done(t);
  lr__check_cancel(L, lr__runtime(L), t);
  lua_Integer i = failed ? failed_index(L, 1, luaL_checkinteger(L, 2), failed) : 0;
  if (i) lua_pushinteger(L, i);
  else lua_pushnil(L);
  return 1;
}

/* core.waitall(list, n, failfast) -> index of the first failed task or nil.
 * Waits until every task in list[1..n] has finished or, with failfast, until
 * one fails. */
static int l_waitall(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 2);
  int failfast = lua_toboolean(L, 3);
  luaL_argcheck(L, n >= 0 && n <= INT32_MAX, 2, "out of range");
  lr_runtime *rt = lr__runtime(L);
  lr_task *t = lr__current(L);
  /* one look at each (a million of them miss the cache): check, and count */
  int pending = 0, first_failed = 0, self = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lr_task *c = lr__totask(L, rt, -1);
    lua_pop(L, 1);
    if (!c) return luaL_error(L, "waitall: item %I is not a task", i);
    if (c == t) self = 1;
    if (!lr__finished(c)) pending++;
    else if (c->state != LR_DONE && !first_failed) first_failed = (int)i;
  }
  int nres;
  if (!lr__wait_enter(L, rt, "gather", l_waitall, lua_gettop(L), &nres)) return nres;
  if (self) return luaL_error(L, "gather: a task cannot wait for itself");
  if (pending == 0 || (failfast && first_failed)) {
    if (first_failed) lua_pushinteger(L, first_failed);
    else lua_pushnil(L);
    return 1;
  }
  lr__wait_yieldable(L, "gather");
  lr_group *g = group_new(L, "gather", t, failfast);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lr_task *c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!lr__finished(c)) group_watch_or_raise(L, "gather", g, c);
  }
  return lr__park(L, rt, t, &gather_kind, g, (lua_KContext)g, waitall_k);
}

/* c is the task at stack index 1 */
static int wait_finished(lua_State *L, lr_task *c) {
  if (c->state == LR_DONE) return lr__push_results(L, c, 1, 0);
  return reraise(L, 1);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  lr_task *t = lr__current(L);
  (void)status; (void)ctx;
  group_done(t);
  lr__check_cancel(L, lr__runtime(L), t);
  return wait_finished(L, lr__checktask(L, 1));
}

/* task:wait() -> the task's results, or raises its error. */
static int t_wait(lua_State *L) {
  lr_task *c = lr__checktask(L, 1);
  lr_task *t = lr__current(L);
  lr_runtime *rt = lr__runtime(L);
  lua_settop(L, 1);
  if (!t) {
    if (!lr__finished(c)) {
      if (rt->driving)
        return luaL_error(L, "wait: must be called from a task (this is a plain coroutine or a callback)");
      lr__drive_task(L, rt, c, "wait");
    }
    return wait_finished(L, c);
  }
  if (c == t) return luaL_error(L, "wait: a task cannot wait for itself");
  lr__check_cancel(L, rt, t);
  if (lr__finished(c)) return wait_finished(L, c);
  lr__wait_yieldable(L, "wait");
  lr_group *g = group_new(L, "wait", t, 0);
  group_watch_or_raise(L, "wait", g, c);
  return lr__park(L, rt, t, &wait_kind, g, (lua_KContext)g, wait_k);
}

/* core.wait_for(task, seconds) -> true if the task finished in time, false
 * if the time ran out first (the task goes on; the caller decides). */
static void wait_for_cleanup(lr_runtime *rt, lr_task *t) {
  group_cleanup(rt, t);
  lr__timer_remove(rt, t);
}

static int wait_for_k(lua_State *L, int status, lua_KContext ctx) {
  lr_task *t = lr__current(L);
  (void)status; (void)ctx;
  lr_runtime *rt = lr__runtime(L);
  group_done(t);
  lr__timer_remove(rt, t);
  lr__check_cancel(L, rt, t);
  lua_pushboolean(L, lr__finished(lr__checktask(L, 1)));
  return 1;
}

static int l_wait_for(lua_State *L) {
  lr_task *c = lr__checktask(L, 1);
  lua_Number s = luaL_checknumber(L, 2);
  luaL_argcheck(L, s >= 0, 2, "seconds must be >= 0");
  lua_settop(L, 2);
  if (c == lr__current(L)) return luaL_error(L, "timeout: a task cannot wait for itself");
  lr_runtime *rt = lr__runtime(L);
  int nres;
  lr_task *t = lr__wait_enter(L, rt, "timeout", l_wait_for, 2, &nres);
  if (!t) return nres;
  if (lr__finished(c)) { lua_pushboolean(L, 1); return 1; }
  lr__wait_yieldable(L, "timeout");
  lr_group *g = group_new(L, "timeout", t, 0);
  group_watch_or_raise(L, "timeout", g, c);
  if (!isinf(s) && lr__timer_add(rt, t, s) != 0) {
    group_leave(g);
    return luaL_error(L, "timeout: not enough memory");
  }
  return lr__park(L, rt, t, &wait_for_kind, g, (lua_KContext)g, wait_for_k);
}

/* Run a parked task's cleanup, if it has one left. */
void lr__cleanup(lr_runtime *rt, lr_task *t) {
  const lr_wait_kind *k = lr__wait_kind(t->wait);
  t->wait = 0;
  if (k && k->cleanup) k->cleanup(rt, t);
}

/* task:cancelling() -> true once cancel() was called on it */
static int t_cancelling(lua_State *L) {
  lua_pushboolean(L, lr__checktask(L, 1)->cancel_requested);
  return 1;
}

/* ---- the rest of the task API ------------------------------------------ */

static const char *const state_names[] = {
  "pending", "ready", "running", "waiting", "done", "failed", "cancelled"
};

static int t_state(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  lua_pushstring(L, state_names[t->state]);
  return 1;
}

static int t_done(lua_State *L) {
  lua_pushboolean(L, lr__finished(lr__checktask(L, 1)));
  return 1;
}

static int t_cancel(lua_State *L) {
  lua_pushboolean(L, lr__cancel(lr__runtime(L), lr__checktask(L, 1)));
  return 1;
}

/* task:result() -> results if done; raises its error if it failed; an error
 * if it has not finished (use wait to wait). */
static int t_result(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  if (!lr__finished(t)) return luaL_error(L, "result: %s has not finished (use wait)", state_names[t->state]);
  return wait_finished(L, t);
}

/* task:error() -> the error value of a failed/cancelled task, or nil */
static int t_error(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  if (t->state == LR_FAILED || t->state == LR_CANCELLED) lr__push_error(L, t);
  else lua_pushnil(L);
  return 1;
}

static int t_traceback(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  if (t->state == LR_FAILED || t->state == LR_CANCELLED) lr__push_traceback(L, t);
  else lua_pushnil(L);
  return 1;
}

/* task:name() -> its name; task:name(s) sets it and returns the task */
static int t_name(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lr__push_name(L, lr__runtime(L), t, 1);
    return 1;
  }
  luaL_checkstring(L, 2);
  push_extras_at(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "name");
  lua_settop(L, 1);
  return 1;
}

static int t_tostring(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  lr__push_name(L, lr__runtime(L), t, 1);
  lua_pushfstring(L, "%s [%s]", lua_tostring(L, -1), state_names[t->state]);
  return 1;
}

static int t_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lr__checktask(L, 1)->id);
  return 1;
}

static const luaL_Reg task_methods[] = {
  {"wait", t_wait}, {"cancel", t_cancel}, {"state", t_state}, {"done", t_done},
  {"result", t_result}, {"error", t_error}, {"traceback", t_traceback},
  {"name", t_name}, {"id", t_id}, {"cancelling", t_cancelling}, {NULL, NULL}
};

/* spawn(fn, ...) -> task */
static int l_spawn(lua_State *L) {
  if (lua_type(L, 1) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, 1, "__call") == LUA_TNIL) {
      lr__function_expected(L, 1, "spawn");
      if (lr__totask(L, lr__runtime(L), 1))
        return luaL_argerror(L, 1, "function expected, got lessonrun.Task; a task starts when it is spawned: "
                                   "wait for it with t:wait()");
      return luaL_typeerror(L, 1, "function");
    }
    lua_pop(L, 1);
  }
  lr__spawn(L, lr__runtime(L), 1, lua_gettop(L) - 1);
  return 1;
}

/* current() -> the running task, or nil outside tasks */
static int l_current(lua_State *L) {
  lr_task *t = lr__current(L);
  if (t) lr__push_task(L, lr__runtime(L), t);
  else lua_pushnil(L);
  return 1;
}

/* core.results(list, n) -> table of each task's first result (all DONE) */
static int l_results(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 2);
  lua_createtable(L, n > 0 && n < INT32_MAX ? (int)n : 0, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lr_task *t = lr__checktask(L, -1);
    if (!lr__finished(t))  /* the list was changed while gather waited */
      return luaL_error(L, "gather: item %I has not finished", i);
    if (t->state != LR_DONE) return reraise(L, -1);
    lr__push_results(L, t, -1, 1);
    lua_rawseti(L, -3, i);
    lua_pop(L, 1);
  }
  return 1;
}

/* core.reraise(task): raise a finished task's error in the caller */
static int l_reraise(lua_State *L) {
  lr_task *t = lr__checktask(L, 1);
  luaL_argcheck(L, t->state == LR_FAILED || t->state == LR_CANCELLED, 1, "task did not fail");
  return reraise(L, 1);
}

static int l_istask(lua_State *L) {
  lua_pushboolean(L, lr__totask(L, lr__runtime(L), 1) != NULL);
  return 1;
}

static int l_ntasks(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lr__runtime(L)->nlive);
  return 1;
}

/* core.refs() -> registry references the C side holds now */
static int l_refs(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lr__runtime(L)->nrefs);
  return 1;
}

const luaL_Reg lr__task_funcs[] = {
  {"spawn", l_spawn}, {"current", l_current}, {"waitall", l_waitall},
  {"results", l_results}, {"reraise", l_reraise}, {"istask", l_istask},
  {"ntasks", l_ntasks}, {"wait_for", l_wait_for}, {"refs", l_refs}, {NULL, NULL}
};

void lr__task_open(lua_State *L, lr_runtime *rt) {
  lr__wait_kind_register(&gather_kind);
  lr__wait_kind_register(&wait_kind);
  lr__wait_kind_register(&wait_for_kind);
  if (lua_getfield(L, LUA_REGISTRYINDEX, EXTRAS_KEY) != LUA_TTABLE) {
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_pushvalue(L, -1);
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, EXTRAS_KEY);
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, UNOBSERVED_MT)) {
    lua_pushcfunction(L, unobserved_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, TASK_MT)) {
    lua_newtable(L);
    lua_pushlightuserdata(L, rt);
    luaL_setfuncs(L, task_methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, t_tostring, 1);
    lua_setfield(L, -2, "__tostring");
    lua_pushstring(L, "lessonrun.Task");
    lua_setfield(L, -2, "__name");
  }
  if (rt->task_mt != lua_topointer(L, -1)) {  /* (opened again: the same table) */
    rt->task_mt = lua_topointer(L, -1);
    rt->task_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* for the runtime's life: not counted */
  } else {
    lua_pop(L, 1);
  }
}
