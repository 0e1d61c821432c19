'use strict';
// What a script can change outside its own generation (issue 11, items 3 and 4), through a real
// server running a hostile script set that this file writes into a temp dir:
//   - lua-cjson: scripts get a private instance per generation whose limits they can only lower;
//     raising encode_max_depth and then encoding a 300,000-deep table crashed the server (SIGSEGV),
//     and the raised limit outlived the generation, so an innocent decode of 100,000 '[' crashed too
//   - the metatables of binary values, arrays and connection handles cannot be reached, so a
//     script cannot change how every later generation's values behave (tostring of a binary value
//     gave a script's "HIJACKED" after POST /api/reload)
//   - rawset cannot write the read-only module views or the globals, and setmetatable cannot take
//     the globals' strictness away
// Every answer is awaited with a bound; the server must survive every test and exit cleanly.
// Run: node --test spec/e2e/sandbox_isolation.test.js   (binary from $SPACE_SERVER)

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

const { show, T } = h;

// Each event answers `report` with what its attempts did: for each, true when it got through,
// or the error text when it was refused.
const INIT = String.raw`
local space = require "space"
local cjson = require "cjson"
local safe = require "cjson.safe"

-- true when f runs, else its error without the "file:line: " prefix.
local function try(f, ...)
  local ok, err = pcall(f, ...)
  if ok then return true end
  return (tostring(err):gsub("^[^:]*:%d+: ", ""))
end

local function nest(depth)
  local t = {}
  for _ = 2, depth do t = { t } end
  return t
end

local function report(r) return "report", r end

return {
  namespaces = {
    ["/"] = {
      on_connect = function(conn) conn:emit("connected", { sid = conn:id(), user = conn:user() }) end,
      events = {
        -- Tries to raise every limit of both modules and of an instance made with new().
        cjson_raise = function()
          return report({
            encode_max_depth = try(cjson.encode_max_depth, 1e8),
            decode_max_depth = try(cjson.decode_max_depth, 1e8),
            safe_encode_max_depth = try(safe.encode_max_depth, 1e8),
            safe_decode_max_depth = try(safe.decode_max_depth, 1e8),
            sparse_ratio = try(cjson.encode_sparse_array, false, 0),
            sparse_safe = try(cjson.encode_sparse_array, false, 2, 1e9),
            new_encode_max_depth = try(function() return cjson.new().encode_max_depth(1e8) end),
            new_safe_decode_max_depth = try(function() return safe.new().decode_max_depth(1e8) end),
            rawset_module = try(rawset, cjson, "encode_max_depth", function() end),
            assign_module = try(function() cjson.encode = nil end),
          })
        end,
        -- The limits as this generation sees them; optionally lowered first.
        cjson_limits = function(_, data)
          if data.lower then
            cjson.encode_max_depth(data.lower)
            cjson.decode_max_depth(data.lower)
          end
          return report({
            encode_max_depth = cjson.encode_max_depth(),
            decode_max_depth = cjson.decode_max_depth(),
            safe_decode_max_depth = safe.decode_max_depth(),
            sparse = { cjson.encode_sparse_array() },
            encode_50 = try(cjson.encode, nest(50)),
            decode_50 = try(cjson.decode, ("["):rep(50) .. ("]"):rep(50)),
          })
        end,
        cjson_deep = function()
          return report({
            encode = try(cjson.encode, nest(300000)),
            decode = try(cjson.decode, ("["):rep(100000)),
            safe_decode = select(2, safe.decode(("["):rep(100000))),
            sparse = try(cjson.encode, { [1e9] = true }),
          })
        end,
        -- Changes to state every generation shares: the metatables of binary values, arrays and
        -- connection handles; the module views; the globals.
        taint = function(conn)
          local function hijack(v, key)
            return try(function() getmetatable(v)[key] = function() return "HIJACKED" end end)
          end
          return report({
            binary_mt = hijack(space.binary("abc"), "__tostring"),
            array_mt = hijack(space.array({}), "__index"),
            decoded_array_mt = hijack(space.json_decode("[1]"), "__len"),
            conn_mt = try(function() getmetatable(conn).__index.id = function() return "HIJACKED" end end),
            setmetatable_array = try(setmetatable, space.array({}), nil),
            rawset_space = try(rawset, space, "to", 1),
            rawset_globals = try(rawset, _G, "leaked", 1),
            setmetatable_globals = try(setmetatable, _G, nil),
            getmetatable_globals = type(getmetatable(_G)),
            -- still strict whatever the attempts above did
            new_global = try(function() leaked2 = 1 end), -- luacheck: ignore
            space_to = type(space.to),
            leaked = rawget(_G, "leaked") ~= nil,
          })
        end,
        check = function(conn)
          local arr = space.json_decode("[1, 2]")
          return report({
            binary = tostring(space.binary("abc")),
            array_index = space.array({})[1] == nil,
            decoded_len = #arr,
            decoded_json = space.json_encode(arr),
            id = conn:id() ~= "HIJACKED",
            space_to = type(space.to),
            new_global = try(function() leaked3 = 1 end), -- luacheck: ignore
          })
        end,
      },
    },
  },
}
`;

