'use strict';
// Hostile handlers cannot get past their budget, and every call answers (README "Sandbox and limits").
// One server runs the stock scripts plus hostile events written into a temp copy of scripts/.
// After each hostile event the test checks that its sender got an answer (an `error` event and the
// ack, both internal_error), that GET /healthz answers and that two other clients still chat; at the
// end SIGTERM must end the server with exit status 0.
//   - xpcall whose message handler loops: after a plain error(), and after the budget's own error
//     (Lua runs a message handler with hooks off when the error came from a hook)
//   - __gc and __close metamethods (a finalizer runs with hooks off; a coroutine that died in the
//     budget hook closes its <close> variables with hooks off)
//   - pattern bombs through string.find/match/gmatch/gsub, as functions and as string methods
//   - a result that cannot be encoded (a cyclic table, a function), a reserved event name (returned,
//     conn:emit, conn:to, space.to), a memory bomb: internal_error, and the log names handler and line
//   - space.log of a client's text with newlines: no forged log line
// Run: node --test spec/e2e/script_limits.test.js   (binary from $SPACE_SERVER)

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./harness');

const { T, show } = h;
const CPU_UNLIMITED = ['--lua-cpu-ms', '60000'];

// name -> handler source (the file events/hostile_<name>.lua returns it)
const HOSTILE = {
  xpcall_after_error: `
    return function(conn, data)
      xpcall(function() error("x") end, function(m) while true do end end)
      return "survived", {}
    end`,
  xpcall_after_budget: `
    return function(conn, data)
      xpcall(function() while true do end end, function(m) while true do end end)
      return "survived", {}
    end`,
  xpcall_long_handler: `
    return function(conn, data)
      local ok, e = xpcall(function() error("x") end, function(m)
        local i = 0
        while i < 1e12 do i = i + 1 end
        return m
      end)
      return "survived", {}
    end`,
  gc_loop: `
    return function(conn, data)
      setmetatable({}, { __gc = function() while true do end end })
      error("fails, so that a full collection runs")
    end`,
  gc_added_later: `
    return function(conn, data)
      local mt = {}
      local t = setmetatable({}, mt)
      mt.__gc = function() while true do end end
      t = nil
      error("fails, so that a full collection runs")
    end`,
  gc_shared_mt: `
    local space = require "space"
    return function(conn, data)
      local mt = getmetatable(space.array())
      mt.__gc = function() while true do end end
      return "survived", {}
    end`,
  gc_rawset_shared_mt: `
    local space = require "space"
    return function(conn, data)
      local mt = getmetatable(space.array())
      rawset(mt, "__gc", function() while true do end end)
      return "survived", {}
    end`,
  gc_conn_mt: `
    return function(conn, data)
      getmetatable(conn).__gc = function() while true do end end
      return "survived", {}
    end`,
  close_loop: `
    return function(conn, data)
      local t = setmetatable({}, { __close = function() while true do end end })
      do local x <close> = t end
      return "survived", {}
    end`,
  close_after_hook: `
    return function(conn, data)
      local mt = {}
      local t = setmetatable({}, mt)
      mt.__close = function() while true do end end
      local co = coroutine.create(function()
        local x <close> = t
        while true do end
      end)
      coroutine.resume(co)
      coroutine.close(co)
      return "survived", {}
    end`,
  find_bomb: `
    return function(conn, data)
      local s = (" x" .. (" "):rep(1000000) .. "x")
      return "survived", { string.find(s, "[ \\t]+$") }
    end`,
  method_bomb: `
    return function(conn, data)
      local s = ("a"):rep(100000)
      return "survived", { s:match(".-.-.-b") }
    end`,
  gmatch_bomb: `
    return function(conn, data)
      local s = ("a"):rep(100000)
      for w in s:gmatch("a-a-a-b") do end
      return "survived", {}
    end`,
  gsub_bomb: `
    return function(conn, data)
      local s = ("a"):rep(100000)
      return "survived", { (string.gsub(s, "a*a*a*b", "")) }
    end`,
  plain_find_bomb: `
    return function(conn, data)
      local s = ("a"):rep(4000000)
      local p = ("a"):rep(2000000) .. "b"
      return "survived", { s:find(p, 1, true) }
    end`,
  rep_empty: `
    return function(conn, data)
      return "survived", { #string.rep("", 2^40) }
    end`,
  move_huge: `
    return function(conn, data)
      table.move({}, 1, 2^50, 1, {})
      return "survived", {}
    end`,
  insert_len: `
    return function(conn, data)
      local t = setmetatable({}, { __len = function() return 2^50 end })
      table.insert(t, 1, "x")
      return "survived", {}
    end`,
  slow_calls_loop: `
    return function(conn, data)
      local s = string.rep("x", 2^24)
      local len = utf8.len
      while true do len(s) end
    end`,
  refresh_loop: `
    return function(conn, data)
      while true do conn:refresh_token(data.token) end
    end`,
  cyclic_result: `
    return function(conn, data)
      local t = {}
      t.self = t
      return "result", t
    end`,
  function_result: `
    return function(conn, data)
      return "result", { f = function() end }
    end`,
  reserved_return: `
    return function(conn, data)
      return "connect", {}
    end`,
  reserved_emit: `
    return function(conn, data)
      conn:emit("disconnect", {})
      return "survived", {}
    end`,
  reserved_to: `
    return function(conn, data)
      conn:to(data.room, "connect_error", {})
      return "survived", {}
    end`,
  reserved_space_to: `
    local space = require "space"
    return function(conn, data)
      space.to(data.room, "newListener", {})
      return "survived", {}
    end`,
  memory_bomb: `
    return function(conn, data)
      local t = {}
      for i = 1, 1e9 do
        t[i] = ("x"):rep(1000) .. i
      end
      return "survived", {}
    end`,
  log_text: `
    local space = require "space"
    return function(conn, data)
      space.log("info", "said: " .. data.text)
      return "logged", {}
    end`,
};

