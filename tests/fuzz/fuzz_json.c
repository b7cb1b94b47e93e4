/* JSON (core/prims/json.c): any bytes decode to a value or raise an error
 * of kind "json" (or "memory"); a decoded value encodes, decodes back to the
 * same value (types, integer or float, json_null, metatables) and encodes
 * to the same text again. */
#include "fuzz.h"

static const char CHECK[] =
  "local function same(a, b, depth)\n"
  "  if type(a) ~= type(b) or math.type(a) ~= math.type(b) then return false end\n"
  "  if type(a) ~= 'table' then return a == b or (a ~= a and b ~= b) end\n"
  "  if getmetatable(a) ~= getmetatable(b) then return false end\n"
  "  for k, v in pairs(a) do if not same(v, rawget(b, k), depth + 1) then return false end end\n"
  "  for k in pairs(b) do if rawget(a, k) == nil then return false end end\n"
  "  return true\n"
  "end\n"
  "local function decode(s, what)\n"
  "  local ok, v = pcall(json_decode, s)\n"
  "  if ok then return v end\n"
  "  local kind = errorkind(v)\n"
  "  if what == 'input' and (kind == 'json' or kind == 'memory') then return nil end\n"
  "  error(('invariant: json_decode(%s) raised %s: %s'):format(what, tostring(kind), tostring(v)), 0)\n"
  "end\n"
  "return function(data)\n"
  "  local v = decode(data, 'input')\n"
  "  if v == nil then return end\n"
  "  local ok, text = pcall(json_encode, v)\n"
  "  if not ok then error('invariant: a decoded value does not encode: ' .. tostring(text), 0) end\n"
  "  local w = decode(text, 'its encoding')\n"
  "  if not same(v, w, 0) then error('invariant: not the same value after a round trip: ' .. text, 0) end\n"
  "  local again = json_encode(w)\n"
  "  if again ~= text then error('invariant: encoding differs the second time: ' .. again, 0) end\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_call(fuzz_state(CHECK), data, size);
  return 0;
}
