'use strict';
// A witness chat under attack (issue 11's "done when"): two stock socket.io-client connections chat
// in their own room, from a worker thread of their own, while this file throws at the same server
// every hostile payload and script the hardening work closed: quadratic trims on client text and on a
// dev-mode name, handlers that loop in an xpcall message handler, in a __gc finalizer, in a plain
// loop, pattern bombs, lua-cjson's process-wide limits, unencodable results, memory bombs, reserved
// event names, JSON too deep or out of range on Socket.IO and on /ws, a smuggled HTTP request.
// Each hostile request must get its answer, and the witness's round trips (send_message at one
// connection -> new_message at the other, one every 5 ms) must stay under 50 ms (scaled by
// SPACE_TEST_SLOW): a few may not, for the machine's own scheduling (a busy shared host delays a
// thread now and then), but a stall of the server's loop delays every message sent during it: a
// 100 ms stall puts ten or more trips over 50 ms, and none may pass 150 ms.
// The server then still answers /healthz and exits 0 on SIGTERM.
// Run: node --test spec/e2e/witness.test.js   (binary from $SPACE_SERVER)

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const WebSocket = require('ws');
const h = require('./harness');

const { T, show } = h;
const WORST_ROUND_TRIP_MS = T(50);
const MAX_TRIPS_OVER = 8;            // isolated scheduling delays of the test machine, not a stall
const HARD_ROUND_TRIP_MS = T(150);

// The stock app, with a generous rate limit for the witness, and a namespace of hostile handlers.
const HOSTILE = String.raw`
local space = require "space"
local cjson = require "cjson"
local M = {}
function M.xpcall_loop() xpcall(function() error("x") end, function() while true do end end) end
function M.gc_loop()
  setmetatable({}, { __gc = function() while true do end end })
  error("fail so that a full collection runs the finalizer")
end
function M.plain_loop() local i = 0 while true do i = i + 1 end end
function M.pattern_find() return "r", { n = string.find(("a"):rep(200000), ("a*"):rep(30) .. "b") } end
function M.pattern_gsub() return "r", { s = (("a"):rep(200000):gsub(("a?"):rep(40) .. "b", "")) } end
function M.pattern_match() return "r", { s = string.match((" "):rep(300000) .. "x", "^(.-)%s*$") } end
function M.cjson_depth()
  pcall(cjson.encode_max_depth, 1e8)
  pcall(cjson.decode_max_depth, 1e8)
  local t = {}
  for _ = 1, 300000 do t = { t } end
  local ok = pcall(cjson.encode, t)
  return "r", { ok = ok }
end
function M.cjson_decode() local ok = pcall(cjson.decode, ("["):rep(100000)) return "r", { ok = ok } end
function M.cyclic() local t = {} t.self = t return "r", t end
function M.a_function() return "r", { f = function() end } end
function M.memory() local t = {} for i = 1, 1e8 do t[i] = ("x"):rep(64) .. i end end
function M.reserved() return "connect", {} end
function M.reserved_emit(conn) conn:emit("disconnect", {}) return "r", {} end
function M.log_forgery(conn, data) space.log("info", tostring(data and data.text)) return "r", {} end
return M
`;

