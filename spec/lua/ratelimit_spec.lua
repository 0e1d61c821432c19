-- plugins/ratelimit: the token bucket, its config schema, and that its
-- state lives in conn:data() (which the server keeps across reloads).
package.path = "spec/lua/?.lua;" .. package.path
local fake = require "fake_space"
local schema = dofile("core/lua/schema.lua")

local function load_plugin(rate)
  local space = fake.new()
  local saved = { space = package.loaded.space, rules = package.loaded.rules }
  package.loaded.space = space
  package.loaded.rules = { rate = rate }
  local plugin = dofile("plugins/ratelimit/handler.lua")
  local conf = assert(schema.check(dofile("plugins/ratelimit/schema.lua"), {}))
  local function restore()
    package.loaded.space, package.loaded.rules = saved.space, saved.rules
  end
  return space, plugin, conf, restore
end

describe("ratelimit plugin", function()
  local space, plugin, conf, restore, conn
  before_each(function()
    space, plugin, conf, restore = load_plugin({ per_second = 20, burst = 40 })
    conn = space.connect("c1", { id = "u1", name = "alice" })
  end)
  after_each(function() restore() end)

  it("counts send_message and send_file by default", function()
    assert.are.same({ "send_message", "send_file" }, conf.events)
  end)

  it("lets a burst of 40 through, then refuses with rate_limited", function()
    for i = 1, 40 do
      assert.is_nil((plugin:on_event(conf, conn, "send_message")), "message " .. i)
    end
    local refused, code = plugin:on_event(conf, conn, "send_file")
    assert.is_nil(refused)
    assert.are.equal("rate_limited", code)
  end)

  it("refills at 20 a second", function()
    for _ = 1, 40 do plugin:on_event(conf, conn, "send_message") end
    space.advance(100) -- two tokens
    assert.is_nil((plugin:on_event(conf, conn, "send_message")))
    assert.is_nil((plugin:on_event(conf, conn, "send_message")))
    assert.are.equal("rate_limited", select(2, plugin:on_event(conf, conn, "send_message")))
  end)

  it("leaves other events alone", function()
    for _ = 1, 100 do assert.is_nil((plugin:on_event(conf, conn, "get_room_users"))) end
  end)

  it("keeps its bucket in conn:data(), where it survives a reload", function()
    for _ = 1, 40 do plugin:on_event(conf, conn, "send_message") end
    local reloaded = dofile("plugins/ratelimit/handler.lua") -- a new generation, the same connection
    assert.are.equal("rate_limited", select(2, reloaded:on_event(conf, conn, "send_message")))
  end)
end)
