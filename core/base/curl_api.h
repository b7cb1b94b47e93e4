/* libcurl, loaded on first use (dl.c): linking it would pull in OpenSSL,
 * GnuTLS, Kerberos, LDAP... and their constructors at every start, several
 * times Lua's own start-up time.  Code that includes this header calls
 * curl_* as usual; the names go through a table of pointers. */
#ifndef LR_CURL_API_H
#define LR_CURL_API_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#define LR_CURL_FUNCS(X)                                                        \
  X(curl_global_init) X(curl_multi_init) X(curl_multi_setopt)                   \
  X(curl_multi_socket_action) X(curl_multi_info_read) X(curl_multi_add_handle)  \
  X(curl_multi_remove_handle) X(curl_multi_assign) X(curl_multi_cleanup)        \
  X(curl_multi_timeout)                                                         \
  X(curl_easy_init) X(curl_easy_setopt) X(curl_easy_getinfo)                    \
  X(curl_easy_cleanup) X(curl_easy_reset) X(curl_easy_perform)                  \
  X(curl_easy_strerror) X(curl_slist_append) X(curl_slist_free_all)

typedef struct {
#define LR_X(f) __typeof__(&f) f;
  LR_CURL_FUNCS(LR_X)
#undef LR_X
} lr_curl_api;

extern lr_curl_api lr__curl;

/* 0 when libcurl is loaded (once, thread-safe); else -1 and a message */
int lr__curl_load(char *err, size_t errlen);
/* Starts loading libcurl on a thread, for a program that will fetch: the
 * first fetch then finds it loaded (it waits for the thread if need be).
 * _join waits for the thread; call it before exit.  Both are idempotent. */
void lr__curl_preload(void);
void lr__curl_preload_join(void);

#ifndef LR_DL_IMPL
#define curl_global_init lr__curl.curl_global_init
#define curl_multi_init lr__curl.curl_multi_init
#undef curl_multi_setopt
#define curl_multi_setopt lr__curl.curl_multi_setopt
#define curl_multi_socket_action lr__curl.curl_multi_socket_action
#define curl_multi_info_read lr__curl.curl_multi_info_read
#define curl_multi_add_handle lr__curl.curl_multi_add_handle
#define curl_multi_remove_handle lr__curl.curl_multi_remove_handle
#define curl_multi_assign lr__curl.curl_multi_assign
#define curl_multi_cleanup lr__curl.curl_multi_cleanup
#define curl_multi_timeout lr__curl.curl_multi_timeout
#define curl_easy_init lr__curl.curl_easy_init
#undef curl_easy_setopt
#define curl_easy_setopt lr__curl.curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_getinfo lr__curl.curl_easy_getinfo
#define curl_easy_cleanup lr__curl.curl_easy_cleanup
#define curl_easy_reset lr__curl.curl_easy_reset
#define curl_easy_perform lr__curl.curl_easy_perform
#define curl_easy_strerror lr__curl.curl_easy_strerror
#define curl_slist_append lr__curl.curl_slist_append
#define curl_slist_free_all lr__curl.curl_slist_free_all
#endif

#endif
