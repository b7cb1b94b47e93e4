/* jansson, loaded on first use (dl.c) like libmicrohttpd (mhd_api.h), because
 * most runs never touch JSON and every shared library linked in costs each
 * start its dynamic loading (and embedders a -ljansson).  json.c calls json_*
 * as usual; json_decref and the other inline helpers of jansson.h would call
 * the real symbols, so json.c does not use them. */
#ifndef LR_JANSSON_API_H
#define LR_JANSSON_API_H

#include <jansson.h>

#define LR_JANSSON_FUNCS(X)                                                            \
  X(json_array) X(json_array_append_new) X(json_array_get) X(json_array_size)          \
  X(json_delete) X(json_dump_callback) X(json_false) X(json_integer)                   \
  X(json_integer_value) X(json_loadb) X(json_null) X(json_object)                      \
  X(json_object_iter) X(json_object_iter_key) X(json_object_iter_key_len)              \
  X(json_object_iter_next) X(json_object_iter_value) X(json_object_setn_new)           \
  X(json_object_size) X(json_real) X(json_real_value) X(json_string_length)            \
  X(json_string_value) X(json_stringn) X(json_true)

typedef struct {
#define LR_X(f) __typeof__(&f) f;
  LR_JANSSON_FUNCS(LR_X)
#undef LR_X
} lr_jansson_api;

extern lr_jansson_api lr__jansson;

/* 0 when jansson is loaded (once, thread-safe); else -1 and a message */
int lr__jansson_load(char *err, size_t errlen);

#ifndef LR_DL_IMPL
#define json_array lr__jansson.json_array
#define json_array_append_new lr__jansson.json_array_append_new
#define json_array_get lr__jansson.json_array_get
#define json_array_size lr__jansson.json_array_size
#define json_delete lr__jansson.json_delete
#define json_dump_callback lr__jansson.json_dump_callback
#define json_false lr__jansson.json_false
#define json_integer lr__jansson.json_integer
#define json_integer_value lr__jansson.json_integer_value
#define json_loadb lr__jansson.json_loadb
#define json_null lr__jansson.json_null
#define json_object lr__jansson.json_object
#define json_object_iter lr__jansson.json_object_iter
#define json_object_iter_key lr__jansson.json_object_iter_key
#define json_object_iter_key_len lr__jansson.json_object_iter_key_len
#define json_object_iter_next lr__jansson.json_object_iter_next
#define json_object_iter_value lr__jansson.json_object_iter_value
#define json_object_setn_new lr__jansson.json_object_setn_new
#define json_object_size lr__jansson.json_object_size
#define json_real lr__jansson.json_real
#define json_real_value lr__jansson.json_real_value
#define json_string_length lr__jansson.json_string_length
#define json_string_value lr__jansson.json_string_value
#define json_stringn lr__jansson.json_stringn
#define json_true lr__jansson.json_true
#endif

#endif
