'use strict';
// PROTOCOL.md §7, the admin API, over raw HTTP:
//   - every call without the admin token, with a wrong one, with it (401 + WWW-Authenticate: Bearer);
//     the token from --admin-token-file and from SPACE_ADMIN_TOKEN;
//   - without an admin token configured, loopback clients only (the non-loopback refusal is tested
//     when this host has a non-loopback IPv4 address to call from; skipped otherwise);
//   - GET /api/users, /api/users/{id} (percent-encoded), POST /api/users/{id}/disconnect (every
//     connection of the user gets a Socket.IO DISCONNECT: "io server disconnect", no reconnection);
//   - GET /api/rooms, /api/rooms/{room}, POST /api/rooms/{room}/emit (reaches the room's members and
//     only them; reserved and client-sent event names refused);
//   - 400 / 404 / 405 (with Allow) / 413; POST /api/reload and GET /api/status.
// Users are JWT users (HS256, tokens made here), so their ids are ours to choose.
// Run: node --test spec/e2e/admin.test.js   (binary from $SPACE_SERVER)

const { test, describe, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { io } = require('socket.io-client');
const h = require('./harness');

const { show, T, settle } = h;

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'space-admin-test-'));
const SECRET = crypto.randomBytes(32).toString('hex');
const SECRET_FILE = path.join(TMP, 'jwt.secret');
fs.writeFileSync(SECRET_FILE, SECRET);
const ADMIN_TOKEN = crypto.randomBytes(24).toString('base64url'); // 32 characters
const ADMIN_TOKEN_FILE = path.join(TMP, 'admin.token');
fs.writeFileSync(ADMIN_TOKEN_FILE, ADMIN_TOKEN + '\n');
const ENV_ADMIN_TOKEN = crypto.randomBytes(16).toString('hex');

const sign = (payload) => h.signHS256(SECRET, payload);
let subSeq = 0;
const uniqueSub = (p = 'adm') => `${p}-${process.pid}-${++subSeq}-${crypto.randomBytes(3).toString('hex')}`;

// A non-loopback IPv4 address of this host, to call the API from a non-loopback peer.
function externalIPv4() {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list || []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}
const EXTERNAL = externalIPv4();

// ---------------------------------------------------------------------------------------------
// HTTP

// One request on its own connection. opts: {token (null: no Authorization), auth (the whole header
// value), body (object/string/Buffer), headers, host (connect to; default 127.0.0.1)}.
// Returns {status, headers, body, json, raw}.
async function api(srv, method, p, opts = {}) {
  const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
  let head = `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nConnection: close\r\n`;
  if (opts.auth !== undefined) head += `Authorization: ${opts.auth}\r\n`;
  else if (token !== null) head += `Authorization: Bearer ${token}\r\n`;
  for (const [k, v] of Object.entries(opts.headers || {})) head += `${k}: ${v}\r\n`;
  let body = Buffer.alloc(0);
  if (opts.body !== undefined) {
    body = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
    head += 'Content-Type: application/json\r\n';
  }
  if (opts.body !== undefined || method === 'POST') head += `Content-Length: ${body.length}\r\n`;
  const data = Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), body]);
  const r = opts.host ? await httpAt(opts.host, srv.port, data) : await h.httpRaw(srv.port, data, T(5000));
  let json = null;
  try { json = JSON.parse(r.body); } catch (_) { /* not JSON */ }
  return { ...r, json };
}

// Like h.httpRaw, but to host (and from host: the peer address is that address).
function httpAt(host, port, data, timeoutMs = T(5000)) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, localAddress: host });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)); }, timeoutMs);
    sock.on('connect', () => sock.write(data));
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('close', () => {
      clearTimeout(timer);
      const r = h.parseResponse(buf, true);
      if (r) resolve(r);
      else reject(new Error(`no complete HTTP response from ${host}: ${show(buf.toString('latin1'))}`));
    });
  });
}

function expectStatus(r, status, what) {
  assert.equal(r.status, status, `${what}: expected HTTP ${status}, got ${r.status} ${show(r.body)}`);
}

// ---------------------------------------------------------------------------------------------
// Clients

const sockets = new Set();
let seq = 0;

