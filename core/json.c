/* JSON (RFC 8259), decoded to Lua values and encoded from them, by hand
 * rather than through cJSON: cJSON keeps strings as C strings (a NUL byte
 * ends them) and numbers as doubles (integers past 2^53 change), and JSON
 * text must carry both exactly.
 *
 * Strings are bytes in Lua and UTF-8 in JSON: decoding and encoding refuse
 * invalid UTF-8 (and lone surrogates) instead of passing it through, so what
 * comes out is always valid JSON.  Integers (math.type "integer") are written
 * in full; floats with the fewest digits that read back to the same double;
 * nan and inf are refused; object keys come out in byte order.  A number
 * without fraction or exponent decodes to an integer when it fits in 64
 * bits, and any number whose value is integral and at most 2^53 in
 * magnitude does too; other numbers are floats.  JSON null is json.null, a
 * light userdata, so it survives in tables. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lr.h"

#define MAX_DEPTH 1000  /* deeper nesting is refused both ways (no C stack overflow) */

/* ---- UTF-8 ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0: no
 * overlongs, no surrogates, nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;  /* bounds of the second byte */
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return len;
}

static char *put_utf8(char *d, unsigned long cp) {
  if (cp < 0x80) {
    *d++ = (char)cp;
  } else if (cp < 0x800) {
    *d++ = (char)(0xC0 | (cp >> 6));
    *d++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *d++ = (char)(0xE0 | (cp >> 12));
    *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *d++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *d++ = (char)(0xF0 | (cp >> 18));
    *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *d++ = (char)(0x80 | (cp & 0x3F));
  }
  return d;
}

/* Writes s[0..n) as a quoted JSON string to dst (room for
 * LR_JSON_QUOTE_MAX(n) bytes) and returns its length.  Invalid UTF-8 becomes
 * U+FFFD when replace is set; otherwise it returns 0 with its offset in *bad. */
size_t lr__json_quote(char *dst, const char *s, size_t n, int replace, size_t *bad) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  char *d = dst;
  *d++ = '"';
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    if (c >= 0x80) {
      size_t len = utf8_len(p + i, n - i);
      if (len == 0) {
        if (!replace) {
          if (bad) *bad = i;
          return 0;
        }
        d = put_utf8(d, 0xFFFD);
        i++;
        continue;
      }
      memcpy(d, p + i, len);
      d += len;
      i += len;
      continue;
    }
    i++;
    if (c == '"' || c == '\\') {
      *d++ = '\\';
      *d++ = (char)c;
    } else if (c >= 0x20) {
      *d++ = (char)c;
    } else {
      *d++ = '\\';
      switch (c) {
        case '\b': *d++ = 'b'; break;
        case '\f': *d++ = 'f'; break;
        case '\n': *d++ = 'n'; break;
        case '\r': *d++ = 'r'; break;
        case '\t': *d++ = 't'; break;
        default:
          memcpy(d, "u00", 3);
          d[3] = hex[c >> 4];
          d[4] = hex[c & 15];
          d += 5;
      }
    }
  }
  *d++ = '"';
  return (size_t)(d - dst);
}

/* ---- decoding ------------------------------------------------------------------ */

typedef struct {
  lua_State *L;
  const char *s, *p, *end;
  const char *err;          /* what is wrong at p */
} dec;

static int fail(dec *d, const char *where, const char *what) {
  d->p = where;
  d->err = what;
  return 0;
}

static void skip_ws(dec *d) {
  while (d->p < d->end && (*d->p == ' ' || *d->p == '\t' || *d->p == '\n' || *d->p == '\r')) d->p++;
}

static int hex4(const char *p, const char *end, unsigned long *out) {
  unsigned long v = 0;
  if (end - p < 4) return 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned long)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned long)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned long)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