let scriptsDir;
let srv;
let a;
let b;
let room;
let seq = 0;

function addHostile(text) {
  return text.replace('join_room = require', Object.keys(HOSTILE)
    .map((n) => `hostile_${n} = require "events.hostile_${n}",\n        `).join('') + 'join_room = require');
}

before(async () => {
  scriptsDir = h.copyScripts((rel, text) => (rel === 'init.lua' ? addHostile(text) : text));
  assert.ok(fs.readFileSync(path.join(scriptsDir, 'init.lua'), 'utf8').includes('hostile_'), 'init.lua edited');
  for (const [name, src] of Object.entries(HOSTILE)) {
    fs.writeFileSync(path.join(scriptsDir, 'events', `hostile_${name}.lua`), src);
  }
  // The paths under test here are the instruction budget's: the CPU-time limit (--lua-cpu-ms,
  // checked in witness.test.js) would otherwise stop some loops first on a slow (sanitizer) build.
  srv = await h.startServer({ scripts: scriptsDir, args: CPU_UNLIMITED });
  room = h.uniqueRoom('limits');
  a = await h.connectClient(srv, h.uniqueName('a'));
  b = await h.connectClient(srv, h.uniqueName('b'));
  await h.expectAnswer(a, 'join_room', { room }, 'joined_room');
  await h.expectAnswer(b, 'join_room', { room }, 'joined_room');
});

after(async () => {
  h.closeAllClients();
  if (srv && !srv.exit) await srv.stop(T(2000));
  if (scriptsDir) fs.rmSync(scriptsDir, { recursive: true, force: true });
});

