-- The scripts of the timer tests (timers.test.js): space.after and
-- space.every started by events and at load, cancelled, failing, running
-- over their budget, holding a closed connection, and across reloads.
local space = require "space"
local VERSION = require "version"

-- At load: every generation ticks to the room "watchers" with its name, so
-- that a test sees which generation's timers still run after a reload.
space.every(25, function()
  space.to("watchers", "gen_tick", { version = VERSION, at = space.now() })
end)
-- A load that fails after starting a timer: that timer must never run.
if VERSION == "broken" then error("this generation fails to load on purpose") end

-- The handles of a connection's timers by tag, to cancel them later.
local function handles(conn)
  local d = conn:data()
  d.timers = d.timers or {}
  return d.timers
end

local function on_connect(conn)
  conn:emit("connected", { sid = conn:id(), version = VERSION })
end

local events = {}

-- after {ms, tag}: "fired" {tag, version} to the sender once ms passed;
-- answers with the (wall-clock) time it is due at.
function events.after(conn, data)
  handles(conn)[data.tag] = space.after(data.ms, function()
    if conn:is_open() then conn:emit("fired", { tag = data.tag, version = VERSION }) end
  end)
  return "started", { tag = data.tag, due_at = space.now() + data.ms }
end

-- every {ms, tag, times?}: "tick" {tag, n} each time; after `times` ticks
-- the timer cancels itself through the handle fn gets.
function events.every(conn, data)
  local n = 0
  handles(conn)[data.tag] = space.every(data.ms, function(t)
    n = n + 1
    if conn:is_open() then conn:emit("tick", { tag = data.tag, n = n }) end
    if data.times and n >= data.times then
      conn:emit("stopped", { tag = data.tag, cancel = t:cancel(), active = t:active() })
    end
  end)
  return "started", { tag = data.tag }
end

-- cancel {tag}: cancels twice; the second one finds nothing to stop.
function events.cancel(conn, data)
  local t = handles(conn)[data.tag]
  local first = t:cancel()
  return "cancelled", { tag = data.tag, first = first, second = t:cancel(), active = t:active() }
end

-- watch: the sender joins "watchers" (the generation ticks).
function events.watch(conn)
  conn:join("watchers")
  return "watching", {}
end

-- later_use {ms}: a timer whose fn uses the connection without asking
-- whether it is open (the client closes before it fires).
function events.later_use(conn, data)
  space.after(data.ms, function() conn:emit("too_late", {}) end)
  return "started", {}
end

-- spin {ms, every?}: a timer whose fn never ends.
function events.spin(_, data)
  local start = data.every and space.every or space.after
  start(data.ms, function() while true do end end)
  return "started", {}
end

-- fail_every {ms}: an every whose fn always raises.
function events.fail_every(_, data)
  space.every(data.ms, function() error("failing on purpose") end)
  return "started", {}
end

-- bad: each bad call's error message.
function events.bad()
  local f = function() end
  local calls = {
    { "after", 0, f }, { "after", -5, f }, { "after", 1.5, f }, { "after", "10", f },
    { "after", 86400001, f }, { "every", 0, f }, { "after", 10, nil }, { "every", 10, "f" },
    { "after" },
  }
  local out = space.array()
  for i, c in ipairs(calls) do
    local ok, err = pcall(space[c[1]], c[2], c[3])
    out[i] = ok and "no error" or err
  end
  return "bad", { errors = out }
end

-- many {n}: starts n timers of an hour; how many started and the error.
function events.many(conn, data)
  local list = handles(conn).many or {}
  handles(conn).many = list
  local started, err = 0, nil
  for _ = 1, data.n do
    local ok, t = pcall(space.after, 3600 * 1000, function() end)
    if not ok then
      err = t
      break
    end
    list[#list + 1] = t
    started = started + 1
  end
  return "many", { started = started, err = err or space.null }
end

-- cancel_many: cancels what many started.
function events.cancel_many(conn)
  local n = 0
  for _, t in ipairs(handles(conn).many or {}) do
    if t:cancel() then n = n + 1 end
  end
  handles(conn).many = nil
  return "cancelled_many", { n = n }
end

-- ask_then_after: asks the client a question; once answered, tries to
-- start a timer from the callback (code of the generation that asked).
function events.ask_then_after(conn)
  conn:emit("question", {}, function()
    local ok, res = pcall(space.after, 10, function() end)
    conn:emit("asked_after", { ok = ok, err = not ok and res or space.null, version = VERSION })
  end)
  return "asked", {}
end

function events.echo(_, data) return "echo", data end

return {
  namespaces = {
    ["/"] = { on_connect = on_connect, events = events },
  },
}