/* The string at d->p (just after its opening quote), pushed as Lua bytes. */
static int dec_string(dec *d) {
  const char *start = d->p, *q = start;
  int escaped = 0;
  while (q < d->end && *q != '"') {
    unsigned char c = (unsigned char)*q;
    if (c == '\\') {
      escaped = 1;
      q += 2;
    } else if (c < 0x20) {
      return fail(d, q, "control character in a string (escape it)");
    } else if (c >= 0x80) {
      size_t len = utf8_len((const unsigned char *)q, (size_t)(d->end - q));
      if (!len) return fail(d, q, "invalid UTF-8 in a string");
      q += len;
    } else {
      q++;
    }
  }
  if (q >= d->end) return fail(d, start - 1, "unterminated string");
  if (!escaped) {
    lua_pushlstring(d->L, start, (size_t)(q - start));
    d->p = q + 1;
    return 1;
  }
  luaL_Buffer b;
  /* escapes only shrink: the raw length is enough room */
  char *out = luaL_buffinitsize(d->L, &b, (size_t)(q - start)), *o = out;
  for (const char *p = start; p < q;) {
    if (*p != '\\') {
      *o++ = *p++;
      continue;
    }
    const char *esc = p;
    p++;
    switch (*p++) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned long cp, lo;
        if (!hex4(p, q, &cp)) return fail(d, esc, "invalid \\u escape (four hex digits expected)");
        p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(d, esc, "invalid \\u escape (a lone low surrogate)");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (q - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, q, &lo) || lo < 0xDC00 ||
              lo > 0xDFFF)
            return fail(d, esc, "invalid \\u escape (a high surrogate without its low half)");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
        o = put_utf8(o, cp);  /* at most 4 bytes for 6 or 12 read */
        break;
      }
      default: return fail(d, esc, "invalid escape in a string");
    }
  }
  luaL_addsize(&b, (size_t)(o - out));
  luaL_pushresult(&b);
  d->p = q + 1;
  return 1;
}

static int dec_number(dec *d) {
  const char *start = d->p, *p = start, *end = d->end;
  int neg = 0, integral = 1;
  if (p < end && *p == '-') {
    neg = 1;
    p++;
  }
  if (p >= end || *p < '0' || *p > '9') return fail(d, start, "invalid number");
  if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')
    return fail(d, start, "invalid number (no leading zeros)");
  const char *digits = p;
  while (p < end && *p >= '0' && *p <= '9') p++;
  if (p < end && *p == '.') {
    integral = 0;
    p++;
    if (p >= end || *p < '0' || *p > '9') return fail(d, start, "invalid number (digits expected after '.')");
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    integral = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || *p < '0' || *p > '9') return fail(d, start, "invalid number (digits expected in the exponent)");
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  d->p = p;
  if (integral) {  /* exact when it fits in 64 bits */
    unsigned long long v = 0, limit = neg ? (unsigned long long)LUA_MAXINTEGER + 1 : LUA_MAXINTEGER;
    int fits = 1;
    for (const char *q = digits; q < p && fits; q++) {
      unsigned dig = (unsigned)(*q - '0');
      if (v > (limit - dig) / 10) fits = 0;
      else v = v * 10 + dig;
    }
    if (fits) {
      lua_pushinteger(d->L, neg ? (lua_Integer)(0 - v) : (lua_Integer)v);
      return 1;
    }
  }
  /* strtod wants a terminated text with the locale's decimal point */
  size_t len = (size_t)(p - start);
  char small[64], *text = small;
  if (len >= sizeof small) {
    lua_pushlstring(d->L, start, len);  /* a terminated copy, popped below */
    text = (char *)lua_tostring(d->L, -1);
  } else {
    memcpy(small, start, len);
    small[len] = '\0';
  }
  char point = localeconv()->decimal_point[0];
  char *dot = strchr(text, '.');
  if (dot) *dot = point;
  double v = strtod(text, NULL);
  if (text != small) lua_pop(d->L, 1);
  if (v - v != 0) return fail(d, start, "number out of range (beyond a double)");
  if (v >= -9007199254740992.0 && v <= 9007199254740992.0 && floor(v) == v)
    lua_pushinteger(d->L, (lua_Integer)v);
  else
    lua_pushnumber(d->L, v);
  return 1;
}

static int dec_literal(dec *d, const char *word, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0) return fail(d, d->p, "invalid value");
  d->p += n;
  return 1;
}

