-- JSON (json.c, written by hand): values round-trip, null is json_null both
-- ways; NUL bytes, every 64-bit integer and every double survive; invalid
-- UTF-8, nan and inf are refused; deep nesting is an error, never a crash.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")

local function mapped(lib)
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find(lib, 1, true) ~= nil
end

h.test("JSON needs no libcjson", function()
  h.eq(json_decode("null"), json_null)
  h.eq(json_encode({ 1 }), "[1]")
  h.eq(mapped("libcjson"), false, "mapped after json_decode and json_encode")
end)

h.test("values round-trip; null is json_null in both directions", function()
  local v = json_decode('{"a":[1,2.5,"x",true,false,null],"b":{"c":null}}')
  h.eq(v.a[1], 1)
  h.eq(v.a[2], 2.5)
  h.eq(v.a[3], "x")
  h.eq(v.a[4], true)
  h.eq(v.a[5], false)
  h.eq(v.a[6], json_null)
  h.eq(v.b.c, json_null)
  h.eq(json_encode({ json_null, 1 }), "[null,1]")
  h.eq(json_decode(json_encode(v)).b.c, json_null)
  h.eq(type(json_null), "userdata")
  h.eq(require("lessonrun").json_null, json_null)
end)

local jerr = "^json_decode: invalid JSON at byte "
local eerr = "bad argument #1 to '[%w%.]*json_encode' "

h.test("NUL bytes: encoded as \\u0000, decoded to a NUL byte", function()
  h.eq(json_encode("a\0b"), '"a\\u0000b"')
  h.eq(json_encode({ ["k\0ey"] = "\0" }), '{"k\\u0000ey":"\\u0000"}')
  h.eq(json_decode('"a\\u0000b"'), "a\0b")
  h.eq(json_decode('{"k\\u0000":1}')["k\0"], 1)
  local v = { s = "x\0y\0", list = { "\0", "\0\0" }, ["\0"] = true }
  h.eq(json_decode(json_encode(v)), v)
  h.eq(json_encode(json_decode(json_encode(v))), json_encode(v))
  -- a raw NUL inside a string is a control character: JSON says escape it
  h.raises(jerr .. "3 of 5 %(control character", json_decode, '"a\0b"')
end)

