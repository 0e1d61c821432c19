-- The schema checker the server carries (core/lua/schema.lua), used for the
-- rules and for every plugin's config: the exact messages operators see.
local schema = dofile("core/lua/schema.lua")

local function refused(s, value, message)
  local ok, err = schema.check(s, value)
  assert.is_nil(ok)
  assert.are.equal(message, err)
end

describe("space.schema", function()
  local S = { fields = {
    name = { type = "string", required = true, max = 8 },
    count = { type = "integer", default = 3, min = 1, max = 10 },
    ratio = { type = "number", min = 0, max = 1 },
    mode = { type = "string", one_of = { "fast", "safe" }, default = "safe" },
    on = { type = "boolean" },
    tags = { type = "array", elements = { type = "string" }, default = { "a" } },
    inner = { type = "record", fields = { depth = { type = "integer", required = true } } },
  } }

  it("fills in defaults and keeps given values", function()
    assert.are.same({ name = "x", count = 3, mode = "safe", tags = { "a" } }, schema.check(S, { name = "x" }))
    assert.are.same({ name = "x", count = 5, mode = "fast", tags = {}, on = false, ratio = 0.5,
      inner = { depth = 2 } },
      schema.check(S, { name = "x", count = 5, mode = "fast", tags = {}, on = false, ratio = 0.5,
        inner = { depth = 2 } }))
  end)

  it("gives each default as a copy, so one config cannot change another's", function()
    local a = schema.check(S, { name = "x" })
    a.tags[1] = "changed"
    assert.are.same({ "a" }, schema.check(S, { name = "y" }).tags)
  end)

  it("copies a default's protected metatable (an array's) as it is", function()
    local mt = { __metatable = "space.array" }
    local s = { fields = { list = { default = setmetatable({}, mt) } } }
    local v = schema.check(s, {}).list
    assert.are.equal(mt, debug.getmetatable(v))
  end)

  it("refuses an unknown key, naming it", function()
    refused(S, { name = "x", cuont = 1 }, "unknown key 'cuont'")
    refused(S, { name = "x", inner = { depth = 1, dpeth = 2 } }, "unknown key 'inner.dpeth'")
  end)

  it("refuses a missing required key", function()
    refused(S, {}, "missing key 'name'")
    refused(S, { name = "x", inner = {} }, "missing key 'inner.depth'")
  end)

  it("refuses wrong types with the value shown", function()
    refused(S, { name = 5 }, "name must be a string, not 5")
    refused(S, { name = "x", count = 2.5 }, "count must be an integer, not 2.5")
    refused(S, { name = "x", count = "2" }, 'count must be an integer, not "2"')
    refused(S, { name = "x", ratio = "half" }, 'ratio must be a number, not "half"')
    refused(S, { name = "x", on = 1 }, "on must be a boolean, not 1")
    refused(S, { name = "x", tags = "a" }, "tags must be a list, not string")
    refused(S, { name = "x", tags = { x = 1 } }, 'tags must be a list (found key "x")')
    refused(S, { name = "x", tags = { "a", 2 } }, "tags[2] must be a string, not 2")
    refused(S, { name = "x", inner = 3 }, "inner must be a table, not number")
  end)

  it("refuses values out of range and not among the allowed", function()
    refused(S, { name = "x", count = 0 }, "count must be at least 1, not 0")
    refused(S, { name = "x", count = 11 }, "count must be at most 10, not 11")
    refused(S, { name = "x", ratio = -0.1 }, "ratio must be at least 0, not -0.1")
    refused(S, { name = "toolongname" }, "name must be of length at most 8, not 11")
    refused(S, { name = "x", mode = "slow" }, 'mode must be one of "fast", "safe", not "slow"')
  end)

  it("refuses a schema that is not one", function()
    refused({}, {}, "a schema is a table with a 'fields' table")
  end)
end)
