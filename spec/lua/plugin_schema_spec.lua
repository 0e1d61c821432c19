-- Plugin configs as operators see them: each plugins/<name>/schema.lua run
-- through the checker the server carries (core/lua/schema.lua), with the
-- configs an operator writes in init.lua's `plugins` table. The checker's own
-- rules are in schema_spec.lua; here, what each plugin's schema makes of them.
local schema = dofile("core/lua/schema.lua")

-- A schema file is plain data: it loads with no globals at all, as text.
local function load_schema(name)
  local path = ("plugins/%s/schema.lua"):format(name)
  local chunk = assert(loadfile(path, "t", {}))
  return chunk(), path
end

local function refused(s, conf, message)
  local ok, err = schema.check(s, conf)
  assert.is_nil(ok, "expected the config to be refused with: " .. message)
  assert.are.equal(message, err)
end

local function plugin_names()
  local names = {}
  local p = assert(io.popen("ls plugins"))
  for name in p:lines() do
    local f = io.open(("plugins/%s/schema.lua"):format(name))
    if f then f:close() names[#names + 1] = name end
  end
  p:close()
  table.sort(names)
  return names
end

describe("plugin schemas", function()
  it("are plain data (no globals needed), each field with a type and a description", function()
    local names = plugin_names()
    assert.is_true(#names >= 1)
    for _, name in ipairs(names) do
      local s, path = load_schema(name)
      assert.are.equal("table", type(s), path)
      assert.are.equal("table", type(s.fields), path .. " has a fields table")
      for key, field in pairs(s.fields) do
        assert.are.equal("string", type(field.type), ("%s: %s has a type"):format(path, key))
        assert.are.equal("string", type(field.description), ("%s: %s has a description"):format(path, key))
      end
    end
  end)

  it("each accept an empty config (everything has a default or is optional)", function()
    for _, name in ipairs(plugin_names()) do
      local s, path = load_schema(name)
      local conf, err = schema.check(s, {})
      assert.is_table(conf, ("%s refuses {}: %s"):format(path, tostring(err)))
      assert.are.same(conf, schema.check(s, nil), path .. ": no config is the empty config")
    end
  end)
end)

describe("plugins/ratelimit/schema.lua", function()
  local s = load_schema("ratelimit")

  it("defaults to counting send_message and send_file against the rules module 'rules'", function()
    assert.are.same({ events = { "send_message", "send_file" }, rules = "rules" }, schema.check(s, {}))
  end)

  it("keeps what the operator gives, and fills in the rest", function()
    assert.are.same({ events = { "send_message" }, rules = "rules" }, schema.check(s, { events = { "send_message" } }))
    assert.are.same({ events = {}, rules = "rules" }, schema.check(s, { events = {} }))
    assert.are.same({ events = { "send_message", "send_file" }, rules = "app.limits" },
      schema.check(s, { rules = "app.limits" }))
  end)

  it("accepts the config scripts/init.lua gives it", function()
    local init = assert(io.open("scripts/init.lua")):read("a")
    assert.truthy(init:find('ratelimit = { events = { "send_message", "send_file" } }', 1, true),
      "scripts/init.lua enables ratelimit with its events")
    assert.are.same({ events = { "send_message", "send_file" }, rules = "rules" },
      schema.check(s, { events = { "send_message", "send_file" } }))
  end)

  it("refuses wrong types, naming the key and the value", function()
    refused(s, { events = "send_message" }, "events must be a list, not string")
    refused(s, { events = true }, "events must be a list, not boolean")
    refused(s, { events = { send_message = true } }, 'events must be a list (found key "send_message")')
    refused(s, { events = { "send_message", 5 } }, "events[2] must be a string, not 5")
    refused(s, { rules = 5 }, "rules must be a string, not 5")
    refused(s, { rules = false }, "rules must be a string, not false")
    -- a table is shown by address: the key and the expected type are what matter
    local ok, err = schema.check(s, { events = { "send_message", { "send_file" } } })
    assert.is_nil(ok)
    assert.matches("^events%[2%] must be a string, not table: ", err)
  end)

  it("refuses unknown keys, naming them, so that a misspelt option never passes silently", function()
    refused(s, { event = { "send_message" } }, "unknown key 'event'")
    refused(s, { events = { "send_message" }, per_second = 20 }, "unknown key 'per_second'")
    refused(s, { "send_message" }, "unknown key '1'")
  end)

  it("gives the first problem only, wrong types before missing or later keys (keys in name order)", function()
    -- unknown keys are reported before any value is checked
    refused(s, { events = 5, bogus = 1 }, "unknown key 'bogus'")
    -- then the fields in name order: events before rules
    refused(s, { events = 5, rules = 5 }, "events must be a list, not number")
  end)
end)