// The server is still there for everyone else: /healthz answers and a chat message goes through.
async function witness() {
  const r = await h.httpRaw(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', T(3000))
    .catch((e) => { throw new Error(`GET /healthz: ${e.message}\n${srv.describe()}`); });
  assert.equal(r.status, 200, 'GET /healthz');
  const text = `witness ${++seq}`;
  await h.expectAnswer(a, 'send_message', { room, text }, 'message_sent');
  await h.nextEvent(b, 'new_message', T(3000), (m) => m.text === text);
}

// Emits a hostile event with an ack from a fresh client; returns {ack, event} (the event is `error`
// or the handler's answer).
async function runHostile(name, data = {}) {
  const c = await h.connectClient(srv, h.uniqueName('evil'));
  const ack = await c.timeout(T(8000)).emitWithAck(`hostile_${name}`, data)
    .catch((e) => { throw new Error(`no ack for hostile_${name}: ${e.message}\n${srv.describe()}`); });
  const ev = await c.inbox.take(['error', 'survived', 'result', 'connect', 'logged'], null, T(3000));
  h.disconnectClient(c);
  return { ack, event: { name: ev.name, data: ev.data } };
}

async function expectInternalError(name, data) {
  const r = await runHostile(name, data);
  assert.equal(r.event.name, 'error', `hostile_${name}: ${show(r)}`);
  assert.equal(r.event.data.code, 'internal_error', `hostile_${name}: ${show(r)}`);
  assert.equal(r.ack.code, 'internal_error', `hostile_${name} ack: ${show(r)}`);
  await witness();
  return r;
}

// The log line of the handler's failure (waits for it).
async function failureLine(name) {
  const re = new RegExp(`handler failed handler=/:hostile_${name}\\b[^\\n]*`);
  const m = await h.waitFor(() => re.exec(srv.stderr), T(3000), `the log line of hostile_${name}`);
  return m[0];
}

test('the witness chat works before anything hostile', async () => {
  await witness();
});

for (const name of ['xpcall_after_error', 'xpcall_after_budget', 'xpcall_long_handler']) {
  test(`an xpcall message handler that loops is stopped by the budget (${name})`, async () => {
    await expectInternalError(name);
    assert.match(await failureLine(name), /budget exceeded/);
  });
}

test('setmetatable refuses __gc and __close', async () => {
  await expectInternalError('gc_loop');
  assert.match(await failureLine('gc_loop'), /hostile_gc_loop\.lua:3: .*__gc/);
  await expectInternalError('close_loop');
  assert.match(await failureLine('close_loop'), /__close/);
});

test('the metatables the host shares (arrays, binary values, conn handles) get no __gc', async () => {
  for (const name of ['gc_shared_mt', 'gc_rawset_shared_mt', 'gc_conn_mt']) {
    await expectInternalError(name);
    // Refused as a __gc, or earlier: getmetatable gives protected metatables' names, not the tables.
    assert.match(await failureLine(name), /__gc|attempt to index a string value|table expected, got string/);
  }
  // Arrays, and a new connection's handle, still work (and nothing runs as their finalizer).
  const c = await h.connectClient(srv, h.uniqueName('after'));
  await h.expectAnswer(c, 'join_room', { room }, 'joined_room');
  await h.expectAnswer(c, 'get_room_users', { room }, 'room_users');
  h.disconnectClient(c);
  await witness();
});

test('a __gc added to a metatable later is never run', async () => {
  await expectInternalError('gc_added_later');
});

test('a coroutine that died in the budget closes nothing with hooks off', async () => {
  // The budget's error ended the coroutine (resume caught it, as pcall would); its <close> value,
  // whose __close would run with hooks off, is left alone.
  const r = await runHostile('close_after_hook');
  assert.ok(['survived', 'error'].includes(r.event.name), show(r));
  await witness();
});

for (const name of ['find_bomb', 'method_bomb', 'gmatch_bomb', 'gsub_bomb', 'plain_find_bomb']) {
  test(`a pattern bomb is refused before it runs (${name})`, async () => {
    await expectInternalError(name);
    assert.match(await failureLine(name), /hostile_\w+\.lua:\d+: .*pattern/);
  });
}

for (const name of ['rep_empty', 'move_huge', 'insert_len']) {
  test(`a library loop as long as an argument says is refused (${name})`, async () => {
    await expectInternalError(name);
    assert.match(await failureLine(name), /hostile_\w+\.lua:\d+: .*too long a loop/);
  });
}

test('a loop of slow C calls is stopped by the budget', async () => {
  await expectInternalError('slow_calls_loop');
  assert.match(await failureLine('slow_calls_loop'), /budget exceeded/);
});

test('a result that cannot be encoded answers internal_error; the log names file:line', async () => {
  await expectInternalError('cyclic_result');
  assert.match(await failureLine('cyclic_result'), /hostile_cyclic_result\.lua:\d+/);
  await expectInternalError('function_result');
  assert.match(await failureLine('function_result'), /hostile_function_result\.lua:\d+/);
});

test('a handler may not emit reserved event names', async () => {
  const r = await expectInternalError('reserved_return');
  assert.notEqual(r.event.name, 'connect');
  assert.match(await failureLine('reserved_return'), /hostile_reserved_return\.lua:\d+: .*'connect'/);
  await expectInternalError('reserved_emit');
  assert.match(await failureLine('reserved_emit'), /'disconnect'/);
  await expectInternalError('reserved_to', { room });
  assert.match(await failureLine('reserved_to'), /'connect_error'/);
  await expectInternalError('reserved_space_to', { room });
  assert.match(await failureLine('reserved_space_to'), /'newListener'/);
  // The room's members got none of these.
  for (const c of [a, b]) {
    assert.equal(c.inbox.count('connect_error') + c.inbox.count('newListener'), 0, c.inbox.summary());
  }
});

test('a memory bomb names the handler and its line', async () => {
  await expectInternalError('memory_bomb');
  assert.match(await failureLine('memory_bomb'), /hostile_memory_bomb\.lua:5: .*not enough memory/);
});

test('space.log cannot forge log lines', async () => {
  const r = await runHostile('log_text', { text: 'hi\n2030-01-01T00:00:00.000Z error lua: FORGED\r\x1b[31m' });
  assert.equal(r.event.name, 'logged', show(r));
  const line = await h.waitFor(() => /said: hi[^\n]*/.exec(srv.stderr), T(3000), 'the space.log line');
  assert.match(line[0], /said: hi\\n2030-01-01T00:00:00\.000Z error lua: FORGED\\r\\x1b\[31m/);
  assert.doesNotMatch(srv.stderr, /^2030-01-01T00:00:00\.000Z error lua: FORGED/m);
  await witness();
});

// A call made from inside a call (conn:refresh_token runs the jwt plugin's on_authenticate) spends
// the outer call's budget: a loop of them used to start a fresh budget and deadline every time.
test('nested calls share the budget of the handler that makes them', async () => {
  const secret = crypto.randomBytes(32).toString('hex');
  const secretFile = path.join(scriptsDir, 'jwt.secret');
  fs.writeFileSync(secretFile, secret);
  const token = h.signHS256(secret, { sub: h.uniqueName('jwt'), exp: Math.floor(Date.now() / 1000) + 3600 });
  const jwtSrv = await h.startServer({ scripts: scriptsDir, args: ['--jwt-secret-file', secretFile, ...CPU_UNLIMITED] });
  try {
    const c = await h.connectClient(jwtSrv, undefined, { auth: { token } });
    const ack = await c.timeout(T(8000)).emitWithAck('hostile_refresh_loop', { token });
    assert.equal(ack.code, 'internal_error', show(ack));
    const line = await h.waitFor(() => /handler failed handler=\/:hostile_refresh_loop[^\n]*/.exec(jwtSrv.stderr),
      T(3000), 'the log line');
    // Whichever of the call's limits comes first: its instructions or its allocations.
    assert.match(line[0], /budget exceeded|not enough memory \(a quarter of the memory cap in one call\)/);
    c.disconnect();
    const r = await jwtSrv.stop(T(5000));
    assert.deepEqual({ code: r.code, killed: r.killed }, { code: 0, killed: false }, jwtSrv.describe());
  } finally {
    if (!jwtSrv.exit) await jwtSrv.stop(T(2000));
  }
});

test('SIGTERM ends the server after all that', async () => {
  await witness();
  h.closeAllClients();
  const r = await srv.stop(T(5000));
  assert.deepEqual({ code: r.code, killed: r.killed }, { code: 0, killed: false }, srv.describe());
  assert.doesNotMatch(srv.stderr, /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/, srv.describe());
});
