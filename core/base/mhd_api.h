/* GNU libmicrohttpd, loaded on first use (dl.c), for the same reason as
 * libcurl (curl_api.h): it pulls GnuTLS and its constructors into every
 * start otherwise.  server.c calls MHD_* as usual. */
#ifndef LR_MHD_API_H
#define LR_MHD_API_H

#include <microhttpd.h>

#define LR_MHD_FUNCS(X)                                                              \
  X(MHD_add_response_header) X(MHD_create_response_from_buffer)                     \
  X(MHD_create_response_from_buffer_with_free_callback)                             \
  X(MHD_create_response_from_callback) X(MHD_destroy_response)                      \
  X(MHD_get_connection_info) X(MHD_get_connection_values_n) X(MHD_get_daemon_info)    \
  X(MHD_get_reason_phrase_for) X(MHD_lookup_connection_value_n) X(MHD_queue_response) \
  X(MHD_resume_connection) X(MHD_start_daemon) X(MHD_stop_daemon)                  \
  X(MHD_suspend_connection)

typedef struct {
#define LR_X(f) __typeof__(&f) f;
  LR_MHD_FUNCS(LR_X)
#undef LR_X
} lr_mhd_api;

extern lr_mhd_api lr__mhd;

/* 0 when libmicrohttpd is loaded (once, thread-safe); else -1 and a message */
int lr__mhd_load(char *err, size_t errlen);

#ifndef LR_DL_IMPL
#define MHD_add_response_header lr__mhd.MHD_add_response_header
#define MHD_create_response_from_buffer lr__mhd.MHD_create_response_from_buffer
#define MHD_create_response_from_buffer_with_free_callback \
  lr__mhd.MHD_create_response_from_buffer_with_free_callback
#define MHD_create_response_from_callback lr__mhd.MHD_create_response_from_callback
#define MHD_destroy_response lr__mhd.MHD_destroy_response
#define MHD_get_connection_info lr__mhd.MHD_get_connection_info
#define MHD_get_connection_values_n lr__mhd.MHD_get_connection_values_n
#define MHD_get_daemon_info lr__mhd.MHD_get_daemon_info
#define MHD_get_reason_phrase_for lr__mhd.MHD_get_reason_phrase_for
#define MHD_lookup_connection_value_n lr__mhd.MHD_lookup_connection_value_n
#define MHD_queue_response lr__mhd.MHD_queue_response
#define MHD_resume_connection lr__mhd.MHD_resume_connection
#define MHD_start_daemon lr__mhd.MHD_start_daemon
#define MHD_stop_daemon lr__mhd.MHD_stop_daemon
#define MHD_suspend_connection lr__mhd.MHD_suspend_connection
#endif

#endif
