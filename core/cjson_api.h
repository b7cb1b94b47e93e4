/* cJSON, loaded on first use (dl.c) like libcurl (curl_api.h): most runs
 * never touch JSON, and each shared library costs the dynamic loader a
 * measurable part of start-up.  json.c and server.c call cJSON_* as usual. */
#ifndef LR_CJSON_API_H
#define LR_CJSON_API_H

#include <cjson/cJSON.h>

#define LR_CJSON_FUNCS(X)                                                              \
  X(cJSON_AddItemToArray) X(cJSON_AddItemToObject) X(cJSON_AddNumberToObject)          \
  X(cJSON_AddStringToObject) X(cJSON_CreateArray) X(cJSON_CreateBool)                  \
  X(cJSON_CreateNull) X(cJSON_CreateNumber) X(cJSON_CreateObject) X(cJSON_CreateString) \
  X(cJSON_Delete) X(cJSON_DetachItemFromObjectCaseSensitive) X(cJSON_GetArraySize)     \
  X(cJSON_GetObjectItemCaseSensitive) X(cJSON_InsertItemInArray) X(cJSON_IsArray)      \
  X(cJSON_IsBool) X(cJSON_IsNumber) X(cJSON_IsObject) X(cJSON_IsString) X(cJSON_IsTrue) \
  X(cJSON_ParseWithLengthOpts) X(cJSON_Print) X(cJSON_PrintUnformatted)                \
  X(cJSON_ReplaceItemInObjectCaseSensitive) X(cJSON_free)

typedef struct {
#define LR_X(f) __typeof__(&f) f;
  LR_CJSON_FUNCS(LR_X)
#undef LR_X
} lr_cjson_api;

extern lr_cjson_api lr__cjson;

/* 0 when cJSON is loaded (once, thread-safe); else -1 and a message */
int lr__cjson_load(char *err, size_t errlen);

#ifndef LR_DL_IMPL
#define cJSON_AddItemToArray lr__cjson.cJSON_AddItemToArray
#define cJSON_AddItemToObject lr__cjson.cJSON_AddItemToObject
#define cJSON_AddNumberToObject lr__cjson.cJSON_AddNumberToObject
#define cJSON_AddStringToObject lr__cjson.cJSON_AddStringToObject
#define cJSON_CreateArray lr__cjson.cJSON_CreateArray
#define cJSON_CreateBool lr__cjson.cJSON_CreateBool
#define cJSON_CreateNull lr__cjson.cJSON_CreateNull
#define cJSON_CreateNumber lr__cjson.cJSON_CreateNumber
#define cJSON_CreateObject lr__cjson.cJSON_CreateObject
#define cJSON_CreateString lr__cjson.cJSON_CreateString
#define cJSON_Delete lr__cjson.cJSON_Delete
#define cJSON_DetachItemFromObjectCaseSensitive lr__cjson.cJSON_DetachItemFromObjectCaseSensitive
#define cJSON_GetArraySize lr__cjson.cJSON_GetArraySize
#define cJSON_GetObjectItemCaseSensitive lr__cjson.cJSON_GetObjectItemCaseSensitive
#define cJSON_InsertItemInArray lr__cjson.cJSON_InsertItemInArray
#define cJSON_IsArray lr__cjson.cJSON_IsArray
#define cJSON_IsBool lr__cjson.cJSON_IsBool
#define cJSON_IsNumber lr__cjson.cJSON_IsNumber
#define cJSON_IsObject lr__cjson.cJSON_IsObject
#define cJSON_IsString lr__cjson.cJSON_IsString
#define cJSON_IsTrue lr__cjson.cJSON_IsTrue
#define cJSON_ParseWithLengthOpts lr__cjson.cJSON_ParseWithLengthOpts
#define cJSON_Print lr__cjson.cJSON_Print
#define cJSON_PrintUnformatted lr__cjson.cJSON_PrintUnformatted
#define cJSON_ReplaceItemInObjectCaseSensitive lr__cjson.cJSON_ReplaceItemInObjectCaseSensitive
#define cJSON_free lr__cjson.cJSON_free
#endif

#endif