// A socket.io-client socket for `sub`; resolves once `connected` arrived. opts go to io().
async function connectUser(srv, sub, name, opts = {}) {
  const label = `${name || sub}#${++seq}`;
  const socket = io(srv.url, {
    transports: ['websocket'], reconnection: false, forceNew: true, autoConnect: false, timeout: T(5000),
    auth: { token: sign({ sub, name, exp: Math.floor(Date.now() / 1000) + 3600 }) }, ...opts,
  });
  socket.label = label;
  socket.inbox = new h.Inbox(label);
  socket.onAny((event, ...args) => socket.inbox.push(event, args[0], { args }));
  socket.on('connect', () => socket.inbox.push('$connect', null));
  socket.on('connect_error', (err) => socket.inbox.push('$connect_error', { message: err.message, data: err.data }));
  socket.on('disconnect', (reason) => socket.inbox.push('$disconnect', reason));
  sockets.add(socket);
  socket.connect();
  const it = await socket.inbox.take(['connected', '$connect_error', '$disconnect'], null, T(5000));
  if (it.name !== 'connected') throw new Error(`${label}: not connected: ${it.name} ${show(it.data)}\n${srv.describe()}`);
  socket.user = it.data.user;
  return socket;
}

const join = (s, room) => h.expectAnswer(s, 'join_room', { room }, 'joined_room');
// ---------------------------------------------------------------------------------------------
// Servers

const main = new h.ManagedServer({
  // 0.0.0.0: so that a non-loopback peer can call too (the token is what counts)
  args: ['--jwt-secret-file', SECRET_FILE, '--admin-token-file', ADMIN_TOKEN_FILE, '--host', '0.0.0.0'],
});
const srv = () => main.srv;

before(async () => { await main.start(); });
afterEach(async () => {
  for (const s of sockets) { try { s.disconnect(); } catch (_) { /* gone */ } }
  sockets.clear();
  await main.check();
});
after(async () => {
  try { await main.finish(); } finally { fs.rmSync(TMP, { recursive: true, force: true }); }
});

// Every call, with a body where it takes one.
const CALLS = [
  ['GET', '/api/users'],
  ['GET', '/api/users/someone'],
  ['POST', '/api/users/someone/disconnect'],
  ['GET', '/api/rooms'],
  ['GET', '/api/rooms/lobby'],
  ['POST', '/api/rooms/lobby/emit', { event: 'announcement', data: { text: 'x' } }],
  ['POST', '/api/reload'],
  ['GET', '/api/status'],
  ['GET', '/api/no-such-call'],
  ['DELETE', '/api/users'],
];

// ---------------------------------------------------------------------------------------------

