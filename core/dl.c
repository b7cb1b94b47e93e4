/* Loading the big network libraries on first use (see curl_api.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "lr.h"

#define LR_DL_IMPL
#include "curl_api.h"
#include "mhd_api.h"

lr_curl_api lr__curl;
lr_mhd_api lr__mhd;

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
    sigset_t all, old;  /* signals (Ctrl-C) stay with the main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    preloading = pthread_create(&preloader, NULL, preload_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  pthread_mutex_unlock(&lock);
}

void lr__curl_preload_join(void) {
  pthread_mutex_lock(&lock);
  join_preloader_locked();
  pthread_mutex_unlock(&lock);
}

static int mhd_state = 0;
static char mhd_err[256];

int lr__mhd_load(char *err, size_t errlen) {
  pthread_mutex_lock(&lock);
  if (mhd_state == 0) {
    static const char *const names[] = { LR_MHD_FUNCS(LR_NAME) };
    void *syms[sizeof names / sizeof *names];
    if (lr__dl_bind("libmicrohttpd.so.12", names, syms, sizeof names / sizeof *names, mhd_err,
                    sizeof mhd_err) != 0) {
      mhd_state = -1;
    } else {
      size_t i = 0;
#define LR_X(f) LR_SET(lr__mhd, f)
      LR_MHD_FUNCS(LR_X)
#undef LR_X
      mhd_state = 1;
    }
  }
  int ok = mhd_state == 1;
  pthread_mutex_unlock(&lock);
  if (!ok) snprintf(err, errlen, "%s", mhd_err);
  return ok ? 0 : -1;
}
