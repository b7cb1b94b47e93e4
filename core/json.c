/* JSON through cJSON (Debian's libcjson): decode to Lua values, encode Lua
 * tables for fetch's json= option.  JSON null is json.null, a light
 * userdata, so it survives in tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson_api.h"

#include "lr.h"

#define MAX_DEPTH 200

static void push_value(lua_State *L, const cJSON *v, int depth) {
  luaL_checkstack(L, 4, "json: too deeply nested");
  if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
    int arr = cJSON_IsArray(v);
    lua_createtable(L, arr ? cJSON_GetArraySize(v) : 0, arr ? 0 : cJSON_GetArraySize(v));
    lua_Integer i = 1;
    for (const cJSON *c = v->child; c; c = c->next) {
      push_value(L, c, depth + 1);
      if (arr) lua_rawseti(L, -2, i++);
      else lua_setfield(L, -2, c->string ? c->string : "");
    }
  } else if (cJSON_IsString(v)) {
    lua_pushstring(L, v->valuestring);
  } else if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && (double)(lua_Integer)d == d)
      lua_pushinteger(L, (lua_Integer)d);
    else
      lua_pushnumber(L, d);
  } else if (cJSON_IsBool(v)) {
    lua_pushboolean(L, cJSON_IsTrue(v));
  } else {
    lua_pushlightuserdata(L, NULL);  /* json.null */
  }
}

/* Decode s; on invalid JSON push nil and a message with the offset. */
int lr__json_decode(lua_State *L, const char *s, size_t len) {
  const char *end = NULL;
  char err[256];
  if (lr__cjson_load(err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 0;
  }
  cJSON *root = cJSON_ParseWithLengthOpts(s, len, &end, 0);
  if (root) {  /* cJSON stops after the first value: the rest must be blank */
    const char *p = end ? end : s + len;
    while (p < s + len && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    if (p < s + len) {
      cJSON_Delete(root);
      root = NULL;
      end = p;
    }
  }
  if (!root) {
    size_t off = end ? (size_t)(end - s) : 0;
    lua_pushnil(L);
    lua_pushfstring(L, "invalid JSON at byte %I of %I", (lua_Integer)off + 1, (lua_Integer)len);
    return 0;
  }
  push_value(L, root, 0);  /* raises only when out of memory */
  cJSON_Delete(root);
  return 1;
}

/* ---- encoding ------------------------------------------------------------ */

static cJSON *encode(lua_State *L, int idx, int depth, const char **err) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL: return cJSON_CreateNull();
    case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
      lua_Number n = lua_tonumber(L, idx);
      if (n != n || n - n != 0) { *err = "cannot encode nan or inf"; return NULL; }
      return cJSON_CreateNumber(n);
    }
    case LUA_TSTRING: return cJSON_CreateString(lua_tostring(L, idx));
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) return cJSON_CreateNull();
      break;
    case LUA_TTABLE: {
      if (depth > MAX_DEPTH) { *err = "table nested too deeply (a cycle?)"; return NULL; }
      if (!lua_checkstack(L, 12)) { *err = "table nested too deeply"; return NULL; }
      idx = lua_absindex(L, idx);
      lr__response_settle(L, idx);  /* a response encodes with its headers */
      lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) { count++; lua_pop(L, 1); }
      int arr = n > 0 && count == n;
      cJSON *out = arr ? cJSON_CreateArray() : cJSON_CreateObject();
      if (!out) { *err = "out of memory"; return NULL; }
      if (arr) {
        for (lua_Integer i = 1; i <= n; i++) {
          lua_rawgeti(L, idx, i);
          cJSON *c = encode(L, -1, depth + 1, err);
          lua_pop(L, 1);
          if (!c) { cJSON_Delete(out); return NULL; }
          cJSON_AddItemToArray(out, c);
        }
        return out;
      }
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
          lua_pop(L, 2);
          cJSON_Delete(out);
          *err = "object keys must be strings (or use an array 1..n)";
          return NULL;
        }
        cJSON *c = encode(L, -1, depth + 1, err);
        if (!c) { lua_pop(L, 2); cJSON_Delete(out); return NULL; }
        cJSON_AddItemToObject(out, lua_tostring(L, -2), c);
        lua_pop(L, 1);
      }
      return out;
    }
    default: break;
  }
  static char msg[64];
  snprintf(msg, sizeof msg, "cannot encode a %s", luaL_typename(L, idx));
  *err = msg;
  return NULL;
}

/* Pushes the JSON text for the value at idx, or returns 0 with *err set. */
int lr__json_encode(lua_State *L, int idx, char *errbuf, size_t errlen) {
  const char *err = NULL;
  if (lr__cjson_load(errbuf, errlen) != 0) return 0;
  idx = lua_absindex(L, idx);
  cJSON *root = encode(L, idx, 0, &err);
  if (!root) {
    snprintf(errbuf, errlen, "%s", err ? err : "cannot encode");
    return 0;
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!s) { snprintf(errbuf, errlen, "out of memory"); return 0; }
  lua_pushstring(L, s);  /* may raise on OOM: s would leak; acceptable there */
  cJSON_free(s);
  return 1;
}

/* json_decode(s) -> value; raises {kind="json"} on invalid input */
static int l_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  if (!lr__json_decode(L, s, len)) {
    lr__push_errobj(L, "json", lua_pushfstring(L, "json_decode: %s", lua_tostring(L, -1)));
    return lua_error(L);
  }
  return 1;
}

/* json_encode(v) -> string */
static int l_encode(lua_State *L) {
  char err[256];
  luaL_checkany(L, 1);
  if (!lr__json_encode(L, 1, err, sizeof err)) return luaL_argerror(L, 1, err);
  return 1;
}

const luaL_Reg lr__json_funcs[] = {
  {"json_decode", l_decode}, {"json_encode", l_encode}, {NULL, NULL}
};
