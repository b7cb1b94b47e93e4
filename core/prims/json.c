/* JSON (RFC 8259) through jansson, converted to Lua values and from them.
 *
 * jansson parses and writes the text: it refuses invalid UTF-8 and lone
 * surrogates both ways, carries NUL bytes as \u0000 (JSON_ALLOW_NUL) and
 * integers as 64-bit json_int_t, and sorts object keys by their bytes.
 * What is left here is the Lua side: integers (math.type "integer") are
 * written in full, floats with enough digits to read back the same (one
 * precision for the whole text, the fewest that does), integral floats up to
 * 2^53 as integers (but -0.0 as -0.0); nan and inf are refused; tables nest at most 1000 levels
 * both ways (a cycle is one way to exceed it).  A number without fraction or
 * exponent decodes to an integer when it fits in 64 bits, and any number
 * whose value is integral and at most 2^53 in magnitude does too (but -0.0);
 * other numbers are floats.  JSON null is json.null, a light userdata, so it
 * survives in tables.  jansson 2.14 refuses \u0000 inside an object key when
 * decoding (values are fine). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/jansson_api.h"
#include "base/buf.h"
#include "prims/prims.h"

#define MAX_DEPTH 1000          /* deeper nesting is refused both ways (no C stack overflow) */
#define EXACT_INT 9007199254740992.0  /* 2^53: every integer up to it is a double */

/* Integral and exact as a double, so an integer both ways; -0.0 stays a
 * float, whose sign an integer would lose. */
static int as_integer(double x) {
  return floor(x) == x && fabs(x) <= EXACT_INT && !(x == 0 && signbit(x));
}

/* ---- the C side of a conversion ----------------------------------------------- */

/* What a conversion holds in C, in a userdata whose __gc frees it: a Lua
 * error (out of memory) in the middle then leaks nothing. */
typedef struct {
  json_t *v;   /* the root value, whose reference this holds */
  lr_buf text;  /* the encoded text */
} hold;

/* json_decref's own logic: the inline in jansson.h would call the real
 * json_delete, which is only reached through lr__jansson here. */
static void release(json_t *v) {
  if (v && v->refcount != (size_t)-1 && JSON_INTERNAL_DECREF(v) == 0) json_delete(v);
}

static int hold_gc(lua_State *L) {
  hold *h = lua_touserdata(L, 1);
  release(h->v);
  h->v = NULL;
  lr__buf_free(&h->text);
  return 0;
}

static hold *push_hold(lua_State *L) {
  hold *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->v = NULL;
  h->text = (lr_buf)LR_BUF_INIT;
  if (luaL_newmetatable(L, "lessonrun.json_hold")) {
    lua_pushcfunction(L, hold_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return h;
}

static void load_jansson(lua_State *L) {
  char err[256];
  if (lr__jansson_load(err, sizeof err) != 0) luaL_error(L, "%s", err);
}

/* ---- decoding ------------------------------------------------------------------ */

/* Offset of the bracket that opens level MAX_DEPTH + 1 in a text jansson
 * parsed that far, or len: jansson's own limit is deeper and it tells no
 * depth to its values, so the byte to blame is found here. */
static size_t too_deep_at(const char *s, size_t len) {
  int depth = 0, in_string = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') i++;
      else if (c == '"') in_string = 0;
    } else if (c == '"') {
      in_string = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > MAX_DEPTH) return i;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return len;
}

/* The 1-based byte to blame: where the token jansson complains about
 * starts, since its position counts the bytes read and its text ends "near
 * 'TOKEN'" (the token read so far) or "near end of file"; for invalid UTF-8,
 * the byte after that token. */
static size_t error_byte(const json_error_t *je) {
  size_t pos = je->position > 0 ? (size_t)je->position : 0;
  const char *near = strstr(je->text, " near '");
  if (json_error_code(je) == json_error_invalid_utf8) return pos + 1;  /* the byte after the token */
  if (near) {
    size_t n = strlen(near + 7);  /* the token and its closing quote */
    if (n >= 2 && near[7 + n - 1] == '\'' && n - 1 <= pos) return pos - (n - 1) + 1;
  }
  return pos + 1;
}

/* jansson 2.14 refuses \u0000 in an object key even with JSON_ALLOW_NUL
 * (values are fine), so such a text is read again with each \u0000 spelled
 * as a noncharacter that the text holds nowhere (one of U+FDD0..U+FDEF: the
 * same six bytes, so error positions hold), which push_string turns back
 * into a NUL byte.  Returns the copy (on the stack) and the stand-in's UTF-8
 * in nul, or NULL when the text holds all 32. */
static const char *nul_stand_in(lua_State *L, const char *s, size_t len, char nul[3]) {
  for (unsigned long cp = 0xFDD0; cp <= 0xFDEF; cp++) {
    char hex[5];
    snprintf(hex, sizeof hex, "%04lX", cp);
    lr__utf8_put(nul, cp);
    int held = memmem(s, len, nul, 3) != NULL;
    for (size_t i = 0; !held && i + 4 <= len; i++) held = strncasecmp(s + i, hex, 4) == 0;
    if (held) continue;
    char *t = lua_newuserdatauv(L, len ? len : 1, 0);
    memcpy(t, s, len);
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
      if (!in_string) {
        in_string = t[i] == '"';
      } else if (t[i] == '"') {
        in_string = 0;
      } else if (t[i] == '\\' && i + 1 < len) {
        if (t[i + 1] == 'u' && len - i >= 6 && memcmp(t + i + 2, "0000", 4) == 0) memcpy(t + i + 2, hex, 4);
        i++;
      }
    }
    return t;
  }
  return NULL;
}

