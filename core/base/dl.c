/* Loading libraries on first use (see curl_api.h): libcurl, libmicrohttpd, jansson. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "base/base.h"
#include "base/thread.h"

#define LR_DL_IMPL
#include "base/curl_api.h"
#include "base/mhd_api.h"
#include "base/jansson_api.h"

lr_curl_api lr__curl;
lr_mhd_api lr__mhd;
lr_jansson_api lr__jansson;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int curl_state = 0;  /* 0 not tried, 2 opened (symbols found), 1 ready, -1 failed */
static char curl_err[256];

/* The preloader (lr__curl_preload) owns curl_state, curl_err and lr__curl
 * while it runs; every other reader joins it first, under lock. */
static pthread_t preloader;
static int preloading = 0;  /* started and not joined yet (under lock) */

int lr__dl_bind(const char *soname, const char *const *names, void **syms, size_t n, char *err,
                size_t errlen) {
  void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(err, errlen, "cannot load %s: %s", soname, dlerror());
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (!(syms[i] = dlsym(h, names[i]))) {
      snprintf(err, errlen, "%s lacks %s", soname, names[i]);
      dlclose(h);
      return -1;
    }
  }
  return 0;  /* the library stays loaded for the process */
}

#define LR_NAME(f) #f,
#define LR_SET(api, f) api.f = (__typeof__(&f))syms[i++];

/* dlopen and dlsym: the slow part (libcurl brings ~30 libraries, all bound
 * at once), safe on any thread. */
static void curl_open(void) {
  static const char *const names[] = { LR_CURL_FUNCS(LR_NAME) };
  void *syms[sizeof names / sizeof *names];
  if (lr__dl_bind("libcurl.so.4", names, syms, sizeof names / sizeof *names, curl_err,
                  sizeof curl_err) != 0) {
    curl_state = -1;
    return;
  }
  size_t i = 0;
#define LR_X(f) LR_SET(lr__curl, f)
  LR_CURL_FUNCS(LR_X)
#undef LR_X
  curl_state = 2;
}

static void join_preloader_locked(void) {
  if (!preloading) return;
  pthread_join(preloader, NULL);
  preloading = 0;
}

int lr__curl_load(char *err, size_t errlen) {
  pthread_mutex_lock(&lock);
  join_preloader_locked();
  if (curl_state == 0) curl_open();
  if (curl_state == 2) {
    curl_state = lr__curl.curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 1 : -1;
    if (curl_state != 1) snprintf(curl_err, sizeof curl_err, "curl_global_init failed");
  }
  int ok = curl_state == 1;
  pthread_mutex_unlock(&lock);
  if (!ok) snprintf(err, errlen, "%s", curl_err);
  return ok ? 0 : -1;
}

/* Only the loading: curl_global_init (OpenSSL's set-up) stays with the
 * first fetch, so that an exit meanwhile (os.exit) can find this thread at
 * worst inside dlopen, which exit waits for, never inside OpenSSL. */
static void *preload_main(void *arg) {
  (void)arg;
  curl_open();  /* a failure is reported by the first fetch */
  return NULL;
}

void lr__curl_preload(void) {
  pthread_mutex_lock(&lock);
  if (!preloading && curl_state == 0) {
    preloading = lr__thread_create_masked(&preloader, preload_main, NULL) == 0;
  }
  pthread_mutex_unlock(&lock);
}

void lr__curl_preload_join(void) {
  pthread_mutex_lock(&lock);
  join_preloader_locked();
  pthread_mutex_unlock(&lock);
}

/* The libraries without a preloader: bound once, on first use. */
typedef struct {
  const char *soname;
  const char *const *names;
  size_t n;
  void (*set)(void **syms);  /* syms -> the api table's fields */
  int state;                 /* 0 not tried, 1 ready, -1 failed */
  char err[256];
} lazy_lib;

static int load_once(lazy_lib *lib, char *err, size_t errlen) {
  pthread_mutex_lock(&lock);
  if (lib->state == 0) {
    void *syms[64];
    if (lib->n > sizeof syms / sizeof *syms) {
      snprintf(lib->err, sizeof lib->err, "%s: too many symbols", lib->soname);
      lib->state = -1;
    } else if (lr__dl_bind(lib->soname, lib->names, syms, lib->n, lib->err, sizeof lib->err) != 0) {
      lib->state = -1;
    } else {
      lib->set(syms);
      lib->state = 1;
    }
  }
  int ok = lib->state == 1;
  pthread_mutex_unlock(&lock);
  if (!ok) snprintf(err, errlen, "%s", lib->err);
  return ok ? 0 : -1;
}

/* One lazily bound library: its names, the setter of its api table, its
 * lazy_lib and its lr__<name>_load. */
#define LR_LAZY_LIB(name, soname, FUNCS, SETTER)                                          \
  static const char *const name##_names[] = { FUNCS(LR_NAME) };                          \
  static void name##_set(void **syms) {                                                   \
    size_t i = 0;                                                                          \
    FUNCS(SETTER)                                                                          \
  }                                                                                        \
  static lazy_lib name##_lib = { soname, name##_names,                                    \
                                 sizeof name##_names / sizeof *name##_names, name##_set, 0, "" }; \
  int lr__##name##_load(char *err, size_t errlen) { return load_once(&name##_lib, err, errlen); }

#define LR_SET_MHD(f) LR_SET(lr__mhd, f)
#define LR_SET_JANSSON(f) LR_SET(lr__jansson, f)
LR_LAZY_LIB(mhd, "libmicrohttpd.so.12", LR_MHD_FUNCS, LR_SET_MHD)
LR_LAZY_LIB(jansson, "libjansson.so.4", LR_JANSSON_FUNCS, LR_SET_JANSSON)
