/* semaphore(n): at most n holders at once; the others wait in FIFO order.
 * A released slot is handed straight to the first waiter, and a waiter that
 * is cancelled gives back (or passes on) what it held, so the count stays
 * right whatever is cancelled when. */
#include <string.h>

#include "prims/prims.h"

#define SEM_MT "lessonrun.Semaphore"

typedef struct sem_waiter sem_waiter;
typedef struct lr_sem lr_sem;

struct sem_waiter {
  sem_waiter *prev, *next;
  lr_sem *sem;
  lr_task *task;
  int granted;
  int linked;
};

struct lr_sem {
  lr_runtime *rt;
  lua_Integer count, limit;
  sem_waiter *head, *tail;
  lua_Integer nwait;
};

static void unlink_waiter(sem_waiter *w) {
  lr_sem *s = w->sem;
  if (!w->linked) return;
  if (w->prev) w->prev->next = w->next;
  else s->head = w->next;
  if (w->next) w->next->prev = w->prev;
  else s->tail = w->prev;
  w->prev = w->next = NULL;
  w->linked = 0;
  s->nwait--;
}

/* Give a slot back: to the first waiter if any, else to the count. */
static void give(lr_sem *s) {
  sem_waiter *w = s->head;
  if (w) {
    unlink_waiter(w);
    w->granted = 1;
    lr__wake(s->rt, w->task, LR_WAKE_OK);
  } else {
    s->count++;
  }
}

static void semaphore_cleanup(lr_runtime *rt, lr_task *t) { (void)rt; unlink_waiter(t->park_data); }

static lr_wait_kind semaphore_kind = {"semaphore", NULL, semaphore_cleanup, 0};

static int acquire_k(lua_State *L, int status, lua_KContext ctx) {
  sem_waiter *w = (sem_waiter *)ctx;
  lr_task *t = lr__current(L);
  (void)status;
  if (t->cancel_requested || t->wake != LR_WAKE_OK) {
    unlink_waiter(w);
    if (w->granted) { w->granted = 0; give(w->sem); }  /* pass it on */
    lr__check_cancel(L, w->sem->rt, t);
  }
  lua_settop(L, 1);
  return 1;
}

/* sem:acquire() -> sem, once a slot is free.  The result can be a
 * to-be-closed variable: local _ <close> = sem:acquire() */
static int s_acquire(lua_State *L) {
  lr_sem *s = luaL_checkudata(L, 1, SEM_MT);
  int nres;
  lua_settop(L, 1);
  lr_task *t = lr__wait_enter(L, s->rt, "acquire", s_acquire, 1, &nres);
  if (!t) return nres;
  if (s->count > 0 && !s->head) {
    s->count--;
    return 1;
  }
  lr__wait_yieldable(L, "acquire");
  sem_waiter *w = lua_newuserdatauv(L, sizeof *w, 0);
  memset(w, 0, sizeof *w);
  w->sem = s;
  w->task = t;
  w->linked = 1;
  w->prev = s->tail;
  if (s->tail) s->tail->next = w;
  else s->head = w;
  s->tail = w;
  s->nwait++;
  return lr__park(L, s->rt, t, &semaphore_kind, w, (lua_KContext)w, acquire_k);
}

/* sem:release(): return a slot; releasing more than was acquired is an error */
static int s_release(lua_State *L) {
  lr_sem *s = luaL_checkudata(L, 1, SEM_MT);
  if (!s->head && s->count >= s->limit)
    return luaL_error(L, "release: semaphore released more times than it was acquired");
  give(s);
  return 0;
}

static int s_close(lua_State *L) { return s_release(L); }

static int s_available(lua_State *L) {
  lua_pushinteger(L, ((lr_sem *)luaL_checkudata(L, 1, SEM_MT))->count);
  return 1;
}

static int s_waiting(lua_State *L) {
  lua_pushinteger(L, ((lr_sem *)luaL_checkudata(L, 1, SEM_MT))->nwait);
  return 1;
}

static int s_tostring(lua_State *L) {
  lr_sem *s = luaL_checkudata(L, 1, SEM_MT);
  lua_pushfstring(L, "semaphore (%I of %I free, %I waiting)", s->count, s->limit, s->nwait);
  return 1;
}

/* semaphore(n) -> a semaphore with n slots */
static int l_semaphore(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1, 1, "must be at least 1");
  lr_sem *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->rt = lr__runtime(L);
  s->count = s->limit = n;
  luaL_setmetatable(L, SEM_MT);
  return 1;
}

static const luaL_Reg sem_methods[] = {
  {"acquire", s_acquire}, {"release", s_release}, {"available", s_available},
  {"waiting", s_waiting}, {NULL, NULL}
};

/* core.semaphore_methods(): the method table, so the Lua side adds :with */
static int l_methods(lua_State *L) {
  luaL_getmetatable(L, SEM_MT);
  lua_getfield(L, -1, "__index");
  return 1;
}

void lr__semaphore_open(lua_State *L) {
  lr__wait_kind_register(&semaphore_kind);
  if (luaL_newmetatable(L, SEM_MT)) {
    lua_newtable(L);
    lua_getfield(L, LUA_REGISTRYINDEX, LR_RUNTIME_KEY);
    luaL_setfuncs(L, sem_methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, s_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, s_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

const luaL_Reg lr__semaphore_funcs[] = {
  {"semaphore", l_semaphore}, {"semaphore_methods", l_methods}, {NULL, NULL}
};
