-- The script sandbox as scripts see it, in the real server: which globals and
-- library functions a handler can reach, that globals are errors, which
-- modules require gives, that binary chunks are refused, and that what one
-- generation changes does not outlive a reload.
--
-- The server (env SPACE_SERVER, default build/space-server) runs on a temp
-- scripts dir whose init.lua registers `probe` (a report of its environment)
-- and a few more events; the spec speaks the plain /ws protocol to it with
-- lua-http's WebSocket client: {"event","data","id"} frames, JSON by cjson.
-- Every wait is bounded; the server is killed in teardown.
package.path = package.path .. ";/usr/share/lua/5.3/?.lua;/usr/share/lua/5.3/?/init.lua"
  .. ";/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua"
local websocket = require "http.websocket"
local cjson = require "cjson"

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local REPO = run("pwd"):gsub("%s+$", "")
local SERVER = os.getenv("SPACE_SERVER") or (REPO .. "/build/space-server")
local SLOW = math.max(1, tonumber(os.getenv("SPACE_TEST_SLOW") or "1") or 1)

local function pause(seconds) os.execute("sleep " .. seconds) end

-- Polls f() every 20 ms until it returns a truthy value; fails after `seconds`.
local function wait_for(f, seconds, what)
  local tries = math.ceil(seconds * SLOW / 0.02)
  local last
  for _ = 1, tries do
    last = f()
    if last then return last end
    pause(0.02)
  end
  error(("timed out after %s s waiting for %s"):format(seconds * SLOW, what), 2)
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function mkdtemp()
  return (run("mktemp -d /tmp/space-sandbox-XXXXXX"):gsub("%s+$", ""))
end

-- Starts the server on dir/scripts and dir/plugins; returns {pid, log, port}
-- or, when it exits instead of listening, {exited = true, log = text}.
-- SPACE_* variables are flags to the server: they are kept out of its environment.
local function start_server(dir, extra)
  local log = dir .. "/server.log"
  local cmd = ("for v in $(env | sed -n 's/^\\(SPACE_[A-Za-z0-9_]*\\)=.*/\\1/p'); do unset \"$v\"; done; "
    .. "%s --scripts %s --plugins %s --host 127.0.0.1 --port 0 %s </dev/null >/dev/null 2>%s & echo $!")
    :format(sh_quote(SERVER), sh_quote(dir .. "/scripts"), sh_quote(dir .. "/plugins"), extra or "", sh_quote(log))
  local pid = tonumber(run(cmd):match("%d+"))
  assert(pid, "could not start " .. SERVER)
  local srv = { pid = pid, log = log }
  wait_for(function()
    local text = read_file(log)
    local port = text:match("listening address=[%d%.]+:(%d+)")
    if port then srv.port = tonumber(port) return true end
    if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then
      srv.exited = true
      return true
    end
  end, 10, "the server to print its address (log " .. log .. ")")
  return srv
end

local function stop_server(srv)
  if not srv or srv.exited then return end
  os.execute("kill " .. srv.pid .. " 2>/dev/null")
  local ok = pcall(wait_for, function() return not os.execute("kill -0 " .. srv.pid .. " 2>/dev/null") end, 5,
    "the server to exit")
  if not ok then os.execute("kill -9 " .. srv.pid .. " 2>/dev/null") end
  srv.exited = true
end