/* Pushes s[0..n), each stand-in for NUL (3 bytes, nul) back to a NUL byte. */
static void push_string(lua_State *L, const char *s, size_t n, const char *nul) {
  const char *hit = nul ? memmem(s, n, nul, 3) : NULL;
  if (!hit) {
    lua_pushlstring(L, s, n);
    return;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *end = s + n;
  for (; hit; hit = memmem(s, (size_t)(end - s), nul, 3)) {
    luaL_addlstring(&b, s, (size_t)(hit - s));
    luaL_addchar(&b, '\0');
    s = hit + 3;
  }
  luaL_addlstring(&b, s, (size_t)(end - s));
  luaL_pushresult(&b);
}

/* Pushes v as a Lua value (nul: see nul_stand_in); 0 when it nests deeper
 * than MAX_DEPTH. */
static int push_value(lua_State *L, json_t *v, int depth, const char *nul) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: {
      if (depth >= MAX_DEPTH) return 0;
      luaL_checkstack(L, 4, "json_decode: too deeply nested");
      size_t n = json_object_size(v);
      lua_createtable(L, 0, n > INT_MAX ? INT_MAX : (int)n);
      for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
        push_string(L, json_object_iter_key(it), json_object_iter_key_len(it), nul);
        if (!push_value(L, json_object_iter_value(it), depth + 1, nul)) return 0;
        lua_rawset(L, -3);
      }
      return 1;
    }
    case JSON_ARRAY: {
      if (depth >= MAX_DEPTH) return 0;
      luaL_checkstack(L, 4, "json_decode: too deeply nested");
      size_t n = json_array_size(v);
      lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
      for (size_t i = 0; i < n; i++) {
        if (!push_value(L, json_array_get(v, i), depth + 1, nul)) return 0;
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      return 1;
    }
    case JSON_STRING: push_string(L, json_string_value(v), json_string_length(v), nul); return 1;
    case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(v)); return 1;
    case JSON_REAL: {
      double x = json_real_value(v);
      if (as_integer(x)) lua_pushinteger(L, (lua_Integer)x);
      else lua_pushnumber(L, (lua_Number)x);
      return 1;
    }
    case JSON_TRUE: lua_pushboolean(L, 1); return 1;
    case JSON_FALSE: lua_pushboolean(L, 0); return 1;
    default: lua_pushlightuserdata(L, NULL); return 1;  /* null: json.null */
  }
}

/* Decode s; on invalid JSON push nil and a message with the byte.  Raises
 * only when out of memory or when jansson cannot be loaded. */
