'use strict';
// The operator's admin API calls beyond admin.test.js (docs/protocol.md, admin API):
//   - POST /api/users/{id}/emit (every connection of the user, nobody else; 404 for an unknown user)
//     and POST /api/emit (everyone); reserved and client-sent event names refused on every emit;
//   - POST/DELETE /api/users/{id}/rooms/{room}: all the user's connections join/leave, the others
//     are told user_joined_room / user_left_room once, the user's connections joined_room / left_room;
//   - POST /api/users/{id}/ban {seconds, reason}: disconnects now, refuses connects until it expires
//     (JWT mode and dev mode, Socket.IO CONNECT_ERROR "unauthorized" with data.code "banned", /ws
//     error + 4401), GET /api/bans, DELETE lifts it, and it expires by itself;
//   - GET /api/users and /api/rooms pages (?limit=&offset=, count/total/next_offset), bad values 400;
//   - --log-format json: every stderr line is one JSON object; admin calls are logged with the peer
//     and a hash prefix of the token; a wrong admin token and a refused JWT log the peer.
// Run: node --test spec/e2e/admin_ops.test.js   (binary from $SPACE_SERVER)

const { test, describe, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const h = require('./harness');

const { show, T, settle } = h;

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'space-admin-ops-'));
const SECRET = crypto.randomBytes(32).toString('hex');
const SECRET_FILE = path.join(TMP, 'jwt.secret');
fs.writeFileSync(SECRET_FILE, SECRET);
const ADMIN_TOKEN = crypto.randomBytes(24).toString('base64url');
const ADMIN_TOKEN_FILE = path.join(TMP, 'admin.token');
fs.writeFileSync(ADMIN_TOKEN_FILE, ADMIN_TOKEN + '\n');
const TOKEN_HASH = crypto.createHash('sha256').update(ADMIN_TOKEN).digest('hex').slice(0, 8);

const sign = (payload) => h.signHS256(SECRET, payload);
let subSeq = 0;
const uniqueSub = (p = 'ops') => `${p}-${process.pid}-${++subSeq}-${crypto.randomBytes(3).toString('hex')}`;

async function api(srv, method, p, body, token = ADMIN_TOKEN) {
  let head = `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nConnection: close\r\n`;
  if (token !== null) head += `Authorization: Bearer ${token}\r\n`;
  let b = Buffer.alloc(0);
  if (body !== undefined) {
    b = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    head += 'Content-Type: application/json\r\n';
  }
  if (body !== undefined || method !== 'GET') head += `Content-Length: ${b.length}\r\n`;
  const r = await h.httpRaw(srv.port, Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), b]), T(5000));
  let json = null;
  try { json = JSON.parse(r.body); } catch (_) { /* not JSON */ }
  return { ...r, json };
}
function expectStatus(r, status, what) {
  assert.equal(r.status, status, `${what}: expected HTTP ${status}, got ${r.status} ${show(r.body)}`);
}