let managed;
let dir;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'space-isolation-'));
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.mkdirSync(path.join(dir, 'plugins'));
  fs.writeFileSync(path.join(dir, 'scripts', 'init.lua'), INIT);
  // Building a 300,000-deep table takes longer than --lua-cpu-ms allows: the limits under test
  // here are lua-cjson's, so the CPU-time limit is out of the way.
  managed = new h.ManagedServer({
    scripts: path.join(dir, 'scripts'), args: ['--plugins', path.join(dir, 'plugins'), '--lua-cpu-ms', '60000'],
  });
  await managed.start();
});
afterEach(async () => {
  h.closeAllClients();
  await managed.check();
});
after(async () => {
  h.closeAllClients();
  try {
    await managed.finish();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

async function ask(sock, event, data = {}) {
  const r = await h.request(sock, event, data, 'report');
  assert.equal(r.name, 'report', `${event}: expected "report", got ${r.name} ${show(r.data)}\n${managed.srv.describe()}`);
  return r.data;
}

// POST /api/reload from loopback (no admin token configured) and wait for its 200.
async function reload(srv) {
  const r = await h.httpRaw(srv.port, `POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  assert.equal(r.status, 200, `POST /api/reload: ${r.status} ${r.body}`);
}

function refused(value, what) {
  assert.equal(typeof value, 'string', `${what} should be refused, but it went through`);
}

test('scripts cannot raise the limits of their cjson, of cjson.safe or of an instance from new()', async () => {
  const srv = await managed.ensure();
  const sock = await h.connectClient(srv, 'raiser');
  const r = await ask(sock, 'cjson_raise');
  for (const [k, v] of Object.entries(r)) refused(v, k);
  assert.match(r.encode_max_depth, /encode_max_depth/, r.encode_max_depth);
  const limits = await ask(sock, 'cjson_limits');
  assert.deepEqual(
    [limits.encode_max_depth, limits.decode_max_depth, limits.safe_decode_max_depth, limits.sparse],
    [1000, 1000, 1000, [false, 2, 10]], show(limits));
});

test('a 300,000-deep table and 100,000 "[" answer errors, and the server lives', async () => {
  const srv = await managed.ensure();
  const sock = await h.connectClient(srv, 'deep');
  await ask(sock, 'cjson_raise'); // the raise of the old server, refused now
  const r = await ask(sock, 'cjson_deep');
  assert.match(String(r.encode), /Cannot serialise, excessive nesting/, show(r));
  assert.match(String(r.decode), /Found too many nested data structures/, show(r));
  assert.match(String(r.safe_decode), /Found too many nested data structures/, show(r));
  assert.match(String(r.sparse), /excessively sparse array/, show(r));
  await h.assertAlive(srv);
});

test('limits a generation lowered go back to the defaults at the next reload', async () => {
  const srv = await managed.ensure();
  const sock = await h.connectClient(srv, 'lower');
  const low = await ask(sock, 'cjson_limits', { lower: 5 });
  assert.deepEqual([low.encode_max_depth, low.decode_max_depth, low.safe_decode_max_depth], [5, 5, 1000], show(low));
  refused(low.encode_50, 'encoding 50 levels under a limit of 5');
  refused(low.decode_50, 'decoding 50 levels under a limit of 5');
  await reload(srv);
  const fresh = await ask(sock, 'cjson_limits');
  assert.deepEqual([fresh.encode_max_depth, fresh.decode_max_depth, fresh.encode_50, fresh.decode_50],
    [1000, 1000, true, true], show(fresh));
});

test('metatables, module views and the globals stay as the server made them, across a reload', async () => {
  const srv = await managed.ensure();
  const sock = await h.connectClient(srv, 'tainter');
  const t = await ask(sock, 'taint');
  for (const k of ['binary_mt', 'array_mt', 'decoded_array_mt', 'conn_mt', 'setmetatable_array', 'rawset_space',
    'rawset_globals', 'setmetatable_globals', 'new_global']) refused(t[k], k);
  assert.match(t.rawset_globals, /global/, t.rawset_globals);
  assert.match(t.new_global, /assignment to undeclared global 'leaked2'/, t.new_global);
  assert.equal(t.getmetatable_globals, 'string', 'getmetatable(_G) must not give the globals\' metatable');
  assert.equal(t.space_to, 'function');
  assert.equal(t.leaked, false);
  const expected = {
    binary: 'abc', array_index: true, decoded_len: 2, decoded_json: '[1,2]', id: true, space_to: 'function',
    new_global: "assignment to undeclared global 'leaked3' (use local)",
  };
  assert.deepEqual(await ask(sock, 'check'), expected);
  await reload(srv);
  assert.deepEqual(await ask(sock, 'check'), expected, 'after POST /api/reload');
});