int lr__json_decode(lua_State *L, const char *s, size_t len) {
  load_jansson(L);
  int top = lua_gettop(L);
  hold *h = push_hold(L);
  json_error_t je;
  size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
  /* a raw NUL byte is never JSON, but jansson takes one after the value as
   * the end: read only the text before it, then blame it unless that text
   * fails earlier */
  size_t full = len;
  const char *raw_nul = memchr(s, '\0', len);
  if (raw_nul) len = (size_t)(raw_nul - s);
  const char *text = s, *nul = NULL;
  char stand_in[3];
  while (!(h->v = json_loadb(text, len, flags, &je))) {
    enum json_error_code code = json_error_code(&je);
    /* an integer beyond 64 bits is a float, as in Lua's own lexer; jansson
     * can only read the whole text again with every number a double, so the
     * other integers of such a text are exact up to 2^53 only */
    if (code == json_error_numeric_overflow && strncmp(je.text, "too big", 7) == 0 &&
        !(flags & JSON_DECODE_INT_AS_REAL))
      flags |= JSON_DECODE_INT_AS_REAL;
    else if (code == json_error_null_byte_in_key && !nul && (text = nul_stand_in(L, s, len, stand_in)))
      nul = stand_in;
    else
      break;
  }
  const char *what = NULL;
  size_t at = 0;
  if (!h->v) {
    /* jansson leaves the text empty when an allocation fails while it builds
     * the value (it writes "out of memory" only where its lexer fails) */
    if (json_error_code(&je) == json_error_out_of_memory || je.text[0] == '\0' ||
        strcmp(je.text, "out of memory") == 0)
      return luaL_error(L, "not enough memory");
    if (json_error_code(&je) == json_error_stack_overflow) {
      what = "nested too deeply (more than 1000 levels)";
      at = too_deep_at(s, len) + 1;
    } else {
      what = je.text;
      at = error_byte(&je);
    }
  } else if (!push_value(L, h->v, 0, nul)) {
    what = "nested too deeply (more than 1000 levels)";
    at = too_deep_at(s, len) + 1;
  }
  /* the text before a NUL byte read well, or failed only for ending there */
  if (raw_nul && (!what || at > len || strstr(what, "near end of file") || strstr(what, "premature end of input"))) {
    what = "NUL byte";
    at = len + 1;
  }
  if (what) {
    release(h->v);  /* (the hold, popped, then frees nothing) */
    h->v = NULL;
    lua_settop(L, top);
    lua_pushnil(L);
    if (at > full)  /* jansson counts the end of the text as a byte read */
      lua_pushfstring(L, "invalid JSON at the end of %I bytes (%s)", (lua_Integer)full, what);
    else
      lua_pushfstring(L, "invalid JSON at byte %I of %I (%s)", (lua_Integer)at, (lua_Integer)full, what);
    return 0;
  }
  release(h->v);
  h->v = NULL;
  lua_replace(L, top + 1);  /* over the hold (and the stand-in text, if any) */
  lua_settop(L, top + 1);
  return 1;
}

/* ---- encoding ------------------------------------------------------------------- */

typedef struct {
  lua_State *L;
  hold *h;
  int digits;     /* for floats: the fewest that read every one of them back */
  char err[160];
} enc;

static int enc_fail(enc *e, const char *fmt, const char *arg) {
  snprintf(e->err, sizeof e->err, fmt, arg);
  return 0;
}

/* jansson refused s (a value or a key): invalid UTF-8, named by its byte,
 * or else out of memory. */
static int enc_refused(enc *e, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t len = lr__utf8_len(p + i, n - i);
    if (!len) {
      char at[32];
      snprintf(at, sizeof at, "%zu", i + 1);
      return enc_fail(e, "string is not valid UTF-8 (at byte %s)", at);
    }
    i += len;
  }
  luaL_error(e->L, "not enough memory");
  return 0;
}

/* Gives v (a new reference, NULL when jansson could not make it) to its
 * parent, under key k when the parent is an object, or to the hold as the
 * root: from then on whoever frees the root frees it. */
static int adopt(enc *e, json_t *parent, const char *k, size_t kn, json_t *v) {
  if (!v) return luaL_error(e->L, "not enough memory");
  if (!parent) e->h->v = v;
  else if (json_is_array(parent) ? json_array_append_new(parent, v) != 0
                                 : json_object_setn_new(parent, k, kn, v) != 0)
    return json_is_array(parent) ? luaL_error(e->L, "not enough memory") : enc_refused(e, k, kn);
  return 1;
}

