/* Loading the big network libraries on first use (see curl_api.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define LR_DL_IMPL
#include "curl_api.h"
#include "mhd_api.h"

lr_curl_api lr__curl;
lr_mhd_api lr__mhd;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int curl_state = 0;  /* 0 not tried, 1 loaded, -1 failed */
static char curl_err[256];

int lr__curl_load(char *err, size_t errlen) {
  pthread_mutex_lock(&lock);
  if (curl_state == 0) {
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    curl_state = h ? 1 : -1;
    if (!h) snprintf(curl_err, sizeof curl_err, "cannot load libcurl.so.4: %s", dlerror());
#define LR_X(f)                                                           \
    if (curl_state == 1 && !(lr__curl.f = (__typeof__(&f))dlsym(h, #f))) { \
      curl_state = -1;                                                     \
      snprintf(curl_err, sizeof curl_err, "libcurl.so.4 lacks %s", #f);    \
    }
    LR_CURL_FUNCS(LR_X)
#undef LR_X
    if (curl_state == 1 && lr__curl.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      curl_state = -1;
      snprintf(curl_err, sizeof curl_err, "curl_global_init failed");
    }
  }
  int ok = curl_state == 1;
  pthread_mutex_unlock(&lock);
  if (!ok) snprintf(err, errlen, "%s", curl_err);
  return ok ? 0 : -1;
}

static int mhd_state = 0;
static char mhd_err[256];

int lr__mhd_load(char *err, size_t errlen) {
  pthread_mutex_lock(&lock);
  if (mhd_state == 0) {
    void *h = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
    mhd_state = h ? 1 : -1;
    if (!h) snprintf(mhd_err, sizeof mhd_err, "cannot load libmicrohttpd.so.12: %s", dlerror());
#define LR_X(f)                                                               \
    if (mhd_state == 1 && !(lr__mhd.f = (__typeof__(&f))dlsym(h, #f))) {       \
      mhd_state = -1;                                                          \
      snprintf(mhd_err, sizeof mhd_err, "libmicrohttpd.so.12 lacks %s", #f);   \
    }
    LR_MHD_FUNCS(LR_X)
#undef LR_X
  }
  int ok = mhd_state == 1;
  pthread_mutex_unlock(&lock);
  if (!ok) snprintf(err, errlen, "%s", mhd_err);
  return ok ? 0 : -1;
}
