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

describe("space.schema, for checks of client data (app/event.lua)", function()
  it("takes a list of types: any one will do", function()
    local s = { fields = { id = { type = { "string", "number" } } } }
    assert.are.same({ id = "a" }, schema.check(s, { id = "a" }))
    assert.are.same({ id = 2.5 }, schema.check(s, { id = 2.5 }))
    refused(s, { id = true }, "id must be a string or a number, not true")
    refused({ fields = { l = { type = { "array", "string" } } } }, { l = 1 }, "l must be a list or a string, not number")
    refused({ fields = { x = { type = { "string", "text" } } } }, { x = 1 }, 'x: the schema names an unknown type "text"')
  end)

  it("checks a string against a pattern, after its length", function()
    local s = { fields = { room = { type = "string", min = 1, max = 4, pattern = "^[%w_]*$" } } }
    assert.are.same({ room = "a_1" }, schema.check(s, { room = "a_1" }))
    refused(s, { room = "a b" }, 'room must match ^[%w_]*$, not "a b"')
    refused(s, { room = "a b c" }, "room must be of length at most 4, not 5")
    refused(s, { room = "" }, "room must be of length at least 1, not 0")
  end)

  it("lets an open schema or record keep keys it does not name, answering the value itself", function()
    local s = { open = true, fields = { a = { type = "integer" }, d = { type = "integer", default = 7 },
      r = { type = "record", open = true, fields = { b = { type = "string" } } } } }
    local value = { a = 1, z = 2, r = { b = "x", y = 3 } }
    local r = value.r
    assert.are.equal(value, schema.check(s, value))
    assert.are.same({ a = 1, z = 2, d = 7, r = { b = "x", y = 3 } }, value)
    assert.are.equal(r, value.r)
    -- a closed one answers a new table, as for the rules
    local closed = { fields = { a = { type = "integer" } } }
    local v = { a = 1 }
    assert.are_not.equal(v, schema.check(closed, v))
    refused({ fields = { r = { type = "record", fields = {} } }, open = true }, { r = { y = 1 } }, "unknown key 'r.y'")
  end)

  it("checks a list of fields in the list's order, a map in name order", function()
    local list = { fields = { { name = "b", type = "string", required = true }, { name = "a", type = "string", required = true } } }
    refused(list, {}, "missing key 'b'")
    refused(list, { b = 1, a = 1 }, "b must be a string, not 1")
    refused(list, { b = "x", a = 1 }, "a must be a string, not 1")
    refused(list, { b = "x", a = "y", c = 1 }, "unknown key 'c'")
    assert.are.same({ a = "y", b = "x" }, schema.check(list, { b = "x", a = "y" }))
    local map = { fields = { b = { type = "string", required = true }, a = { type = "string", required = true } } }
    refused(map, {}, "missing key 'a'")
  end)

  it("says what failed: the path, the field and the reason", function()
    local room = { type = "string", min = 1, pattern = "^%w*$" }
    local tags = { type = "array", elements = { type = "string", one_of = { "x" } } }
    local s = { fields = { room = room, tags = tags, n = { type = "integer", max = 3 }, need = { required = true } } }
    local function failure(value)
      local ok, _, f = schema.check(s, value)
      assert.is_nil(ok)
      return f
    end
    local base = { need = 0 }
    local function with(k, v) local t = { need = 0 } t[k] = v return t end
    assert.are.same({ path = "need", field = s.fields.need, reason = "missing" }, failure({}))
    assert.are.same({ path = "zz", reason = "unknown" }, failure(with("zz", 1)))
    assert.are.same({ path = "room", field = room, reason = "type" }, failure(with("room", 1)))
    assert.are.same({ path = "room", field = room, reason = "min" }, failure(with("room", "")))
    assert.are.same({ path = "room", field = room, reason = "pattern" }, failure(with("room", "a b")))
    assert.are.same({ path = "n", field = s.fields.n, reason = "max" }, failure(with("n", 4)))
    assert.are.same({ path = "tags[1]", field = tags.elements, reason = "one_of" }, failure(with("tags", { "y" })))
    assert.are.same({ path = "tags", field = tags, reason = "type" }, failure(with("tags", { k = 1 })))
    assert.is_table(schema.check(s, base))
  end)

  it("accepts exactly the scalars its rules allow, on every path (the per-field shortcut included)", function()
    local function type_ok(t, v)
      if t == "integer" then return math.type(v) == "integer" end
      return type(v) == t
    end
    local function reference(field, v)
      local ok = false
      for _, t in ipairs(type(field.type) == "table" and field.type or { field.type }) do ok = ok or type_ok(t, v) end
      if not ok then return false end
      local size = type(v) == "number" and v or type(v) == "string" and #v or nil
      if size and field.min and size < field.min then return false end
      if size and field.max and size > field.max then return false end
      if field.pattern and type(v) == "string" and not v:find(field.pattern) then return false end
      return true
    end
    local values = { "", "a", "abc", "abcd", "b", 0, 1, 2.5, 3, 4, -1, true, false, {}, math.huge, 0 / 0 }
    local n = 0
    for _, t in ipairs({ "string", "number", "integer", "boolean", { "string", "number" }, { "integer", "boolean" } }) do
      for _, min in ipairs({ false, 1 }) do
        for _, max in ipairs({ false, 3 }) do
          for _, pattern in ipairs({ false, "^a" }) do
            local field = { name = "f", type = t, min = min or nil, max = max or nil, pattern = pattern or nil }
            local check = schema.compile({ fields = { field } })
            for i = 1, #values + 1 do -- the last: absent
              local v = values[i]
              local got, err = check({ f = v })
              local want = v == nil or reference(field, v)
              assert.are.equal(want, got ~= nil, ("%s %s: %s"):format(tostring(t), tostring(v), tostring(err)))
              if got then assert.are.equal(v == v and v or nil, got.f == got.f and got.f or nil) end
              n = n + 1
            end
          end
        end
      end
    end
    assert.is_true(n > 300)
  end)

  it("compiles a schema into a check that answers as check() does, again and again", function()
    local s = { fields = { { name = "room", type = "string", required = true }, { name = "n", type = "integer", default = 1 } } }
    local check = schema.compile(s)
    for _ = 1, 3 do
      assert.are.same({ room = "r", n = 1 }, check({ room = "r" }))
      assert.are.same({ schema.check(s, { room = 5 }) }, { check({ room = 5 }) })
      assert.are.same({ schema.check(s, { room = "r", x = 1 }) }, { check({ room = "r", x = 1 }) })
      assert.are.same({ schema.check(s, nil) }, { check(nil) })
    end
    assert.has_error(function() schema.compile({}) end, "a schema is a table with a 'fields' table")
  end)
end)