h.test("escapes and UTF-8", function()
  h.eq(json_encode("\"\\/\b\f\n\r\t\1\31\127"), [["\"\\/\b\f\n\r\t\u0001\u001f]] .. "\127\"")
  h.eq(json_decode([["\"\\\/\b\f\n\r\t\u00e9\u20ac"]]), "\"\\/\b\f\n\r\té€")
  h.eq(json_decode('"\\ud83d\\ude00"'), "😀", "a surrogate pair")
  h.eq(json_encode("é€😀"), '"é€😀"', "valid UTF-8 passes as it is")
  for _, bad in ipairs({ "\xff", "a\x80", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80" }) do
    h.raises(eerr .. "%(string is not valid UTF%-8 %(at byte %d+%)%)", json_encode, bad)
    h.raises(eerr .. "%(string is not valid UTF%-8", json_encode, { [bad] = 1 })
    h.raises(jerr .. "%d+ of %d+ %(invalid UTF%-8 in a string%)", json_decode, '"' .. bad .. '"')
  end
  h.raises(jerr .. "2 of 8 %(invalid \\u escape %(a high surrogate", json_decode, '"\\ud800"')
  h.raises(jerr .. "2 of 8 %(invalid \\u escape %(a lone low surrogate", json_decode, '"\\udc00"')
  h.raises(jerr .. "2 of 6 %(invalid \\u escape %(four hex", json_decode, '"\\u12"')
  h.raises(jerr .. "2 of 4 %(invalid escape", json_decode, '"\\x"')
end)

h.test("integers are exact, all 64 bits of them", function()
  for _, n in ipairs({ 0, -1, 9007199254740993, -9007199254740993, math.maxinteger, math.mininteger,
                       1 << 62, 123456789012345678 }) do
    local text = json_encode(n)
    h.eq(text, string.format("%d", n))
    local back = json_decode(text)
    h.eq(math.type(back), "integer", text)
    h.ok(back == n, text .. " decoded as " .. tostring(back))
  end
  h.eq(json_encode({ 9007199254740993 }), "[9007199254740993]")
  -- beyond 64 bits there is no integer: a float, the nearest double
  h.eq(math.type(json_decode("9223372036854775808")), "float")
  h.eq(json_decode("9223372036854775808"), 2.0^63)
  h.eq(math.type(json_decode("-9223372036854775809")), "float")
  -- integral values written with a fraction or exponent are integers up to 2^53
  h.eq(math.type(json_decode("1.5e3")), "integer")
  h.eq(json_decode("1.5e3"), 1500)
  h.eq(math.type(json_decode("1e300")), "float")
end)

h.test("floats round-trip exactly; nan and inf are refused", function()
  for _, x in ipairs({ 0.1, 1 / 3, -2.5e-300, 1e300, 2^-1074, 1.7976931348623157e308, math.pi, 0.1 + 0.2 }) do
    local back = json_decode(json_encode(x))
    h.ok(back == x, ("%.17g came back as %.17g (%s)"):format(x, back, json_encode(x)))
  end
  h.eq(json_encode(0.1), "0.1", "the fewest digits that read back")
  h.eq(json_encode(2.0), "2")
  for _, x in ipairs({ 0 / 0, 1 / 0, -1 / 0 }) do
    h.raises(eerr .. "%(cannot encode nan or inf", json_encode, x)
    h.raises(eerr .. "%(cannot encode nan or inf", json_encode, { a = { x } })
  end
  h.raises(jerr .. "1 of 5 %(number out of range", json_decode, "1e400")
  h.raises(jerr .. "1 of 2 %(invalid number %(no leading zeros", json_decode, "01")
  h.raises(jerr .. "1 of 2 %(invalid number %(digits expected after", json_decode, "1.")
  h.raises(jerr .. "1 of 2 %(invalid number %(digits expected in the exponent", json_decode, "1e")
  h.raises(jerr .. "1 of 1 %(invalid number", json_decode, "-")
  h.raises(jerr .. "1 of 3 %(invalid value", json_decode, "NaN")
  h.raises(jerr .. "1 of 4 %(invalid value", json_decode, "+1.0")
end)

h.test("a number with a long text decodes", function()
  h.eq(json_decode("0." .. string.rep("0", 200) .. "1"), 1e-201)
  h.eq(json_decode(string.rep("9", 30) .. ".0"), 1e30)
end)

h.test("nesting: 1000 levels both ways, deeper is an error, never a crash", function()
  local deep = string.rep("[", 1000) .. "1" .. string.rep("]", 1000)
  local v = json_decode(deep)
  h.eq(json_encode(v), deep)
  h.raises(jerr .. "1001 of 2003 %(nested too deeply", json_decode, "[" .. deep .. "]")
  h.raises(jerr .. "1001 of 1000000 %(nested too deeply", json_decode, string.rep("[", 1000000))
  h.raises(jerr .. "5001 of 1000000 %(nested too deeply", json_decode, string.rep('{"a":', 200000))
  h.raises(eerr .. "%(table nested too deeply", json_encode, { v })
  local t = {}
  t.t = t
  h.raises(eerr .. "%(table nested too deeply %(a cycle%?%)", json_encode, t)
end)

h.test("round trip: decode, encode, decode gives the same value", function()
  local texts = {
    '{"a":[1,2.5,"x\\u0000y",true,false,null],"b":{"c":{"d":[[],{}]}},"big":9007199254740993}',
    '[-9223372036854775808,9223372036854775807,0.1,1e-300,"\\u0000\\u001f"]',
    '"\\ud83d\\ude00 \\u00e9"', "0", "[]", "{}",
  }
  for _, text in ipairs(texts) do
    local once = json_decode(text)
    local twice = json_decode(json_encode(once))
    h.eq(twice, once, text)
    h.eq(json_encode(twice), json_encode(once), text)
  end
end)

h.test("malformed documents name the byte", function()
  h.raises(jerr .. "1 of 0 %(value expected%)", json_decode, "")
  h.raises(jerr .. "2 of 4 %(text after the value%)", json_decode, "3abc")
  h.raises(jerr .. "4 of 4 %(invalid value%)", json_decode, "[1,]")
  h.raises(jerr .. "1 of 4 %(unterminated array%)", json_decode, "[1,2")
  h.raises(jerr .. "1 of 6 %(unterminated object%)", json_decode, '{"a":1')
  h.raises(jerr .. "1 of 3 %(unterminated string%)", json_decode, '"ab')
  h.raises(jerr .. "8 of 9 %(',' or '}' expected%)", json_decode, '{"a":1 2}')
  h.raises(jerr .. "5 of 6 %(':' expected", json_decode, '{"a"1}')
  h.raises(jerr .. "2 of 5 %(object key %(a string%) expected%)", json_decode, "{1:2}")
  local e = h.raises(nil, json_decode, "{x")
  h.eq(e.kind, "json")
end)

h.test("encoding: what cannot be JSON is refused", function()
  h.raises(eerr .. "%(cannot encode a function%)", json_encode, print)
  h.raises(eerr .. "%(object keys must be strings", json_encode, { [1] = 1, x = 2 })
  h.raises(eerr .. "%(object keys must be strings", json_encode, { [true] = 1 })
  h.eq(json_encode({}), "{}")
  h.eq(json_encode({ b = 1, a = 2, ["a\0"] = 3, [""] = 4 }), '{"":4,"a":2,"a\\u0000":3,"b":1}', "keys in byte order")
  h.eq(json_encode({ a = {} }), '{"a":{}}')
end)

h.done()