describe('the admin token', () => {
  test('every call without a token, with a wrong one, or in the wrong form: 401 with WWW-Authenticate: Bearer', async () => {
    const wrong = {
      'no Authorization': { token: null },
      'a wrong token of the same length': { token: ADMIN_TOKEN.slice(0, -1) + (ADMIN_TOKEN.endsWith('A') ? 'B' : 'A') },
      'the token minus its last character': { token: ADMIN_TOKEN.slice(0, -1) },
      'the token plus one character': { token: ADMIN_TOKEN + 'x' },
      'the token with the file\'s newline encoded': { token: ADMIN_TOKEN + '%0A' },
      'Basic scheme': { auth: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` },
      'the bare token without a scheme': { auth: ADMIN_TOKEN },
      'Bearer with nothing': { auth: 'Bearer' },
      'the JWT secret': { token: SECRET },
    };
    for (const [method, p, body] of CALLS) {
      for (const [what, opts] of Object.entries(wrong)) {
        const r = await api(srv(), method, p, { ...opts, body });
        expectStatus(r, 401, `${method} ${p}, ${what}`);
        assert.match(r.headers['www-authenticate'] || '', /^Bearer\b/, `${method} ${p}, ${what}: WWW-Authenticate`);
      }
      // The token in the query string is not the token.
      const q = await api(srv(), method, `${p}?token=${ADMIN_TOKEN}`, { token: null, body });
      expectStatus(q, 401, `${method} ${p}?token=...`);
    }
  });

  test('the right token: every call answers (200 / 404 / 405, never 401); the scheme is case-insensitive', async () => {
    const want = { '/api/users/someone': 404, '/api/users/someone/disconnect': 404, '/api/rooms/lobby': 404, '/api/no-such-call': 404 };
    for (const [method, p, body] of CALLS) {
      const r = await api(srv(), method, p, { body });
      const status = method === 'DELETE' ? 405 : (want[p] || 200);
      expectStatus(r, status, `${method} ${p}`);
      assert.match(r.headers['content-type'] || '', /^application\/json/, `${method} ${p}: content type`);
      assert.ok(r.json !== null, `${method} ${p}: a JSON body, got ${show(r.body)}`);
    }
    expectStatus(await api(srv(), 'GET', '/api/status', { auth: `bearer ${ADMIN_TOKEN}` }), 200, 'lower-case bearer');
    expectStatus(await api(srv(), 'GET', '/api/status', { auth: `BEARER ${ADMIN_TOKEN}` }), 200, 'upper-case BEARER');
  });

  test('a refused call changes nothing: no kick, no emit, no reload', async () => {
    const sub = uniqueSub('keep');
    const room = h.uniqueRoom('adm');
    const s = await connectUser(srv(), sub, 'Keep');
    await join(s, room);
    const st0 = (await api(srv(), 'GET', '/api/status')).json;
    expectStatus(await api(srv(), 'POST', `/api/users/${encodeURIComponent(sub)}/disconnect`, { token: 'x'.repeat(32) }), 401, 'kick');
    expectStatus(await api(srv(), 'POST', `/api/rooms/${room}/emit`, { token: null, body: { event: 'sneaky', data: {} } }), 401, 'emit');
    expectStatus(await api(srv(), 'POST', '/api/reload', { token: null }), 401, 'reload');
    await settle(s);
    assert.ok(s.connected, 'the user is still connected');
    assert.equal(s.inbox.count('sneaky'), 0, 'the emit reached nobody');
    const st1 = (await api(srv(), 'GET', '/api/status')).json;
    assert.equal(st1.scripts.generation, st0.scripts.generation, 'no reload happened');
  });

  test(`the token works from a non-loopback peer too (${EXTERNAL || 'no non-loopback address: skipped'})`, { skip: !EXTERNAL && 'this host has no non-loopback IPv4 address' }, async () => {
    expectStatus(await api(srv(), 'GET', '/api/status', { host: EXTERNAL }), 200, `from ${EXTERNAL} with the token`);
    expectStatus(await api(srv(), 'GET', '/api/status', { host: EXTERNAL, token: null }), 401, `from ${EXTERNAL} without it`);
  });

  test('SPACE_ADMIN_TOKEN holds the token itself', async () => {
    const s2 = await h.startServer({ env: { SPACE_ADMIN_TOKEN: ENV_ADMIN_TOKEN } });
    try {
      expectStatus(await api(s2, 'GET', '/api/status', { token: ENV_ADMIN_TOKEN }), 200, 'the env token');
      expectStatus(await api(s2, 'GET', '/api/status', { token: null }), 401, 'no token, from loopback');
      expectStatus(await api(s2, 'GET', '/api/status', { token: ENV_ADMIN_TOKEN.toUpperCase() }), 401, 'the token in other case');
    } finally { await s2.stopClean(); }
  });

  test('no admin token configured: loopback clients may call; others get 403', async () => {
    // Non-loopback peers are refused only when this host has another address to call from; the loopback
    // path is what every run can check.
    const s3 = await h.startServer({ args: EXTERNAL ? ['--host', '0.0.0.0'] : [] });
    try {
      assert.match(s3.stderr, /no admin token configured/, 'the start log says so');
      const r = await api(s3, 'GET', '/api/status', { token: null });
      expectStatus(r, 200, 'loopback, no token');
      assert.equal(r.headers['www-authenticate'], undefined, 'no challenge in loopback mode');
      expectStatus(await api(s3, 'GET', '/api/users', { token: 'whatever-anyone-sends' }), 200, 'loopback, any token');
      expectStatus(await api(s3, 'POST', '/api/reload', { token: null }), 200, 'loopback, reload');
      if (EXTERNAL) {
        for (const [method, p, body] of CALLS) {
          const x = await api(s3, method, p, { host: EXTERNAL, token: null, body });
          expectStatus(x, 403, `${method} ${p} from ${EXTERNAL}`);
        }
        expectStatus(await api(s3, 'GET', '/api/status', { host: EXTERNAL, token: 'x'.repeat(32) }), 403, `from ${EXTERNAL} with some token`);
      }
    } finally { await s3.stopClean(); }
  });

  test('an admin token under 16 bytes stops the start (exit 1, one line why)', async () => {
    const short = path.join(TMP, 'short.token');
    fs.writeFileSync(short, '123456789012345\n');
    const files = fs.mkdtempSync(path.join(TMP, 'files-'));
    const r = await h.runServerToExit(['--scripts', h.SCRIPTS_DIR, '--host', '127.0.0.1', '--port', '0', '--files-dir', files, '--admin-token-file', short]);
    assert.equal(r.timedOut, false, `the server started with a 15-byte admin token\n${r.stderr}`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /16/);
    const r2 = await h.runServerToExit(['--scripts', h.SCRIPTS_DIR, '--host', '127.0.0.1', '--port', '0', '--files-dir', files, '--admin-token-file', path.join(TMP, 'absent')]);
    assert.equal(r2.code, 1, `a missing token file\n${r2.stderr}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('users and rooms', () => {
  test('GET /api/users and /api/users/{id}: id, name, connections, since, rooms (each once); percent-encoded ids; 404', async () => {
    const t0 = Date.now();
    const sub = `odd id/with space&ü-${crypto.randomBytes(2).toString('hex')}`;
    const r1 = h.uniqueRoom('u1');
    const r2 = h.uniqueRoom('u2');
    const a = await connectUser(srv(), sub, 'Ünï Code');
    const b = await connectUser(srv(), sub, 'Ünï Code');
    await join(a, r1);
    await join(b, r1);
    await join(b, r2);
    const all = await api(srv(), 'GET', '/api/users');
    expectStatus(all, 200, 'GET /api/users');
    assert.equal(all.json.count, all.json.users.length, 'count = users listed');
    const mine = all.json.users.filter((u) => u.id === sub);
    assert.equal(mine.length, 1, `the user once: ${show(all.json)}`);
    const u = mine[0];
    assert.deepEqual(Object.keys(u).sort(), ['connections', 'id', 'name', 'rooms', 'since'], 'fields');
    assert.equal(u.name, 'Ünï Code');
    assert.equal(u.connections, 2);
    assert.deepEqual([...u.rooms].sort(), [r1, r2].sort(), 'rooms, each once');
    assert.ok(u.since >= t0 - 1000 && u.since <= Date.now() + 1000, `since ${u.since} (ms since the epoch, around ${t0})`);
    const one = await api(srv(), 'GET', `/api/users/${encodeURIComponent(sub)}`);
    expectStatus(one, 200, 'GET /api/users/{percent-encoded id}');
    assert.deepEqual(one.json, u, 'the same record');
    expectStatus(await api(srv(), 'GET', `/api/users/${encodeURIComponent(sub + 'x')}`), 404, 'another id');
    expectStatus(await api(srv(), 'GET', `/api/users/${encodeURIComponent(sub.toUpperCase())}`), 404, 'the id in other case');
    expectStatus(await api(srv(), 'GET', '/api/users/%zz'), 404, 'a bad percent escape');
    // After the last connection leaves, the user is gone.
    a.disconnect();
    b.disconnect();
    await h.waitFor(async () => (await api(srv(), 'GET', `/api/users/${encodeURIComponent(sub)}`)).status === 404,
      T(3000), 'the user to be gone after both connections closed');
  });

  test('GET /api/rooms and /api/rooms/{room}: users once, count of users, connections; 404 for an empty room', async () => {
    const room = `adm:rooms.${crypto.randomBytes(3).toString('hex')}`; // ':' and '.' are allowed in room names
    const subA = uniqueSub('ra');
    const subB = uniqueSub('rb');
    const a1 = await connectUser(srv(), subA, 'A');
    const a2 = await connectUser(srv(), subA, 'A');
    const b1 = await connectUser(srv(), subB, 'B');
    for (const s of [a1, a2, b1]) await join(s, room);
    const list = await api(srv(), 'GET', '/api/rooms');
    expectStatus(list, 200, 'GET /api/rooms');
    assert.equal(list.json.count, list.json.rooms.length, 'count = rooms listed');
    const entry = list.json.rooms.find((r) => r.name === room);
    assert.deepEqual(entry, { name: room, users: 2, connections: 3 }, `the room in ${show(list.json)}`);
    for (const p of [`/api/rooms/${encodeURIComponent(room)}`, `/api/rooms/${room}`]) {
      const one = await api(srv(), 'GET', p);
      expectStatus(one, 200, `GET ${p}`);
      assert.equal(one.json.room, room);
      assert.equal(one.json.count, 2, 'count: distinct users');
      assert.equal(one.json.connections, 3);
      assert.deepEqual(one.json.users.map((u) => u.id).sort(), [subA, subB].sort(), 'users, each once');
      assert.deepEqual(one.json.users.find((u) => u.id === subA), { id: subA, name: 'A' });
    }
    await h.expectAnswer(a1, 'leave_room', { room }, 'left_room');
    const after1 = await api(srv(), 'GET', `/api/rooms/${encodeURIComponent(room)}`);
    assert.deepEqual([after1.json.count, after1.json.connections], [2, 2], 'one of A\'s connections left: still 2 users');
    await h.expectAnswer(a2, 'leave_room', { room }, 'left_room');
    await h.expectAnswer(b1, 'leave_room', { room }, 'left_room');
    expectStatus(await api(srv(), 'GET', `/api/rooms/${encodeURIComponent(room)}`), 404, 'the room after everyone left');
    expectStatus(await api(srv(), 'GET', '/api/rooms/never-was-a-room'), 404, 'an unknown room');
  });
});

// ---------------------------------------------------------------------------------------------

describe('kick: POST /api/users/{id}/disconnect', () => {
  test('closes every connection of the user (WebSocket and polling): "io server disconnect", no reconnection; others stay', { timeout: T(15000) }, async () => {
    const sub = uniqueSub('kick');
    const room = h.uniqueRoom('kick');
    const reconnecting = { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 };
    const k1 = await connectUser(srv(), sub, 'Kicked', reconnecting);
    const k2 = await connectUser(srv(), sub, 'Kicked', { ...reconnecting, transports: ['polling'] });
    const other = await connectUser(srv(), uniqueSub('stay'), 'Stays');
    for (const s of [k1, k2, other]) await join(s, room);
    const r = await api(srv(), 'POST', `/api/users/${encodeURIComponent(sub)}/disconnect`);
    expectStatus(r, 200, 'kick');
    assert.deepEqual(r.json, { disconnected: 2 }, 'the answer');
    const [d1, d2] = await Promise.all([k1, k2].map((s) => s.inbox.take('$disconnect', null, T(3000))));
    assert.equal(d1.data, 'io server disconnect', 'websocket connection: disconnect reason');
    assert.equal(d2.data, 'io server disconnect', 'polling connection: disconnect reason');
    // The other user hears that the kicked user left the room, once.
    const left = await other.inbox.take('user_left_room', (d) => d && d.room === room, T(3000));
    assert.equal(left.data.user.id, sub);
    await h.waitFor(async () => (await api(srv(), 'GET', `/api/users/${encodeURIComponent(sub)}`)).status === 404,
      T(3000), 'the kicked user to be gone from /api/users');
    // Absence of a reconnection: the clients would retry within 100 ms if they were going to.
    await new Promise((res) => setTimeout(res, 500));
    for (const s of [k1, k2]) {
      assert.equal(s.inbox.count('$connect'), 1, `${s.label} reconnected: ${s.inbox.summary()}`);
      assert.equal(s.connected, false);
      assert.equal(s.active, false, `${s.label}: the client must not plan a reconnection`);
    }
    await settle(other);
    assert.ok(other.connected, 'the other user is still connected');
    assert.equal(other.inbox.count('user_left_room'), 1, 'user_left_room once');
    expectStatus(await api(srv(), 'POST', `/api/users/${encodeURIComponent(sub)}/disconnect`), 404, 'kicking a user who is gone');
  });

  test('closes the plain /ws connection of the user too', async () => {
    const sub = uniqueSub('kickws');
    const WebSocket = require('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${srv().port}/ws`, { headers: { Authorization: `Bearer ${sign({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}` } });
    const inbox = new h.Inbox('ws');
    ws.on('message', (d) => inbox.push('frame', JSON.parse(d.toString())));
    const closed = new Promise((res) => ws.on('close', (code) => res(code)));
    ws.on('error', () => {});
    await inbox.take('frame', (f) => f.event === 'connected', T(3000));
    const k = await connectUser(srv(), sub, 'Both');
    const r = await api(srv(), 'POST', `/api/users/${encodeURIComponent(sub)}/disconnect`);
    assert.deepEqual(r.json, { disconnected: 2 });
    const code = await h.withTimeout(closed, T(3000), 'the /ws connection to close');
    assert.ok(code >= 1000, `close code ${code}`);
    assert.equal((await k.inbox.take('$disconnect', null, T(3000))).data, 'io server disconnect');
  });
});

// ---------------------------------------------------------------------------------------------

describe('backend emit: POST /api/rooms/{room}/emit', () => {
  test('reaches every connection in the room and nobody else; {recipients} counts connections', async () => {
    const room = h.uniqueRoom('emit');
    const elsewhere = h.uniqueRoom('else');
    const subA = uniqueSub('ea');
    const a1 = await connectUser(srv(), subA, 'A');
    const a2 = await connectUser(srv(), subA, 'A');
    const b = await connectUser(srv(), uniqueSub('eb'), 'B', { transports: ['polling'] });
    const out = await connectUser(srv(), uniqueSub('eo'), 'Outsider');
    const outA = await connectUser(srv(), subA, 'A'); // the same user, but this connection is not in the room
    for (const s of [a1, a2, b]) await join(s, room);
    await join(out, elsewhere);
    await join(outA, elsewhere);
    const data = { text: 'maintenance at 18:00 — ünïcödé ✓', n: 1.5, list: [1, 'two', null, { three: true }], nested: { deep: { er: [] } } };
    const r = await api(srv(), 'POST', `/api/rooms/${encodeURIComponent(room)}/emit`, { body: { event: 'announcement', data } });
    expectStatus(r, 200, 'emit');
    assert.deepEqual(r.json, { recipients: 3 }, 'recipients');
    for (const s of [a1, a2, b]) {
      const got = await s.inbox.take('announcement', null, T(3000));
      assert.deepEqual(got.data, data, `${s.label}: the data`);
      // One argument, then the recovery offset socket.io-client keeps (spec/e2e/recovery.test.js).
      assert.equal(got.args.length, 2, `${s.label}: one argument and the offset`);
      assert.match(got.args[1], /^[0-9a-f]{16}$/, `${s.label}: the offset`);
    }
    for (const s of [out, outA, a1, a2, b]) await settle(s);
    assert.equal(out.inbox.count('announcement'), 0, 'a connection in another room got it');
    assert.equal(outA.inbox.count('announcement'), 0, 'the member\'s other connection (not in the room) got it');
    assert.equal(a1.inbox.count('announcement'), 1, 'exactly once');
    // No data: the event alone; an empty room: nobody.
    const r2 = await api(srv(), 'POST', `/api/rooms/${encodeURIComponent(room)}/emit`, { body: { event: 'ping_all' } });
    assert.deepEqual(r2.json, { recipients: 3 });
    const got2 = await a1.inbox.take('ping_all', null, T(3000));
    // No data: the recovery offset is the only argument (as from Node with connectionStateRecovery).
    assert.equal(got2.args.length, 1, 'no data: one argument');
    assert.match(got2.args[0], /^[0-9a-f]{16}$/, 'no data: the offset alone');
    const r3 = await api(srv(), 'POST', '/api/rooms/nobody-here/emit', { body: { event: 'x', data: {} } });
    expectStatus(r3, 200, 'emit to an empty room');
    assert.deepEqual(r3.json, { recipients: 0 });
  });

  test('reserved and client-sent event names are refused with 400 and reach nobody', async () => {
    const room = h.uniqueRoom('reserved');
    const s = await connectUser(srv(), uniqueSub('res'), 'R');
    await join(s, room);
    const names = ['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener',
      'join_room', 'leave_room', 'send_message', 'send_file', 'get_room_users', 'refresh_token'];
    for (const event of names) {
      const r = await api(srv(), 'POST', `/api/rooms/${room}/emit`, { body: { event, data: { x: 1 } } });
      expectStatus(r, 400, `event ${event}`);
      assert.equal(typeof (r.json && r.json.error), 'string', `event ${event}: an {error} body`);
    }
    // A NUL in the name must not slip a reserved name through.
    expectStatus(await api(srv(), 'POST', `/api/rooms/${room}/emit`, { body: '{"event":"join_room\\u0000x","data":{}}' }), 400, 'join_room\\u0000x');
    await settle(s);
    const leaked = s.inbox.items.filter((it) => names.includes(it.name) || it.name.startsWith('join_room'));
    assert.deepEqual(leaked.map((it) => it.name), [], 'refused events reached the member');
    assert.ok(s.connected, 'the member is still connected');
  });

  test('bad bodies: 400 for bad JSON / no event / wrong types; 413 over 1 MiB; exactly 1 MiB is fine', async () => {
    const room = h.uniqueRoom('bad');
    const s = await connectUser(srv(), uniqueSub('bad'), 'Bad');
    await join(s, room);
    const p = `/api/rooms/${room}/emit`;
    const bad = {
      'empty body': '',
      'not JSON': 'announcement',
      'truncated JSON': '{"event":"a","data":{',
      'trailing garbage': '{"event":"a"} x',
      'an array': '["announcement",{}]',
      'a string': '"announcement"',
      'no event': '{"data":{}}',
      'event a number': '{"event":5}',
      'event null': '{"event":null}',
      'event an object': '{"event":{"name":"a"}}',
      'empty event': '{"event":""}',
      'invalid UTF-8': Buffer.from([0x7b, 0x22, 0x65, 0x76, 0x65, 0x6e, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
      'single quotes': "{'event':'a'}",
    };
    for (const [what, body] of Object.entries(bad)) expectStatus(await api(srv(), 'POST', p, { body }), 400, what);
    const MiB = 1024 * 1024;
    const sized = (n) => {
      const head = '{"event":"big","data":"';
      return head + 'x'.repeat(n - head.length - 2) + '"}';
    };
    const big = sized(MiB + 1);
    assert.equal(big.length, MiB + 1);
    const r413 = await api(srv(), 'POST', p, { body: big });
    expectStatus(r413, 413, '1 MiB + 1 byte');
    expectStatus(await api(srv(), 'POST', p, { body: sized(2 * MiB) }), 413, '2 MiB');
    // Refused by its head: the answer comes before (and without) the body; the token is still checked first.
    const headOnly = (auth) => new Promise((resolve, reject) => {
      const sock = net.connect(srv().port, '127.0.0.1');
      let got = '';
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer to the head alone; got ${JSON.stringify(got)}`)); }, T(3000));
      sock.on('data', (d) => { got += d.toString('latin1'); if (/\r\n\r\n/.test(got)) { clearTimeout(timer); sock.destroy(); resolve(got); } });
      sock.on('error', (e) => { clearTimeout(timer); reject(e); });
      sock.write(`POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${auth}Content-Length: ${2 * MiB}\r\n\r\n{"event":`);
    });
    assert.match(await headOnly(`Authorization: Bearer ${ADMIN_TOKEN}\r\n`), /^HTTP\/1\.1 413 /, 'oversize head with the token');
    assert.match(await headOnly(''), /^HTTP\/1\.1 401 /, 'oversize head without the token');
    const exact = await api(srv(), 'POST', p, { body: sized(MiB) });
    expectStatus(exact, 200, 'exactly 1 MiB');
    const got = await s.inbox.take('big', null, T(5000));
    assert.equal(got.data.length, MiB - 23 - 2, 'the 1 MiB emit arrived whole');
    await settle(s);
    assert.equal(s.inbox.count('big'), 1, 'only the 1 MiB emit arrived');
  });
});

// ---------------------------------------------------------------------------------------------

describe('routing, reload and status', () => {
  test('unknown calls: 404; wrong methods: 405 with Allow', async () => {
    for (const p of ['/api/', '/api/nope', '/api/users/', '/api/users/a/b', '/api/users/a/disconnect/now', '/api/rooms/a/b',
      '/api/rooms/a/emit/x', '/api/status/x', '/api/Users', '/api/reload/now']) {
      expectStatus(await api(srv(), 'GET', p), 404, `GET ${p}`);
    }
    const methods = [
      ['DELETE', '/api/users', 'GET'], ['POST', '/api/users', 'GET'], ['PUT', '/api/users/x', 'GET'],
      ['GET', '/api/users/x/disconnect', 'POST'], ['DELETE', '/api/users/x/disconnect', 'POST'],
      ['POST', '/api/rooms', 'GET'], ['POST', '/api/rooms/lobby', 'GET'], ['GET', '/api/rooms/lobby/emit', 'POST'],
      ['PUT', '/api/rooms/lobby/emit', 'POST'], ['GET', '/api/reload', 'POST'], ['POST', '/api/status', 'GET'],
      ['PATCH', '/api/status', 'GET'],
    ];
    for (const [method, p, allow] of methods) {
      const r = await api(srv(), method, p, method === 'POST' || method === 'PUT' ? { body: '{}' } : {});
      expectStatus(r, 405, `${method} ${p}`);
      assert.ok((r.headers.allow || '').split(/,\s*/).includes(allow), `${method} ${p}: Allow ${show(r.headers.allow)} should list ${allow}`);
    }
    // A GET to a POST call must not do it.
    const sub = uniqueSub('get');
    const s = await connectUser(srv(), sub, 'G');
    expectStatus(await api(srv(), 'GET', `/api/users/${sub}/disconnect`), 405, 'GET .../disconnect');
    await settle(s);
    assert.ok(s.connected, 'a GET did not kick');
  });

  test('HEAD /api/status: the headers of GET, no body', async () => {
    const raw = await new Promise((resolve, reject) => {
      const sock = net.connect(srv().port, '127.0.0.1');
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => { sock.destroy(); reject(new Error('no answer to HEAD')); }, T(3000));
      sock.on('connect', () => sock.write(`HEAD /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nConnection: close\r\n\r\n`));
      sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
      sock.on('close', () => { clearTimeout(timer); resolve(buf.toString('latin1')); });
    });
    assert.match(raw, /^HTTP\/1\.1 200/, 'status');
    const end = raw.indexOf('\r\n\r\n');
    assert.ok(end > 0, 'a complete head');
    assert.equal(raw.slice(end + 4), '', 'a HEAD response carries no body (RFC 9110 §9.3.2)');
  });

  test('POST /api/reload: {ok, scripts: {generation}}; GET /api/status reflects it', async () => {
    const st0 = await api(srv(), 'GET', '/api/status');
    expectStatus(st0, 200, 'status');
    const r = await api(srv(), 'POST', '/api/reload');
    expectStatus(r, 200, 'reload');
    assert.equal(r.json.ok, true);
    assert.equal(r.json.scripts.generation, st0.json.scripts.generation + 1, 'the generation moves by one');
    assert.equal(r.json.scripts.last_error, null);
    const st1 = await api(srv(), 'GET', '/api/status');
    assert.equal(st1.json.scripts.generation, r.json.scripts.generation, 'status shows the new generation');
    assert.equal(st1.json.scripts.reloads_ok, st0.json.scripts.reloads_ok + 1, 'reloads_ok');
    await h.waitFor(() => /trigger=POST \/api\/reload/.test(srv().stderr), T(2000), 'the reload log line');
  });

  test('POST /api/reload with a broken script: 422 with file:line, the old scripts keep running', async () => {
    const dir = h.copyScripts();
    const s2 = await h.startServer({ scripts: dir, env: { SPACE_ADMIN_TOKEN: ENV_ADMIN_TOKEN } });
    try {
      const c = await connectUser(s2, uniqueSub('rl'), 'RL').catch(() => null); // dev mode: the token is ignored
      const rules = path.join(dir, 'rules.lua');
      const good = fs.readFileSync(rules, 'utf8');
      fs.writeFileSync(rules, good.replace(/^return\s*\{/m, 'return { this is not lua'));
      const r = await api(s2, 'POST', '/api/reload', { token: ENV_ADMIN_TOKEN });
      expectStatus(r, 422, 'reload of a broken rules.lua');
      assert.equal(r.json.ok, false);
      assert.match(r.json.error, /rules\.lua:\d+/, 'the error names file:line');
      const st = await api(s2, 'GET', '/api/status', { token: ENV_ADMIN_TOKEN });
      assert.match(st.json.scripts.last_error || '', /rules\.lua:\d+/, 'status: last_error');
      if (c) { await settle(c); assert.ok(c.connected); }
      fs.writeFileSync(rules, good);
      const ok = await api(s2, 'POST', '/api/reload', { token: ENV_ADMIN_TOKEN });
      expectStatus(ok, 200, 'reload after the fix');
      assert.equal(ok.json.ok, true);
    } finally {
      for (const s of sockets) s.disconnect();
      await s2.stopClean();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('idle keep-alive connections to the admin API do not hold up a shutdown (SIGTERM: exit 0 within a second)', async () => {
    const s4 = await h.startServer({ env: { SPACE_ADMIN_TOKEN: ENV_ADMIN_TOKEN } });
    const socks = [];
    try {
      // Three backends, each with one kept-alive connection after a call (as an HTTP agent keeps them).
      for (let i = 0; i < 3; i++) {
        const sock = net.connect(s4.port, '127.0.0.1');
        socks.push(sock);
        let buf = Buffer.alloc(0);
        await h.withTimeout(new Promise((resolve) => {
          sock.on('connect', () => sock.write(`GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ENV_ADMIN_TOKEN}\r\n\r\n`));
          sock.on('data', (d) => { buf = Buffer.concat([buf, d]); if (h.parseResponse(buf)) resolve(); });
          sock.on('error', () => {});
        }), T(3000), `the answer on keep-alive connection ${i + 1}`);
        assert.equal(h.parseResponse(buf).status, 200);
      }
      const r = await s4.stop(T(5000));
      assert.equal(r.killed, false, `the server did not exit within 5 s of SIGTERM\n${s4.describe()}`);
      assert.equal(r.code, 0, s4.describe());
      assert.ok(r.ms < T(1500), `SIGTERM to exit took ${r.ms} ms with 3 idle keep-alive connections (README: within a second)\n${s4.describe()}`);
    } finally {
      for (const sock of socks) sock.destroy();
      await s4.stop();
    }
  });

  test('GET /api/status: version, uptime, connections, users, rooms, scripts generation and last reload result', async () => {
    const room = h.uniqueRoom('st');
    const sub = uniqueSub('st');
    const a = await connectUser(srv(), sub, 'S');
    const b = await connectUser(srv(), sub, 'S');
    await join(a, room);
    const st = await api(srv(), 'GET', '/api/status');
    expectStatus(st, 200, 'status');
    const s = st.json;
    assert.match(s.version, /^\d+\.\d+\.\d+/, 'version');
    assert.ok(Number.isInteger(s.uptime_ms) && s.uptime_ms >= 0, `uptime_ms ${show(s.uptime_ms)}`);
    assert.ok(Number.isInteger(s.connections) && s.connections >= 2, `connections ${show(s.connections)} (2 sockets of ours at least)`);
    const users = (await api(srv(), 'GET', '/api/users')).json;
    assert.equal(s.users, users.count, 'users = /api/users count');
    assert.ok(Number.isInteger(s.scripts.generation) && s.scripts.generation >= 1, 'scripts.generation');
    assert.ok('last_error' in s.scripts && 'reloads_ok' in s.scripts && 'reloads_failed' in s.scripts, 'the last reload result');
    const rooms = (await api(srv(), 'GET', '/api/rooms')).json;
    assert.equal(s.rooms, rooms.count, `rooms (PROTOCOL.md §7 lists it): ${show(s)}`);
    void b;
  });
});
