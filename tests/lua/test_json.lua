-- JSON (json.c on jansson): values round-trip, null is json_null both ways;
-- NUL bytes, every 64-bit integer and every double survive; invalid UTF-8,
-- nan and inf are refused; deep nesting is an error, never a crash; the
-- documents at the end read and write as jq reads them.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")

local function mapped(lib)
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find(lib, 1, true) ~= nil
end

h.test("jansson is loaded on first use, not at start-up", function()
  -- a fresh process: this one may have decoded JSON already
  local exe = arg[-1]
  local code = [[local m = io.open("/proc/self/maps"):read("a")
    local before = m:find("libjansson", 1, true) ~= nil
    assert(json_decode("null") == json_null and json_encode({ 1 }) == "[1]")
    m = io.open("/proc/self/maps"):read("a")
    print(before, m:find("libjansson", 1, true) ~= nil, m:find("libcjson", 1, true) ~= nil)]]
  local p = assert(io.popen(("%q -e %q"):format(exe, code)))
  local out = p:read("a")
  p:close()
  h.eq(out, "false\ttrue\tfalse\n", "libjansson mapped before, after; libcjson never")
  h.eq(mapped("libcjson"), false)
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
local jend = "^json_decode: invalid JSON at the end of "
local eerr = "bad argument #1 to '[%w%.]*json_encode' "

h.test("NUL bytes: encoded as \\u0000, decoded to a NUL byte", function()
  h.eq(json_encode("a\0b"), '"a\\u0000b"')
  h.eq(json_encode({ ["k\0ey"] = "\0" }), '{"k\\u0000ey":"\\u0000"}')
  h.eq(json_decode('"a\\u0000b"'), "a\0b")
  h.eq(json_decode('{"k\\u0000":1}')["k\0"], 1)
  local v = { s = "x\0y\0", list = { "\0", "\0\0" }, ["\0"] = true }
  h.eq(json_decode(json_encode(v)), v)
  h.eq(json_encode(json_decode(json_encode(v))), json_encode(v))
  -- a raw NUL inside a string is refused where it stands: JSON says escape it
  h.raises(jerr .. "3 of 5 %(NUL byte%)", json_decode, '"a\0b"')
  -- jansson refuses \u0000 in a key, so json.c reads such a text again with
  -- a code point the text does not hold standing in for it
  local nasty = '{"\\u0000":"\\u0000","\\\\u0000":"\\uFDD0","\\ufdd1\\u0000":"\xef\xb7\x92","\\u0000\\u0000":[9007199254740993]}'
  h.eq(json_decode(nasty), { ["\0"] = "\0", ["\\u0000"] = "\u{FDD0}", ["\u{FDD1}\0"] = "\u{FDD2}", ["\0\0"] = { 9007199254740993 } })
  h.raises(jerr .. "11 of 11 %(unexpected token near '}'", json_decode, '{"\\u0000":}')
  local all = { '"\\u0000":1' }
  for cp = 0xFDD0, 0xFDEF do all[#all + 1] = ('"%s":%d'):format(utf8.char(cp), cp) end
  h.raises(jerr .. "2 of %d+ %(NUL byte in object key not supported", json_decode, "{" .. table.concat(all, ",") .. "}")
end)

h.test("escapes and UTF-8", function()
  h.eq(json_encode("\"\\/\b\f\n\r\t\1\31\127"), [["\"\\/\b\f\n\r\t\u0001\u001F]] .. "\127\"")
  h.eq(json_decode([["\"\\\/\b\f\n\r\t\u00e9\u20ac"]]), "\"\\/\b\f\n\r\té€")
  h.eq(json_decode('"\\ud83d\\ude00"'), "😀", "a surrogate pair")
  h.eq(json_encode("é€😀"), '"é€😀"', "valid UTF-8 passes as it is")
  for _, bad in ipairs({ "\xff", "a\x80", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80" }) do
    h.raises(eerr .. "%(string is not valid UTF%-8 %(at byte %d+%)%)", json_encode, bad)
    h.raises(eerr .. "%(string is not valid UTF%-8", json_encode, { [bad] = 1 })
    h.raises(jerr .. "%d+ of %d+ %(unable to decode byte 0x%x%x", json_decode, '"' .. bad .. '"')
  end
  h.raises(jerr .. "3 of 4 %(unable to decode byte 0x80", json_decode, '"a\x80"')
  h.raises(jerr .. "1 of 8 %(invalid Unicode '\\uD800'", json_decode, '"\\ud800"')
  h.raises(jerr .. "1 of 8 %(invalid Unicode '\\uDC00'", json_decode, '"\\udc00"')
  h.raises(jerr .. "1 of 14 %(invalid Unicode '\\uD800\\u0041'", json_decode, '"\\ud800\\u0041"')
  h.raises(jerr .. "1 of 6 %(invalid escape", json_decode, '"\\u12"')
  h.raises(jerr .. "1 of 4 %(invalid escape", json_decode, '"\\x"')
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
  h.eq(json_encode(-0.0), "-0.0", "the sign of zero kept")
  h.eq(1 / json_decode(json_encode(-0.0)), -1 / 0)
  h.eq(math.type(json_decode("-0.0")), "float")
  for _, x in ipairs({ 0 / 0, 1 / 0, -1 / 0 }) do
    h.raises(eerr .. "%(cannot encode nan or inf", json_encode, x)
    h.raises(eerr .. "%(cannot encode nan or inf", json_encode, { a = { x } })
  end
  h.raises(jerr .. "1 of 5 %(real number overflow", json_decode, "1e400")
  h.raises(jerr .. "7 of 12 %(real number overflow near '1e999'", json_decode, '["a", 1e999]')
  h.raises(jerr .. "1 of 2 %(invalid token near '0'", json_decode, "01")
  h.raises(jerr .. "1 of 2 %(invalid token near '1%.'", json_decode, "1.")
  h.raises(jerr .. "1 of 2 %(invalid token near '1e'", json_decode, "1e")
  h.raises(jerr .. "1 of 1 %(invalid token", json_decode, "-")
  h.raises(jerr .. "1 of 3 %(invalid token", json_decode, "NaN")
  h.raises(jerr .. "1 of 4 %(invalid token", json_decode, "+1.0")
end)

h.test("an integer beyond 64 bits makes the whole text read as doubles", function()
  -- jansson cannot fall back for one number: the text is read again with
  -- every number a double, so its other integers are exact up to 2^53 only
  local v = json_decode("[9223372036854775808, 9007199254740993, 5]")
  h.eq(math.type(v[1]), "float")
  h.eq(v[1], 2.0^63)
  h.eq(v[2], 1 << 53, "rounded to the nearest double")
  h.eq(math.type(v[3]), "integer")
  h.eq(json_decode("[9007199254740993, 5]")[1], 9007199254740993, "exact without one")
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
  h.raises(jend .. "0 bytes %(unexpected token near end of file%)", json_decode, "")
  h.raises(jend .. "2 bytes %(unexpected token near end of file%)", json_decode, "  ")
  h.raises(jerr .. "2 of 4 %(end of file expected near 'abc'%)", json_decode, "3abc")
  h.raises(jerr .. "4 of 4 %(unexpected token near '%]'%)", json_decode, "[1,]")
  h.raises(jend .. "4 bytes %('%]' expected near end of file%)", json_decode, "[1,2")
  h.raises(jend .. "6 bytes %('}' expected near end of file%)", json_decode, '{"a":1')
  h.raises(jerr .. "1 of 3 %(premature end of input near '\"ab'%)", json_decode, '"ab')
  h.raises(jerr .. "8 of 9 %('}' expected near '2'%)", json_decode, '{"a":1 2}')
  h.raises(jerr .. "5 of 6 %(':' expected near '1'%)", json_decode, '{"a"1}')
  h.raises(jerr .. "2 of 5 %(string or '}' expected near '1'%)", json_decode, "{1:2}")
  h.raises(jerr .. "101 of 104 %(invalid token near '1%.'%)", json_decode,
           "[" .. string.rep('"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",', 3) .. "1.e]")
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

-- Differential: jq (Debian's jq 1.6) reads each document, and reads what
-- json_encode(json_decode(document)) gives, to the same canonical text; our
-- decoding of jq's text equals our decoding of the document; where the texts
-- hold nothing jq or jansson spell their own way (floats, control
-- characters, integers past 2^53), ours is jq's text byte for byte.
local docs = {
  { "null", text = true }, { "true", text = true }, { "false", text = true }, { "0", text = true },
  -- jansson reads -0 as the integer 0, as Lua does; -0.0 keeps its sign
  { "-0", ours = "0" }, { "-0.0" }, { '"plain"', text = true }, { '""', text = true },
  { [["\u00e9\u20ac\u4e2d \u0041\u00DF"]], text = true },
  { [["\ud83d\ude00\ud834\udd1e"]], text = true },
  { '"é€😀 as raw UTF-8"', text = true },
  { [["\u0000 \u001f \u007f"]] },
  { [["\"\\\/\b\f\n\r\t"]], text = true },
  { "9007199254740993", rounds = true }, { "-9223372036854775808", rounds = true },
  { "9223372036854775807", rounds = true }, { "9223372036854775808", rounds = true },
  { "123456789012345678", rounds = true },
  { "[0.1,0.2,0.30000000000000004,1e-7,5e-324,1.7976931348623157e308]" },
  { "[1.5e3,2.0,-2.5E-3,1E+2,0.000001,3.141592653589793]" },
  { "[1e300,-1e-300,123456.789e3,0.1e1,-1]" },
  { "[]", ours = "{}" }, { "{}", text = true },
  { '[[],{},[[]],{"a":[]}]', ours = '[{},{},[{}],{"a":{}}]' },
  { '{"b":1,"a":2,"é":3,"":4,"A":5,"a\\u0041":6}', text = true },
  { '{"a":1,"a":2}', text = true }, { [[{"a\u0000b":"\u0000","a":[1,"\u0000"]}]], text = true },
  { [[{"\u00e9":1,"e\u0301":2,"\ud83d\ude00":3}]], text = true },
  { '{"x":[1,{"y":[2,{"z":[3,null,true,false,"null"]}]}]}', text = true },
  { string.rep("[", 100) .. '{"k":"v"}' .. string.rep("]", 100), text = true },
  { ' \t\n\r[ 1 ,\n2 ] \n', text = true },
  { '"' .. string.rep("ab\\n", 3000) .. '"', text = true },
  { "[" .. table.concat((function() local t = {} for i = 1, 1000 do t[i] = i * 7 - 3000 end return t end)(), ",") .. "]", text = true },
}
local invalid = { "[1,]", '{"a"}', [["\x"]], "[", "{1:2}", [["\ud800"]], [["\ud800\u0041"]],
                  "[1] x", '{"a":1,}', "[1 2]", "tru", '"a\nb"' }

local function have_jq()
  local ok = os.execute("command -v jq >/dev/null 2>&1")
  if not ok then print("     (skipped: jq is not installed; `apt-get install jq` to run it)") end
  return ok
end

-- jq -c -S over a list of texts: one canonical line each, or nil and its error
local function jq(texts)
  local name = os.tmpname()
  local f = assert(io.open(name, "wb"))
  f:write(table.concat(texts, "\n"), "\n")
  f:close()
  local p = assert(io.popen("jq -c -S . < " .. name .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  os.remove(name)
  if not ok then return nil, out end
  local lines = {}
  for line in out:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  return lines
end

h.test("differential with jq -c -S: " .. #docs .. " documents read and written alike", function()
  if not have_jq() then return end
  local texts, ours, expect = {}, {}, {}
  for i, d in ipairs(docs) do
    texts[i] = d[1]
    ours[i] = json_encode(json_decode(d[1]))
    expect[i] = d.ours or d[1]
    if d.ours then h.eq(ours[i], d.ours, "empty arrays come back as empty objects") end
  end
  local theirs = assert(jq(texts))
  local again = assert(jq(ours))
  local wanted = assert(jq(expect))
  h.eq(#theirs, #docs)
  h.eq(#again, #docs)
  for i, d in ipairs(docs) do
    local what = ("document %d %s"):format(i, #d[1] > 60 and d[1]:sub(1, 60) .. "..." or d[1])
    h.eq(again[i], wanted[i], what .. ": jq reads ours as it reads the document")
    if not d.rounds then h.eq(json_decode(theirs[i]), json_decode(d[1]), what .. ": jq's text decodes the same") end
    if d.text then h.eq(ours[i], theirs[i], what .. ": the same text as jq's") end
  end
end, { timeout = 20 })

h.test("differential with jq: " .. #invalid .. " invalid documents refused by both", function()
  -- (not "nan": jq 1.6 takes it in some environments, through strtod)
  h.raises("^json_decode: invalid JSON at byte %d+ of %d+ %(", json_decode, "nan")
  if not have_jq() then return end
  for _, text in ipairs(invalid) do
    h.eq(jq({ text }), nil, "jq refuses " .. text)
    h.raises("^json_decode: invalid JSON at [%w ]+ %(", json_decode, text)
  end
end, { timeout = 20 })

h.test("a raw NUL byte is refused where it stands; no position runs past the end", function()
  -- jansson took a NUL after a value as the end of the text ("1\0" gave 1)
  h.raises(jerr .. "2 of 2 %(NUL byte%)", json_decode, "1\0")
  h.raises(jerr .. "4 of 4 %(NUL byte%)", json_decode, '"x"\0')
  h.raises(jerr .. "1 of 1 %(NUL byte%)", json_decode, "\0")
  h.raises(jerr .. "4 of 5 %(NUL byte%)", json_decode, '"ab\0"')
  h.raises(jerr .. "4 of 4 %(NUL byte%)", json_decode, "[1,\0")
  h.raises(jerr .. "3 of 5 %(NUL byte%)", json_decode, "{}\0{}")
  h.raises(jerr .. "2 of 3 %(invalid token near 'x'%)", json_decode, "[x\0", "an earlier error is the one named")
  h.eq(json_decode('"\\u0000"'), "\0", "the escape is still a NUL")
  for _, text in ipairs({ "", " ", "\t\n", "[", "[1,2", '{"a":', '"ab' }) do
    local e = h.raises(nil, json_decode, text)
    local at, of = e.message:match("at byte (%d+) of (%d+)")
    h.ok(not at or tonumber(at) <= tonumber(of), ("%q: %s"):format(text, e.message))
  end
end)

h.test("out of memory while decoding is Lua's memory error, not invalid JSON", function()
  if os.getenv("LR_SANITIZED") then
    print("     (skipped: ulimit -v and the sanitizers' shadow memory do not mix)")
    return
  end
  -- the 40 MB text fits; the 20 million jansson values it describes do not
  local code = [[local s = "[" .. string.rep("[1,2,3],", 5e6) .. "1]" io.write("built ")
    print(pcall(json_decode, s))]]
  local built = 0
  for _, kb in ipairs({ 200000, 250000, 300000 }) do
    local p = assert(io.popen(("ulimit -v %d && exec %q -e %q 2>&1"):format(kb, arg[-1], code)))
    local out = p:read("a")
    p:close()
    if out:find("^built ") then
      built = built + 1
      h.eq(out, "built false\tnot enough memory\n", kb .. " KB")
    end
  end
  h.ok(built > 0, "the text was built under some limit")
end, { timeout = 60 })

h.done()