function hostileTree() {
  return h.copyScripts((rel, text) => {
    if (rel === 'rules.lua') {
      return text.replace(/per_second = \d+/, 'per_second = 1000').replace(/burst = \d+/, 'burst = 1000');
    }
    if (rel === 'init.lua') {
      // The stock table, with the hostile handlers added to "/".
      return text.replace(/^return \{/m, 'local app = {').trimEnd() +
        '\nlocal hostile = require "hostile"\n' +
        'for name, fn in pairs(hostile) do app.namespaces["/"].events["hostile_" .. name] = fn end\n' +
        'return app\n';
    }
    return text;
  });
}

// The witness: its own thread and event loop, so that this file's own work (building megabyte
// payloads) never delays it. It reports every round trip with the time it was measured.
const WITNESS = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const { io } = require(workerData.client);
const opts = { transports: ['websocket'], reconnection: false, forceNew: true };
const a = io(workerData.url, { ...opts, auth: { name: 'witness-a' } });
const b = io(workerData.url, { ...opts, auth: { name: 'witness-b' } });
const room = workerData.room;
const sent = new Map();
const trips = [];
let seq = 0; let timer = null; let received = 0; let errors = [];
const ready = (s) => new Promise((res) => s.once('joined_room', res));
a.on('error', (e) => errors.push(e)); b.on('error', (e) => errors.push(e));
b.on('new_message', (m) => {
  const t0 = sent.get(m.text);
  if (t0 !== undefined) { trips.push([Date.now(), Date.now() - t0]); sent.delete(m.text); received++; }
});
Promise.all([new Promise((r) => a.once('connected', r)), new Promise((r) => b.once('connected', r))]).then(async () => {
  const ja = ready(a); a.emit('join_room', { room }); await ja;
  const jb = ready(b); b.emit('join_room', { room }); await jb;
  timer = setInterval(() => {
    const text = 'w' + (++seq);
    sent.set(text, Date.now());
    a.emit('send_message', { room, text });
  }, 5);
  parentPort.postMessage({ type: 'ready' });
});
parentPort.on('message', (msg) => {
  if (msg !== 'stop') return;
  clearInterval(timer);
  setTimeout(() => {
    parentPort.postMessage({ type: 'done', trips, sent: seq, received, lost: [...sent.keys()], errors });
    a.close(); b.close();
  }, 500);
});
`;

let srv = null;
let worker = null;
after(async () => {
  if (worker) await worker.terminate();
  h.closeAllClients();
  if (srv) await srv.stop();
});

async function expectAnyAnswer(socket, event, data, what) {
  socket.emit(event, data);
  const it = await socket.inbox.take(['error', 'r', 'message_sent', 'connect', 'disconnect', '$disconnect'], null, T(5000))
    .catch((e) => { throw new Error(`${what}: no answer (${e.message})\n${srv.describe()}`); });
  return it;
}

test('a witness chat keeps its round trips under 50 ms while every hostile payload and script runs', async (t) => {
  const tree = hostileTree();
  fs.writeFileSync(path.join(tree, 'hostile.lua'), HOSTILE);
  // Every other connection waits while a handler runs, and what stops a hostile one is its CPU
  // time: 5 ms keeps the witness's round trips under 50 ms even with both cores busy. (The default,
  // 50 ms, leaves room for the collector's bursts and big uploads under load in honest calls.)
  srv = await h.startServer({ scripts: tree, args: ['--lua-cpu-ms', '5'] });

  const room = h.uniqueRoom('witness');
  worker = new Worker(WITNESS, {
    eval: true,
    workerData: { url: srv.url, room, client: require.resolve('socket.io-client') },
  });
  const report = new Promise((resolve, reject) => {
    worker.on('message', (m) => { if (m.type === 'done') resolve(m); });
    worker.on('error', reject);
  });
  await h.withTimeout(new Promise((resolve) => worker.on('message', (m) => { if (m.type === 'ready') resolve(); })),
    T(5000), 'the witness to join its room');
  const quiet = () => new Promise((r) => setTimeout(r, 100)); // let the witness measure between attacks
  const windows = []; // [name, t0, t1]
  const attack = async (name, fn) => {
    const t0 = Date.now();
    const out = await fn();
    windows.push([name, t0, Date.now()]);
    await quiet();
    return out;
  };

  await quiet();
  const evil = await h.connectClient(srv, 'evil');
  const hostileRoom = h.uniqueRoom('hostile');
  await h.expectAnswer(evil, 'join_room', { room: hostileRoom }, 'joined_room');

  // 1. Quadratic trims on client text and on a dev-mode name.
  for (const n of [100000, 1000000]) {
    await attack(`send_message " x"+${n} spaces+"x"`, async () => {
      const it = await expectAnyAnswer(evil, 'send_message', { room: hostileRoom, text: ' x' + ' '.repeat(n) + 'x' }, 'long text');
      assert.equal(it.name, 'error', `long text: expected an error, got ${show(it)}`);
      assert.equal(it.data.code, 'message_too_long');
    });
  }
  for (const n of [30000, 1000000]) {
    await attack(`dev-mode name of ${n} spaces`, async () => {
      const s = await h.connectClient(srv, ' x' + ' '.repeat(n) + 'x').catch((e) => e);
      // Refused or accepted with a bounded name: either way answered at once.
      if (!(s instanceof Error)) { assert.ok(s.connectedData.user.name.length <= 1024); s.disconnect(); }
    });
  }

  // 2, 3, 7. Hostile handlers: each answers its sender (internal_error or an error code).
  for (const name of ['xpcall_loop', 'gc_loop', 'plain_loop', 'pattern_find', 'pattern_gsub', 'pattern_match',
    'cjson_depth', 'cjson_decode', 'cyclic', 'a_function', 'memory', 'reserved', 'reserved_emit']) {
    await attack(`hostile_${name}`, async () => {
      const it = await expectAnyAnswer(evil, `hostile_${name}`, {}, `hostile_${name}`);
      assert.ok(['error', 'r'].includes(it.name), `hostile_${name}: answered ${show(it)}`);
      if (['xpcall_loop', 'gc_loop', 'plain_loop', 'cyclic', 'a_function', 'memory', 'reserved', 'reserved_emit'].includes(name)) {
        assert.equal(it.name, 'error', `hostile_${name}: expected an error, got ${show(it)}`);
      }
    });
  }
  await attack('log forgery', async () => {
    await expectAnyAnswer(evil, 'hostile_log_forgery', { text: 'a\nerror forged=1' }, 'log forgery');
  });

  // 10. JSON too deep / out of range on Socket.IO: an error, and the connection stays.
  await attack('Socket.IO: 100-deep JSON', async () => {
    let deep = {}; for (let i = 0; i < 100; i++) deep = [deep];
    const it = await expectAnyAnswer(evil, 'send_message', { room: hostileRoom, text: deep }, 'deep JSON');
    assert.equal(it.name, 'error', `deep JSON: ${show(it)}`);
  });
  await h.expectAnswer(evil, 'send_message', { room: hostileRoom, text: 'still here' }, 'message_sent');

  // 9, 10. /ws: a string id, too deep, out of range: invalid_payload, the connection stays open.
  await attack('/ws: string id, deep JSON, 1e400', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws?name=evil-ws`);
    const frames = [];
    let closed = null;
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    ws.on('close', (code, reason) => { closed = { code, reason: String(reason) }; });
    await h.waitFor(() => frames.some((f) => f.event === 'connected'), T(3000), '/ws connected');
    ws.send(JSON.stringify({ event: 'get_room_users', data: { room: hostileRoom }, id: 'req-2' }));
    await h.waitFor(() => frames.some((f) => f.id === 'req-2'), T(3000), 'the answer to id "req-2"');
    ws.send('{"event":"get_room_users","data":' + '['.repeat(100) + ']'.repeat(100) + '}');
    ws.send('{"event":"get_room_users","data":{"room":1e400}}');
    await h.waitFor(() => frames.filter((f) => f.event === 'error' && f.data.code === 'invalid_payload').length >= 2,
      T(3000), 'two invalid_payload errors on /ws');
    assert.equal(closed, null, `/ws closed: ${show(closed)}`);
    ws.close();
  });

  // 6. A smuggled request: 400 and close, and the second request is not answered.
  await attack('request smuggling', async () => {
    const body = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    const raw = `POST /api/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const res = await h.httpRaw(srv.port, raw);
    assert.equal(res.status, 400, `smuggling: ${show(res)}`);
  });

  worker.postMessage('stop');
  const w = await h.withTimeout(report, T(10000), 'the witness report');
  await worker.terminate();
  worker = null;

  // Which attack overlapped the worst trips (for the failure message).
  const blame = (at) => windows.filter(([, t0, t1]) => at >= t0 - 100 && at <= t1 + 100).map(([n]) => n).join(', ');
  const worst = w.trips.reduce((m, t) => (t[1] > m[1] ? t : m), [0, 0]);
  const overByAttack = new Map(); // the worst trip over the bound, per attack it overlapped
  for (const [at, ms] of w.trips) {
    if (ms < WORST_ROUND_TRIP_MS) continue;
    const who = blame(at) || '(between attacks)';
    overByAttack.set(who, Math.max(ms, overByAttack.get(who) || 0));
  }
  const over = [...overByAttack].sort((x, y) => y[1] - x[1]).map(([who, ms]) => `${ms} ms during [${who}]`);
  const perAttack = windows.map(([name, t0, t1]) => {
    const ms = Math.max(0, ...w.trips.filter(([at]) => at >= t0 && at <= t1 + 100).map(([, v]) => v));
    return `${name} ${ms}`;
  });
  t.diagnostic(`worst round trip ${worst[1]} ms over ${w.trips.length}; per attack (ms): ${perAttack.join(', ')}`);
  assert.ok(w.trips.length > 100, `the witness measured only ${w.trips.length} round trips`);
  assert.deepEqual(w.errors, [], 'the witness got errors');
  assert.deepEqual(w.lost, [], `witness messages lost (${w.lost.length} of ${w.sent})`);
  const nOver = w.trips.filter(([, ms]) => ms >= WORST_ROUND_TRIP_MS).length;
  assert.ok(nOver <= MAX_TRIPS_OVER && worst[1] < HARD_ROUND_TRIP_MS,
    `${nOver} round trips of ${w.trips.length} at or over ${WORST_ROUND_TRIP_MS} ms (at most ${MAX_TRIPS_OVER}), ` +
    `worst ${worst[1]} ms (bound ${HARD_ROUND_TRIP_MS}); over ${WORST_ROUND_TRIP_MS} ms: ${over.join('; ')}`);

  const health = await h.httpRaw(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(health.status, 200, `/healthz: ${show(health)}`);
  assert.doesNotMatch(srv.stderr, /\nerror forged=1/, 'a client text forged a log line');
  evil.disconnect();
  const r = await srv.stopClean();
  srv = null;
  assert.equal(r.code, 0);
});

// --lua-cpu-ms: what keeps a call's stall short whatever its instruction budget says, and what the
// server's own work for a call (decoding an upload's base64) does not count against.
test('--lua-cpu-ms ends a call by its CPU time, not counting the decoding of an upload', async () => {
  const tree = hostileTree();
  fs.writeFileSync(path.join(tree, 'hostile.lua'), HOSTILE);
  const s = await h.startServer({ scripts: tree, args: ['--lua-budget', '10000000000', '--lua-cpu-ms', '5'] });
  try {
    const c = await h.connectClient(s, 'cpu');
    const room = h.uniqueRoom('cpu');
    await h.expectAnswer(c, 'join_room', { room }, 'joined_room');
    const t0 = Date.now();
    const err = await h.expectError(c, 'hostile_plain_loop', {});
    assert.equal(err.code, 'internal_error');
    const line = await h.waitFor(() => /handler failed handler=\/:hostile_plain_loop[^\n]*/.exec(s.stderr), T(3000), 'the log line');
    assert.match(line[0], /hostile\.lua:\d+: CPU time limit exceeded \(5 ms\)/);
    assert.ok(Date.now() - t0 < T(2000), `a 10^10-instruction budget would run for minutes; stopped after ${Date.now() - t0} ms`);
    // 10 MiB of base64 take longer than 5 ms to decode: the decoding is the server's, not the script's.
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), crypto.randomBytes(10 * 1024 * 1024 - 8)]);
    const sent = await h.ackRequest(c, 'send_file', { room, name: 'big.png', type: 'image/png', data: png.toString('base64') }, 'file_sent');
    assert.equal(sent.name, 'file_sent', `a 10 MiB base64 upload under --lua-cpu-ms 5: ${show(sent.data)}; ` +
      `the server's log: ${(s.stderr.match(/^.*(handler failed|store failed).*$/gm) || []).slice(-3).join(' | ')}`);
    assert.equal(sent.data.size, png.length);
    c.disconnect();
  } finally {
    await s.stopClean();
  }
});