local function log_lines(srv, pattern)
  local out = {}
  for line in read_file(srv.log):gmatch("[^\n]+") do
    if line:find(pattern) then out[#out + 1] = line end
  end
  return out
end

-- Waits for the n-th (default: one more than now) log line containing `pattern` (a plain string).
local function wait_log(srv, pattern, after, what)
  return wait_for(function()
    local lines = log_lines(srv, pattern)
    return #lines > after and lines[#lines]
  end, 5, what or pattern)
end

local function count_log(srv, pattern) return #log_lines(srv, pattern) end

-- A /ws connection: request(event, data) -> the answering frame (decoded).
local Client = {}
Client.__index = Client

local function connect(srv, name)
  local ws = websocket.new_from_uri(("ws://127.0.0.1:%d/ws?name=%s"):format(srv.port, name or "spec"))
  assert(ws:connect(5 * SLOW))
  return setmetatable({ ws = ws, seq = 0 }, Client) -- the probe app has no on_connect: nothing comes first
end

function Client:next()
  local data, opcode = self.ws:receive(5 * SLOW)
  assert(data, "no frame from the server within 5 s: " .. tostring(opcode))
  return cjson.decode(data)
end

function Client:request(event, data)
  self.seq = self.seq + 1
  local id = self.seq
  assert(self.ws:send(cjson.encode({ event = event, data = data or {}, id = id })))
  for _ = 1, 100 do
    local frame = self:next()
    if frame.id == id then return frame end
  end
  error("no answer with id " .. id)
end

function Client:close() pcall(self.ws.close, self.ws) end

-- ---------------------------------------------------------------------------
-- The probe scripts

local PROBE_INIT = [==[
local space = require "space"
local extra = require "app.extra"

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = tostring(k) end
  table.sort(out)
  return space.array(out)
end

-- A global's value without tripping the strict environment.
local function global(name) return rawget(_G, name) end

local function probe()
  local r = { extra = extra }
  r.globals = sorted_keys(_G)
  r.libs = {}
  for _, lib in ipairs({ "string", "table", "math", "utf8", "coroutine", "os" }) do
    r.libs[lib] = sorted_keys(global(lib))
  end

  local reachable = {}
  for _, name in ipairs({ "io", "load", "loadstring", "dofile", "loadfile", "debug", "package",
                          "collectgarbage", "module", "setfenv", "getfenv", "unpack", "newproxy" }) do
    reachable[name] = global(name) ~= nil
  end
  for _, name in ipairs({ "exit", "execute", "getenv", "remove", "rename", "tmpname", "setlocale" }) do
    reachable["os." .. name] = os[name] ~= nil
  end
  reachable["string.dump"] = string.dump ~= nil
  -- the string metatable leads to the server's own string library, not this environment's copy
  reachable["string metatable __index is the sandbox's string"] = getmetatable("").__index == string
  r.reachable = reachable

  local req = {}
  for _, m in ipairs({ "io", "os", "debug", "package", "string", "ffi", "lfs", "socket", "posix",
                       "cjson", "cjson.safe", "space", "space.schema" }) do
    local ok, v = pcall(require, m)
    req[m] = ok and type(v) or false
  end
  r.require = req
  -- the message, and that a second attempt says the same (no module is half-loaded)
  r.require_errors = { select(2, pcall(require, "no_such_module")), select(2, pcall(require, "no_such_module")) }

  local ok, err = pcall(function() leaked_global = 1 end) -- luacheck: ignore
  r.assign_global = { ok = ok, err = tostring(err) }
  ok, err = pcall(function() return undefined_global end) -- luacheck: ignore
  r.read_global = { ok = ok, err = tostring(err) }
  ok = pcall(rawset, _G, "rawset_global", 1)
  r.rawset_global = ok and rawget(_G, "rawset_global") == 1
  pcall(rawset, _G, "rawset_global", nil)

  local cjson = require "cjson"
  r.cjson = { encoded = cjson.encode({ a = { 1, 2 } }), decoded = cjson.decode('{"b":[true]}').b[1] }
  r.os_time = math.type(os.time()) == "integer" and type(os.clock()) == "number"
    and type(os.date("!%Y-%m-%d")) == "string" and os.difftime(2, 1) == 1.0
  return r
end

local marker = {}

return {
  namespaces = {
    ["/"] = {
      events = {
        probe = function() return "probe_report", probe() end,
        print = function(_, data)
          print(data.text, 1, nil, true)
          return "printed", {}
        end,
        -- Changes to tables the server shares between generations.
        taint = function()
          getmetatable("").__index.tainted_by_spec = function() return "tainted" end
          require("space").tainted_by_spec = marker
          require("cjson").tainted_by_spec = marker
          return "tainted", {}
        end,
        check_taint = function()
          return "taint", {
            string_method = pcall(function() return ("x"):tainted_by_spec() end),
            space_field = require("space").tainted_by_spec ~= nil,
            cjson_field = require("cjson").tainted_by_spec ~= nil,
          }
        end,
      },
    },
  },
}
]==]

local EXPECTED_GLOBALS = {
  "_G", "_VERSION", "assert", "coroutine", "error", "getmetatable", "ipairs", "math", "next", "os",
  "pairs", "pcall", "print", "rawequal", "rawget", "rawlen", "rawset", "require", "select",
  "setmetatable", "string", "table", "tonumber", "tostring", "type", "utf8", "xpcall",
}

-- The libraries as Lua 5.4 has them (the whole of each is allowed), and os cut down.
local function keys_of(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = tostring(k) end
  table.sort(out)
  return out
end

local EXPECTED_LIBS = {
  string = keys_of(string), table = keys_of(table), math = keys_of(math), utf8 = keys_of(utf8),
  coroutine = keys_of(coroutine), os = { "clock", "date", "difftime", "time" },
}

local function make_tree()
  local dir = mkdtemp()
  os.execute("mkdir -p " .. sh_quote(dir .. "/scripts/app") .. " " .. sh_quote(dir .. "/plugins"))
  write_file(dir .. "/scripts/init.lua", PROBE_INIT)
  write_file(dir .. "/scripts/app/extra.lua", 'return "extra 1"\n')
  return dir
end

describe("the script sandbox (real server)", function()
  local dir, srv, client, report

  setup(function()
    assert(io.open(SERVER, "rb"), "server binary not found at " .. SERVER .. " (set SPACE_SERVER)"):close()
    dir = make_tree()
    srv = start_server(dir)
    assert(not srv.exited, "the server did not start:\n" .. read_file(srv.log))
    client = connect(srv)
    local frame = client:request("probe")
    assert.are.equal("probe_report", frame.event, cjson.encode(frame))
    report = frame.data
  end)

  teardown(function()
    if client then client:close() end
    stop_server(srv)
    if dir then os.execute("rm -rf " .. sh_quote(dir)) end
  end)

  it("gives scripts exactly the allowlisted globals", function()
    assert.are.same(EXPECTED_GLOBALS, report.globals)
  end)

  it("gives the whole of string, table, math, utf8, coroutine, and of os only time, clock, date, difftime", function()
    assert.are.same(EXPECTED_LIBS, report.libs)
  end)

  it("reaches none of io, load, dofile, loadfile, debug, package, collectgarbage, os.exit/execute/getenv", function()
    assert.are.same({
      io = false, load = false, loadstring = false, dofile = false, loadfile = false, debug = false,
      package = false, collectgarbage = false, module = false, setfenv = false, getfenv = false,
      unpack = false, newproxy = false,
      ["os.exit"] = false, ["os.execute"] = false, ["os.getenv"] = false, ["os.remove"] = false,
      ["os.rename"] = false, ["os.tmpname"] = false, ["os.setlocale"] = false,
      -- string is allowed whole: dump makes binary chunks, which nothing can load (see below)
      ["string.dump"] = true,
      ["string metatable __index is the sandbox's string"] = false,
    }, report.reachable)
  end)

  it("requires cjson, cjson.safe, space and space.schema, and no other C or standard module", function()
    assert.are.same({
      io = false, os = false, debug = false, package = false, string = false, ffi = false, lfs = false,
      socket = false, posix = false,
      cjson = "table", ["cjson.safe"] = "table", space = "table", ["space.schema"] = "table",
    }, report.require)
  end)

  it("reads a module name as a file of the scripts directory, and a failed require fails the same way again", function()
    local msg = ("cannot open %s/scripts/no_such_module.lua: No such file or directory"):format(dir)
    assert.are.same({ msg, msg }, report.require_errors)
  end)

  it("makes assigning or reading an undeclared global an error", function()
    assert.is_false(report.assign_global.ok)
    assert.matches("init%.lua:%d+: assignment to undeclared global 'leaked_global' %(use local%)$", report.assign_global.err)
    assert.is_false(report.read_global.ok)
    assert.matches("init%.lua:%d+: undeclared global 'undefined_global' %(use local%)$", report.read_global.err)
    assert.is_false(report.rawset_global) -- rawset cannot get around it
  end)

  it("gives cjson and the os time functions that work", function()
    assert.are.same({ encoded = '{"a":[1,2]}', decoded = true }, report.cjson)
    assert.is_true(report.os_time)
  end)

  it("logs print's arguments, tab-separated, and nothing else", function()
    local n = count_log(srv, "lua: print:")
    local frame = client:request("print", { text = "hello from the spec" })
    assert.are.equal("printed", frame.event)
    local line = wait_log(srv, "lua: print:", n)
    assert.are.equal("hello from the spec\t1\tnil\ttrue", line:match("lua: print: (.*)$"))
  end)

  it("refuses a file holding a binary chunk (string.dump output) at reload, naming it, and keeps the old scripts", function()
    local path = dir .. "/scripts/app/extra.lua"
    local n = count_log(srv, "reload failed")
    write_file(path, string.dump(function() return "extra from a binary chunk" end))
    local line = wait_log(srv, "reload failed", n, "the reload of a binary chunk to fail")
    local still = client:request("probe").data.extra
    -- a text file again: reloads (before asserting, so that the next specs find the scripts whole)
    local ok = count_log(srv, "reloaded")
    write_file(path, 'return "extra 2"\n')
    wait_log(srv, "reloaded", ok, "the fixed file to reload")
    assert.are.equal("extra 2", client:request("probe").data.extra)

    assert.are.equal("extra 1", still)
    assert.truthy(line:find("attempt to load a binary chunk", 1, true), line)
    assert.truthy(line:find(path, 1, true), "the log line should name the file: " .. line)
  end)

  it("loads every reload into a fresh sandbox: changes to shared tables do not outlive the generation", function()
    -- The server refuses the change outright (read-only module views, a locked string
    -- metatable); a server that allowed it must at least drop it at the next reload.
    local answer = client:request("taint")
    assert.truthy(answer.event == "tainted" or (answer.event == "error" and answer.data.code == "internal_error"),
      "taint answered " .. tostring(answer.event))
    local n = count_log(srv, "reloaded")
    os.execute("kill -HUP " .. srv.pid)
    local line = wait_log(srv, "trigger=SIGHUP", 0, "the SIGHUP reload")
    assert.is_true(count_log(srv, "reloaded") > n, line)
    assert.are.same({ string_method = false, space_field = false, cjson_field = false },
      client:request("check_taint").data)
  end)
end)

describe("a binary chunk as a script (real server)", function()
  it("stops the server at start, saying which file", function()
    local dir = make_tree()
    local path = dir .. "/scripts/init.lua"
    write_file(path, string.dump(function() return { namespaces = { ["/"] = { events = {} } } } end))
    local srv = start_server(dir)
    finally(function()
      stop_server(srv)
      os.execute("rm -rf " .. sh_quote(dir))
    end)
    assert.is_true(srv.exited, "the server must refuse to start on a binary init.lua:\n" .. read_file(srv.log))
    local log = read_file(srv.log)
    assert.truthy(log:find("attempt to load a binary chunk", 1, true), log)
    assert.truthy(log:find(path, 1, true), "the error should name the file:\n" .. log)
  end)
end)