static int dec_value(dec *d, int depth) {
  lua_State *L = d->L;
  skip_ws(d);
  if (d->p >= d->end) return fail(d, d->p, "value expected");
  char c = *d->p;
  if (c == '{' || c == '[') {
    if (depth >= MAX_DEPTH) return fail(d, d->p, "nested too deeply (more than 1000 levels)");
    luaL_checkstack(L, 4, "json_decode: too deeply nested");
    const char *open = d->p++;
    char close = c == '{' ? '}' : ']';
    lua_newtable(L);
    lua_Integer i = 0;
    skip_ws(d);
    if (d->p < d->end && *d->p == close) {
      d->p++;
      return 1;
    }
    for (;;) {
      if (c == '{') {
        skip_ws(d);
        if (d->p >= d->end || *d->p != '"') return fail(d, d->p, "object key (a string) expected");
        d->p++;
        if (!dec_string(d)) return 0;
        skip_ws(d);
        if (d->p >= d->end || *d->p != ':') return fail(d, d->p, "':' expected after an object key");
        d->p++;
        if (!dec_value(d, depth + 1)) return 0;
        lua_rawset(L, -3);
      } else {
        if (!dec_value(d, depth + 1)) return 0;
        lua_rawseti(L, -2, ++i);
      }
      skip_ws(d);
      if (d->p < d->end && *d->p == ',') {
        d->p++;
        continue;
      }
      if (d->p < d->end && *d->p == close) {
        d->p++;
        return 1;
      }
      return fail(d, d->p >= d->end ? open : d->p,
                  d->p >= d->end ? (c == '{' ? "unterminated object" : "unterminated array")
                                 : (c == '{' ? "',' or '}' expected" : "',' or ']' expected"));
    }
  }
  if (c == '"') {
    d->p++;
    return dec_string(d);
  }
  if (c == '-' || (c >= '0' && c <= '9')) return dec_number(d);
  if (c == 't') {
    if (!dec_literal(d, "true", 4)) return 0;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (c == 'f') {
    if (!dec_literal(d, "false", 5)) return 0;
    lua_pushboolean(L, 0);
    return 1;
  }
  if (c == 'n') {
    if (!dec_literal(d, "null", 4)) return 0;
    lua_pushlightuserdata(L, NULL);  /* json.null */
    return 1;
  }
  return fail(d, d->p, "invalid value");
}

/* Decode s; on invalid JSON push nil and a message with the offset.  Raises
 * only when out of memory. */
int lr__json_decode(lua_State *L, const char *s, size_t len) {
  dec d = {L, s, s, s + len, NULL};
  int top = lua_gettop(L);
  int ok = dec_value(&d, 0);
  if (ok) {
    skip_ws(&d);
    if (d.p < d.end) ok = fail(&d, d.p, "text after the value");
  }
  if (!ok) {
    lua_settop(L, top);
    lua_pushnil(L);
    lua_pushfstring(L, "invalid JSON at byte %I of %I (%s)", (lua_Integer)(d.p - s) + 1,
                    (lua_Integer)len, d.err);
    return 0;
  }
  return 1;
}

/* ---- encoding ------------------------------------------------------------------- */

/* The output grows in a userdata at a fixed stack slot, not a luaL_Buffer:
 * keys and values are pushed above it while it grows, and an out-of-memory
 * error leaves nothing to free. */
typedef struct {
  lua_State *L;
  int slot;
  char *buf;
  size_t len, cap;
  char err[160];
} enc;

static char *enc_room(enc *e, size_t n) {
  if (e->cap - e->len < n) {
    size_t cap = e->cap * 2;
    while (cap - e->len < n) cap *= 2;
    char *nb = lua_newuserdatauv(e->L, cap, 0);
    memcpy(nb, e->buf, e->len);
    lua_replace(e->L, e->slot);
    e->buf = nb;
    e->cap = cap;
  }
  return e->buf + e->len;
}

static void enc_add(enc *e, const char *s, size_t n) {
  memcpy(enc_room(e, n), s, n);
  e->len += n;
}

#define enc_lit(e, s) enc_add((e), (s), sizeof(s) - 1)

static int enc_fail(enc *e, const char *fmt, const char *arg) {
  snprintf(e->err, sizeof e->err, fmt, arg);
  return 0;
}

static int enc_string(enc *e, const char *s, size_t n) {
  size_t bad;
  if (n > ((size_t)-1 - 2) / 6) return enc_fail(e, "%s", "string too long");
  char *dst = enc_room(e, LR_JSON_QUOTE_MAX(n));
  size_t w = lr__json_quote(dst, s, n, 0, &bad);
  if (!w) {
    char at[32];
    snprintf(at, sizeof at, "%zu", bad + 1);
    return enc_fail(e, "string is not valid UTF-8 (at byte %s)", at);
  }
  e->len += w;
  return 1;
}

/* The shortest %.Ng that reads back as the same double. */
static void enc_float(enc *e, double v) {
  char text[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(text, sizeof text, "%.*g", prec, v);
    if (strtod(text, NULL) == v) break;
  }
  char point = localeconv()->decimal_point[0];
  for (char *p = text; *p; p++)
    if (*p == point) *p = '.';
  enc_add(e, text, strlen(text));
}

typedef struct {
  const char *s;
  size_t n;
} keyref;

static int key_order(const void *pa, const void *pb) {
  const keyref *a = pa, *b = pb;
  int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
  return c ? c : (a->n > b->n) - (a->n < b->n);
}

/* Appends the value at idx (an absolute index). */
static int enc_value(enc *e, int idx, int depth) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: enc_lit(e, "null"); return 1;
    case LUA_TBOOLEAN: if (lua_toboolean(L, idx)) enc_lit(e, "true"); else enc_lit(e, "false"); return 1;
    case LUA_TNUMBER: {
      if (lua_isinteger(L, idx)) {
        char text[32];
        snprintf(text, sizeof text, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
        enc_add(e, text, strlen(text));
        return 1;
      }
      lua_Number n = lua_tonumber(L, idx);
      if (n != n || n - n != 0) return enc_fail(e, "%s", "cannot encode nan or inf");
      enc_float(e, (double)n);
      return 1;
    }
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      return enc_string(e, s, n);
    }
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) {
        enc_lit(e, "null");
        return 1;
      }
      break;
    case LUA_TTABLE: {
      if (depth >= MAX_DEPTH) return enc_fail(e, "%s", "table nested too deeply (a cycle?)");
      if (!lua_checkstack(L, 8)) return enc_fail(e, "%s", "table nested too deeply");
      lr__response_settle(L, idx);  /* a response encodes with its headers */
      lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        count++;
        lua_pop(L, 1);
      }
      if (n > 0 && count == n) {
        enc_add(e, "[", 1);
        for (lua_Integer i = 1; i <= n; i++) {
          if (i > 1) enc_add(e, ",", 1);
          lua_rawgeti(L, idx, i);
          int ok = enc_value(e, lua_gettop(L), depth + 1);
          lua_pop(L, 1);
          if (!ok) return 0;
        }
        enc_add(e, "]", 1);
        return 1;
      }
      /* keys in byte order: the same table always gives the same text */
      size_t nk = (size_t)count;
      keyref *keys = lua_newuserdatauv(L, nk ? nk * sizeof *keys : 1, 0);
      int kslot = lua_gettop(L);
      size_t k = 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
          lua_settop(L, kslot - 1);
          return enc_fail(e, "%s", "object keys must be strings (or use an array 1..n)");
        }
        keys[k].s = lua_tolstring(L, -2, &keys[k].n);  /* anchored by the table */
        k++;
        lua_pop(L, 1);
      }
      if (nk > 1) qsort(keys, nk, sizeof *keys, key_order);
      enc_add(e, "{", 1);
      for (k = 0; k < nk; k++) {
        if (k) enc_add(e, ",", 1);
        int ok = enc_string(e, keys[k].s, keys[k].n);
        if (ok) {
          enc_add(e, ":", 1);
          lua_pushlstring(L, keys[k].s, keys[k].n);
          lua_rawget(L, idx);
          ok = enc_value(e, lua_gettop(L), depth + 1);
        }
        lua_settop(L, kslot);
        if (!ok) {
          lua_pop(L, 1);
          return 0;
        }
      }
      lua_pop(L, 1);
      enc_add(e, "}", 1);
      return 1;
    }
    default: break;
  }
  return enc_fail(e, "cannot encode a %s", luaL_typename(L, idx));
}

/* Pushes the JSON text for the value at idx, or returns 0 with the reason
 * in errbuf (the stack as it was).  Raises only when out of memory. */
int lr__json_encode(lua_State *L, int idx, char *errbuf, size_t errlen) {
  idx = lua_absindex(L, idx);
  enc e = {L, 0, NULL, 0, 256, ""};
  e.buf = lua_newuserdatauv(L, e.cap, 0);
  e.slot = lua_gettop(L);
  if (!enc_value(&e, idx, 0)) {
    snprintf(errbuf, errlen, "%s", e.err);
    lua_settop(L, e.slot - 1);
    return 0;
  }
  lua_pushlstring(L, e.buf, e.len);
  lua_remove(L, e.slot);
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
