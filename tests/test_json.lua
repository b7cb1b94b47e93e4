-- JSON (json.c on cJSON): values round-trip, null is json_null both ways, and
-- libcjson is loaded only when JSON is first used (start-up stays lean).
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")

local function mapped(lib)
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find(lib, 1, true) ~= nil
end

h.test("libcjson is not loaded until JSON is used", function()
  h.eq(mapped("libcjson"), false, "mapped at start")
  h.eq(json_decode("null"), json_null)
  h.eq(mapped("libcjson"), true, "mapped after json_decode")
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

h.done()