/* The digits %.*g needs for x to read back as x (jansson's precision). */
static int float_digits(double x) {
  char text[40];
  for (int digits = 15; digits < 17; digits++) {
    snprintf(text, sizeof text, "%.*g", digits, x);
    if (strtod(text, NULL) == x) return digits;
  }
  return 17;
}

static int enc_value(enc *e, int idx, json_t *parent, const char *k, size_t kn, int depth);

static int enc_table(enc *e, int idx, json_t *parent, const char *k, size_t kn, int depth) {
  lua_State *L = e->L;
  if (depth >= MAX_DEPTH) return enc_fail(e, "%s", "table nested too deeply (a cycle?)");
  if (!lua_checkstack(L, 8)) return enc_fail(e, "%s", "table nested too deeply");
  lr__settle(L, idx);  /* a response encodes with its headers */
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    count++;
    lua_pop(L, 1);
  }
  if (n > 0 && count == n) {
    json_t *a = json_array();
    if (!adopt(e, parent, k, kn, a)) return 0;
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      int ok = enc_value(e, lua_gettop(L), a, NULL, 0, depth + 1);
      lua_pop(L, 1);
      if (!ok) return 0;
    }
    return 1;
  }
  json_t *o = json_object();  /* jansson sorts its keys when it writes them */
  if (!adopt(e, parent, k, kn, o)) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      return enc_fail(e, "%s", "object keys must be strings (or use an array 1..n)");
    }
    size_t len;
    const char *key = lua_tolstring(L, -2, &len);
    if (!enc_value(e, lua_gettop(L), o, key, len, depth + 1)) {
      lua_pop(L, 2);
      return 0;
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* Gives the value at idx (an absolute index) to parent, as adopt does. */
static int enc_value(enc *e, int idx, json_t *parent, const char *k, size_t kn, int depth) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: return adopt(e, parent, k, kn, json_null());
    case LUA_TBOOLEAN: return adopt(e, parent, k, kn, lua_toboolean(L, idx) ? json_true() : json_false());
    case LUA_TNUMBER: {
      if (lua_isinteger(L, idx)) return adopt(e, parent, k, kn, json_integer((json_int_t)lua_tointeger(L, idx)));
      double x = (double)lua_tonumber(L, idx);
      if (x != x || x - x != 0) return enc_fail(e, "%s", "cannot encode nan or inf");
      if (as_integer(x)) return adopt(e, parent, k, kn, json_integer((json_int_t)x));
      int digits = float_digits(x);
      if (digits > e->digits) e->digits = digits;
      return adopt(e, parent, k, kn, json_real(x));
    }
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      json_t *v = json_stringn(s, n);
      return v ? adopt(e, parent, k, kn, v) : enc_refused(e, s, n);
    }
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) return adopt(e, parent, k, kn, json_null());
      break;
    case LUA_TTABLE: return enc_table(e, idx, parent, k, kn, depth);
    default: break;
  }
  return enc_fail(e, "cannot encode a %s", luaL_typename(L, idx));
}

static int append_text(const char *buf, size_t size, void *data) {
  hold *h = data;
  return lr__buf_add(&h->text, buf, size) ? -1 : 0;
}

/* Pushes the JSON text for the value at idx, or returns 0 with the reason
 * in errbuf (the stack as it was).  Raises only when out of memory or when
 * jansson cannot be loaded. */
int lr__json_encode(lua_State *L, int idx, char *errbuf, size_t errlen) {
  idx = lua_absindex(L, idx);
  load_jansson(L);
  enc e = {L, push_hold(L), 15, ""};
  int slot = lua_gettop(L);
  if (!enc_value(&e, idx, NULL, NULL, 0, 0)) {
    snprintf(errbuf, errlen, "%s", e.err);
    release(e.h->v);
    e.h->v = NULL;
    lua_settop(L, slot - 1);
    return 0;
  }
  size_t flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(e.digits);
  if (json_dump_callback(e.h->v, append_text, e.h, flags) != 0) return luaL_error(L, "not enough memory");
  lua_pushlstring(L, e.h->text.p ? e.h->text.p : "", e.h->text.len);
  release(e.h->v);
  e.h->v = NULL;
  lr__buf_free(&e.h->text);
  lua_remove(L, slot);
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
