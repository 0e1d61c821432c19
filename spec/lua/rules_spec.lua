-- The rules file and its schema: the shipped rules load, and every kind of
-- bad edit is refused with a message naming the key.
local schema = dofile("core/lua/schema.lua")
local RULES_SCHEMA = dofile("scripts/app/rules_schema.lua")

-- What the server does at load: the checked rules, or raises the message.
local function check(rules)
  local ok, err = schema.check(RULES_SCHEMA, rules)
  if not ok then error("rules.lua: " .. err, 0) end
  return ok
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = type(v) == "table" and copy(v) or v end
  return c
end

describe("rules.lua", function()
  local rules = dofile("scripts/rules.lua")

  it("ships the defaults of PROTOCOL.md §5", function()
    assert.are.same(64, rules.room.max_length)
    assert.are.same(10000, rules.room.max_users)
    assert.are.same(4000, rules.message.max_length)
    assert.are.same(20, rules.rate.per_second)
    assert.are.same(40, rules.rate.burst)
    assert.are.same(10485760, rules.file.max_bytes)
    assert.are.same(255, rules.file.max_name_bytes)
    assert.are.same({ "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain" },
      rules.file.types)
  end)

  it("passes its own schema unchanged", function()
    assert.are.same(rules, check(rules))
  end)

  it("refuses an unknown key, naming it", function()
    local bad = copy(rules)
    bad.message.max_lenght = 10
    assert.has_error(function() check(bad) end, "rules.lua: unknown key 'message.max_lenght'")
  end)

  it("refuses an unknown section", function()
    local bad = copy(rules)
    bad.mesage = {}
    assert.has_error(function() check(bad) end, "rules.lua: unknown key 'mesage'")
  end)

  it("refuses a value of the wrong type", function()
    local bad = copy(rules)
    bad.message.max_length = "10"
    assert.has_error(function() check(bad) end, 'rules.lua: message.max_length must be an integer, not "10"')
  end)

  it("refuses a float where an integer is due", function()
    local bad = copy(rules)
    bad.room.max_users = 2.5
    assert.has_error(function() check(bad) end, "rules.lua: room.max_users must be an integer, not 2.5")
  end)

  it("refuses a value out of range", function()
    local bad = copy(rules)
    bad.rate.burst = 0
    assert.has_error(function() check(bad) end, "rules.lua: rate.burst must be at least 1, not 0")
  end)

  it("refuses a missing key", function()
    local bad = copy(rules)
    bad.rate.per_second = nil
    assert.has_error(function() check(bad) end, "rules.lua: missing key 'rate.per_second'")
  end)

  it("refuses a list of types that holds something else than strings", function()
    local bad = copy(rules)
    bad.file.types = { "image/png", 3 }
    assert.has_error(function() check(bad) end, "rules.lua: file.types[2] must be a string, not 3")
  end)
end)