const sockets = new Set();
let seq = 0;
// A socket.io-client socket; auth: {token} (JWT server) or {name} (dev server). Resolves with the
// first of connected / connect_error; socket.refused holds the error when refused.
async function open(srv, auth, label) {
  const { socket, connected, error, closed } = await h.tryConnect(srv, { auth, label: `${label}#${++seq}` });
  sockets.add(socket);
  if (error) socket.refused = error;
  else if (!connected) throw new Error(`${socket.label}: $disconnect ${show(closed)}`);
  else socket.user = connected.user;
  return socket;
}
const jwtUser = (srv, sub, name) => open(srv, { token: sign({ sub, name: name || sub, exp: Math.floor(Date.now() / 1000) + 3600 }) }, name || sub);
async function connected(srv, sub, name) {
  const s = await jwtUser(srv, sub, name);
  assert.ok(!s.refused, `${s.label} refused: ${show(s.refused)}`);
  return s;
}
const main = new h.ManagedServer({
  args: ['--jwt-secret-file', SECRET_FILE, '--admin-token-file', ADMIN_TOKEN_FILE, '--log-format', 'json'],
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

describe('emit to a user and to everyone', () => {
  test('POST /api/users/{id}/emit reaches every connection of that user and no one else', async () => {
    const a = uniqueSub('a'), b = uniqueSub('b');
    const a1 = await connected(srv(), a), a2 = await connected(srv(), a), b1 = await connected(srv(), b);
    const r = await api(srv(), 'POST', `/api/users/${encodeURIComponent(a)}/emit`, { event: 'note', data: { text: 'hi' } });
    expectStatus(r, 200, 'emit to user');
    assert.deepEqual(r.json, { recipients: 2 });
    for (const s of [a1, a2]) assert.deepEqual(await h.nextEvent(s, 'note'), { text: 'hi' });
    await settle(b1);
    assert.equal(b1.inbox.count('note'), 0, 'the other user got nothing');
    expectStatus(await api(srv(), 'POST', '/api/users/nobody-here/emit', { event: 'note' }), 404, 'unknown user');
  });

  test('POST /api/emit reaches every connection', async () => {
    const socks = [await connected(srv(), uniqueSub()), await connected(srv(), uniqueSub()), await connected(srv(), uniqueSub())];
    const status = await api(srv(), 'GET', '/api/users?limit=1000');
    const total = status.json.users.reduce((n, u) => n + u.connections, 0);
    const r = await api(srv(), 'POST', '/api/emit', { event: 'broadcast_note', data: [1, 2] });
    expectStatus(r, 200, 'emit to all');
    assert.equal(r.json.recipients, total);
    for (const s of socks) assert.deepEqual(await h.nextEvent(s, 'broadcast_note'), [1, 2]);
  });

  test('reserved and client-sent names are refused on every emit call', async () => {
    const a = uniqueSub();
    const s = await connected(srv(), a);
    for (const event of ['connect', 'disconnect', 'connect_error', 'send_message', 'join_room', '']) {
      for (const p of ['/api/emit', `/api/users/${a}/emit`, '/api/rooms/lobby/emit']) {
        const r = await api(srv(), 'POST', p, { event });
        expectStatus(r, 400, `${p} ${event}`);
      }
    }
    expectStatus(await api(srv(), 'POST', '/api/emit', 'not json'), 400, 'bad JSON');
    await settle(s);
    assert.equal(s.inbox.items.filter((it) => !['connected', 'room_users'].includes(it.name)).length, 0, s.inbox.summary());
  });
});

describe('joining and leaving rooms for a user', () => {
  test('all the user\'s connections join; the others are told once; DELETE leaves', async () => {
    const room = h.uniqueRoom('ops');
    const a = uniqueSub('a'), b = uniqueSub('b');
    const b1 = await connected(srv(), b);
    await h.expectAnswer(b1, 'join_room', { room }, 'joined_room');
    const a1 = await connected(srv(), a, 'Ann'), a2 = await connected(srv(), a, 'Ann');
    const r = await api(srv(), 'POST', `/api/users/${a}/rooms/${encodeURIComponent(room)}`);
    expectStatus(r, 200, 'join');
    assert.deepEqual(r.json, { joined: 2, user_is_new: true });
    assert.deepEqual(await h.nextEvent(b1, 'user_joined_room'), { room, user: { id: a, name: 'Ann' } });
    for (const s of [a1, a2]) {
      const j = await h.nextEvent(s, 'joined_room');
      assert.equal(j.room, room);
      assert.equal(j.count, 2);
    }
    const info = await api(srv(), 'GET', `/api/rooms/${encodeURIComponent(room)}`);
    assert.deepEqual([info.json.count, info.json.connections], [2, 3]);
    // again: nothing changes, nobody is told
    assert.deepEqual((await api(srv(), 'POST', `/api/users/${a}/rooms/${encodeURIComponent(room)}`)).json, { joined: 0, user_is_new: false });
    // a message from a reaches b: a really is a member
    await h.expectAnswer(a1, 'send_message', { room, text: 'in by the API' }, 'message_sent');
    assert.equal((await h.nextEvent(b1, 'new_message')).text, 'in by the API');
    const l = await api(srv(), 'DELETE', `/api/users/${a}/rooms/${encodeURIComponent(room)}`);
    expectStatus(l, 200, 'leave');
    assert.deepEqual(l.json, { left: 2, user_left: true });
    assert.deepEqual(await h.nextEvent(b1, 'user_left_room'), { room, user: { id: a, name: 'Ann' } });
    for (const s of [a1, a2]) assert.deepEqual(await h.nextEvent(s, 'left_room'), { room });
    await settle(b1);
    assert.equal(b1.inbox.count('user_joined_room'), 1);
    assert.equal(b1.inbox.count('user_left_room'), 1);
    expectStatus(await api(srv(), 'POST', `/api/users/nobody/rooms/${room}`), 404, 'unknown user');
    expectStatus(await api(srv(), 'POST', `/api/users/${a}/rooms/${'r'.repeat(300)}`), 400, 'room name too long');
    expectStatus(await api(srv(), 'GET', `/api/users/${a}/rooms/${room}`), 405, 'GET');
  });
});

describe('bans', () => {
  test('a ban disconnects now, refuses connects (CONNECT_ERROR unauthorized/banned) until lifted', async () => {
    const a = uniqueSub('ban');
    const a1 = await connected(srv(), a), a2 = await connected(srv(), a);
    const r = await api(srv(), 'POST', `/api/users/${a}/ban`, { seconds: 600, reason: 'flooding' });
    expectStatus(r, 200, 'ban');
    assert.equal(r.json.disconnected, 2);
    assert.ok(Math.abs(r.json.until - (Date.now() + 600000)) < 60000, show(r.json));
    for (const s of [a1, a2]) assert.equal(await h.nextEvent(s, '$disconnect'), 'io server disconnect');
    const again = await jwtUser(srv(), a);
    assert.equal(again.refused.message, 'unauthorized');
    assert.equal(again.refused.data.code, 'banned');
    assert.equal(again.refused.data.message, 'flooding');
    assert.equal(again.refused.data.until, r.json.until);
    // /ws: an error event then close 4401
    const ws = new WebSocket(`ws://127.0.0.1:${srv().port}/ws?token=${sign({ sub: a, exp: Math.floor(Date.now() / 1000) + 60 })}`);
    const frames = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
    const code = await new Promise((resolve) => ws.on('close', (c) => resolve(c)));
    assert.equal(code, 4401);
    assert.deepEqual(frames[0].data, { code: 'unauthorized', message: 'banned', event: 'connect' });
    const list = await api(srv(), 'GET', '/api/bans');
    const mine = list.json.bans.find((x) => x.id === a);
    assert.deepEqual([mine.reason, mine.until], ['flooding', r.json.until]);
    assert.equal(list.json.count, list.json.bans.length);
    // others are not touched
    assert.ok(!(await jwtUser(srv(), uniqueSub())).refused);
    expectStatus(await api(srv(), 'DELETE', `/api/users/${a}/ban`), 200, 'unban');
    expectStatus(await api(srv(), 'DELETE', `/api/users/${a}/ban`), 404, 'unban twice');
    assert.ok(!(await jwtUser(srv(), a)).refused, 'connects after the ban was lifted');
    assert.ok(!(await api(srv(), 'GET', '/api/bans')).json.bans.some((x) => x.id === a));
  });

  test('a ban expires by itself', async () => {
    const a = uniqueSub('short');
    expectStatus(await api(srv(), 'POST', `/api/users/${a}/ban`, { seconds: 1 }), 200, 'ban 1 s');
    assert.equal((await jwtUser(srv(), a)).refused.data.code, 'banned');
    await new Promise((r) => setTimeout(r, 1100));
    await h.waitFor(async () => !(await jwtUser(srv(), a)).refused, T(3000), 'the ban to expire');
    assert.ok(!(await api(srv(), 'GET', '/api/bans')).json.bans.some((x) => x.id === a), 'expired bans are not listed');
  });

  test('bad ban bodies: 400', async () => {
    for (const body of [{}, { seconds: 0 }, { seconds: -5 }, { seconds: 1.5 }, { seconds: '60' }, { seconds: 31536001 },
      { seconds: 60, reason: 7 }, { seconds: 60, reason: 'x'.repeat(300) }, 'nope']) {
      expectStatus(await api(srv(), 'POST', '/api/users/someone/ban', body), 400, show(body));
    }
  });

  test('dev mode: the ban holds for the name\'s user too', async () => {
    const dev = await h.startServer({});
    try {
      const name = h.uniqueName('dev');
      const s = await open(dev, { name }, name);
      const id = s.user.id;
      const r = await api(dev, 'POST', `/api/users/${encodeURIComponent(id)}/ban`, { seconds: 60, reason: 'r' });
      expectStatus(r, 200, 'ban (loopback, no token needed)');
      assert.equal(await h.nextEvent(s, '$disconnect'), 'io server disconnect');
      const again = await open(dev, { name }, name);
      assert.deepEqual([again.refused.message, again.refused.data.code], ['unauthorized', 'banned']);
      assert.ok(!(await open(dev, { name: h.uniqueName('other') }, 'other')).refused);
    } finally {
      for (const s of sockets) { try { s.disconnect(); } catch (_) { /* gone */ } }
      await dev.stopClean();
    }
  });
});

describe('paginated listings', () => {
  test('?limit=&offset= walk every user once; count/total/next_offset; bad values 400', async () => {
    for (let i = 0; i < 5; i++) await connected(srv(), uniqueSub('page'));
    const all = (await api(srv(), 'GET', '/api/users?limit=1000')).json;
    assert.ok(all.total >= 5);
    assert.equal(all.count, all.users.length);
    const seen = [];
    let offset = 0, pages = 0;
    for (;;) {
      const p = (await api(srv(), 'GET', `/api/users?limit=2&offset=${offset}`)).json;
      assert.equal(p.total, all.total);
      assert.equal(p.count, p.users.length);
      assert.ok(p.count <= 2);
      seen.push(...p.users.map((u) => u.id));
      pages++;
      if (p.next_offset === null) break;
      assert.equal(p.next_offset, offset + 2);
      offset = p.next_offset;
    }
    assert.equal(pages, Math.ceil(all.total / 2));
    assert.deepEqual([...seen].sort(), all.users.map((u) => u.id).sort(), 'every user once');
    const rooms = (await api(srv(), 'GET', '/api/rooms?limit=1&offset=0')).json;
    assert.ok(rooms.count <= 1 && 'total' in rooms && 'next_offset' in rooms, show(rooms));
    for (const q of ['limit=0', 'limit=1001', 'limit=x', 'offset=-1', 'limit=', 'offset=1e3']) {
      expectStatus(await api(srv(), 'GET', `/api/users?${q}`), 400, q);
      expectStatus(await api(srv(), 'GET', `/api/rooms?${q}`), 400, q);
    }
  });
});

describe('--log-format json and who did what', () => {
  test('every line is a JSON object; admin calls name peer and token hash; refusals name the peer', async () => {
    const a = uniqueSub('log');
    await api(srv(), 'POST', `/api/users/${a}/emit`, { event: 'logged_note' });
    // a body of control characters, quotes, backslashes and bytes that are not UTF-8: still one JSON line
    const hostile = Buffer.concat([Buffer.from([...Array(32).keys()]), Buffer.from('"\\ key=x "q" \xff\xfe'), Buffer.from([0xff, 0xc3, 0x28])]);
    expectStatus(await api(srv(), 'POST', `/api/users/${a}/emit`, hostile), 400, 'hostile body');
    expectStatus(await api(srv(), 'GET', '/api/status', undefined, 'wrong-token'), 401, 'wrong token');
    const bad = await open(srv(), { token: 'not.a.jwt' }, 'bad');
    assert.equal(bad.refused.data.code, 'invalid_token');
    let lines = [];
    await h.waitFor(() => {
      lines = srv().stderr.split('\n').filter((l) => l.length);
      return lines.some((l) => l.includes('invalid_token'));
    }, T(3000), 'the refusal in the log');
    const objs = lines.map((l) => {
      try { return JSON.parse(l); } catch (e) { assert.fail(`not a JSON line: ${l}`); }
      return null;
    });
    for (const o of objs) for (const k of ['time', 'level', 'component', 'msg']) assert.ok(k in o, `${k} in ${show(o)}`);
    const call = objs.find((o) => o.component === 'admin' && o.msg === 'call' && o.path === `/api/users/${a}/emit`);
    assert.ok(call, 'the admin call is logged');
    assert.match(call.peer, /^127\.0\.0\.1:\d+$/);
    assert.equal(call.token, `sha256:${TOKEN_HASH}`);
    assert.equal(call.method, 'POST');
    assert.ok(!lines.some((l) => l.includes(ADMIN_TOKEN)), 'the token itself is never logged');
    const odd = objs.filter((o) => o.msg === 'call' && o.body && o.body.includes('key=x'));
    assert.equal(odd.length, 1, 'the hostile call is one line');
    assert.ok(odd[0].body.startsWith('?\u0001\u0002'), show(odd[0].body)); // NUL as '?'
    assert.ok(odd[0].body.includes('\ufffd'), 'bytes that are not UTF-8 become U+FFFD');
    const refused = objs.find((o) => o.component === 'admin' && o.msg === 'refused');
    assert.match(refused.peer, /^127\.0\.0\.1:\d+$/);
    const jwt = objs.find((o) => o.component === 'auth' && o.msg === 'refused' && o.code === 'invalid_token');
    assert.match(jwt.peer, /^127\.0\.0\.1:\d+$/);
  });
});
