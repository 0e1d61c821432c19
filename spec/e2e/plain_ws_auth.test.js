'use strict';
// PROTOCOL.md §2 on the plain /ws endpoint, with a JWT key configured: the token from the
// Authorization: Bearer header or the token query parameter; the first frame is
// {"event":"connected","data":{sid,user,server_time}}; a refused login gets
// {"event":"error","data":{"code":"unauthorized","message":...,"event":"connect"}} and then close
// code 4401 (and nothing else). Expiry during a session: the token_expired error, refresh_token with
// its reply id, and close 4401 after --token-grace.
// Run: node --test spec/e2e/plain_ws_auth.test.js   (binary from $SPACE_SERVER)

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const h = require('./harness');

const { show, T } = h;

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'space-wsauth-test-'));
const SECRET = crypto.randomBytes(32).toString('hex');
const SECRET_FILE = path.join(TMP, 'jwt.secret');
fs.writeFileSync(SECRET_FILE, SECRET + '\n');
const GRACE_MS = 1000;

const b64u = (b) => Buffer.from(b).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);
function sign(payload, { key = SECRET, alg = 'HS256' } = {}) {
  const input = `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${b64u(JSON.stringify(payload))}`;
  const sig = alg === 'none' ? '' : b64u(crypto.createHmac('sha256', key).update(input).digest());
  return `${input}.${sig}`;
}
let subSeq = 0;
const uniqueSub = () => `ws-${process.pid}-${++subSeq}-${crypto.randomBytes(3).toString('hex')}`;

const managed = new h.ManagedServer({ args: ['--jwt-secret-file', SECRET_FILE, '--token-grace', String(GRACE_MS), '--jwt-leeway', '0'] });
const srv = () => managed.srv;
before(async () => { await managed.start(); });
const open = new Set();
afterEach(async () => {
  for (const c of open) c.terminate();
  open.clear();
  await managed.check();
});
after(async () => {
  try { await managed.finish(); } finally { fs.rmSync(TMP, { recursive: true, force: true }); }
});

// A /ws client recording every frame (parsed JSON) and the close. query: the string after '?'.
function plain(query = '', headers = {}) {
  const url = `ws://127.0.0.1:${srv().port}/ws${query ? '?' + query : ''}`;
  const ws = new WebSocket(url, { headers, perMessageDeflate: false });
  open.add(ws);
  const c = { ws, inbox: new h.Inbox('ws'), frames: [], close: null };
  c.upgraded = new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('unexpected-response', (req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.on('error', reject);
  });
  c.upgraded.catch(() => {});
  ws.on('message', (data, isBinary) => {
    const text = data.toString('utf8');
    let frame;
    try { frame = JSON.parse(text); } catch (_) { frame = { unparsed: text }; }
    c.frames.push(frame);
    c.inbox.push('frame', frame);
  });
  c.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
    c.close = { code, reason: reason.toString(), at: Date.now() };
    c.inbox.push('$close', c.close);
    resolve(c.close);
  }));
  c.next = (pred, timeoutMs = h.DEFAULT_WAIT) => c.inbox.take('frame', pred, timeoutMs).then((it) => it.data);
  c.send = (obj) => ws.send(JSON.stringify(obj));
  return c;
}

async function accepted(c, what) {
  await c.upgraded;
  const first = await c.next(null, T(3000)).catch((e) => { throw new Error(`${what}: no first frame: ${e.message}\n${srv().describe()}`); });
  assert.equal(first.event, 'connected', `${what}: the first frame must be "connected", got ${show(first)} (close ${show(c.close)})`);
  return first.data;
}

// The refusal: the error frame first, then close 4401, nothing else.
async function refused(c, what) {
  await c.upgraded;
  const close = await h.withTimeout(c.closed, T(3000), `${what}: the close`);
  assert.equal(close.code, 4401, `${what}: close code (frames: ${show(c.frames)})`);
  assert.equal(c.frames.length, 1, `${what}: exactly one frame before the close, got ${show(c.frames)}`);
  const f = c.frames[0];
  assert.equal(f.event, 'error', `${what}: ${show(f)}`);
  assert.equal(f.data.code, 'unauthorized', `${what}: data.code`);
  assert.equal(f.data.event, 'connect', `${what}: data.event`);
  assert.equal(typeof f.data.message, 'string', `${what}: data.message`);
  return f;
}

const bearer = (t) => ({ Authorization: `Bearer ${t}` });
const q = (t) => `token=${encodeURIComponent(t)}`;

test('token in the Authorization header: the first frame is connected {sid, user, server_time}', async () => {
  const sub = uniqueSub();
  const c = plain('', bearer(sign({ sub, name: 'Header User', exp: nowS() + 600 })));
  const d = await accepted(c, 'header');
  assert.deepEqual(d.user, { id: sub, name: 'Header User' });
  assert.equal(typeof d.sid, 'string');
  assert.ok(Math.abs(d.server_time - Date.now()) < 60000, `server_time ${d.server_time}`);
  // The connection works: get_room_users with an id.
  c.send({ event: 'get_room_users', data: { room: 'lobby-ws' }, id: 7 });
  const reply = await c.next((f) => f.id === 7);
  assert.equal(reply.event, 'room_users', show(reply));
});

test('token in the query: connected; percent-encoded too', async () => {
  const sub = uniqueSub();
  const d = await accepted(plain(q(sign({ sub, preferred_username: 'QueryUser', exp: nowS() + 600 }))), 'query');
  assert.deepEqual(d.user, { id: sub, name: 'QueryUser' });
  const t = sign({ sub, exp: nowS() + 600 });
  const enc = [...t].map((ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');
  const d2 = await accepted(plain(`token=${enc}`), 'query, every character percent-encoded');
  assert.equal(d2.user.id, sub);
});

test('refused logins: the error frame, then close 4401', async () => {
  const cases = {
    'no token': plain(),
    'a name only (development login)': plain('name=alice'),
    'bad signature, header': plain('', bearer(sign({ sub: uniqueSub(), exp: nowS() + 600 }, { key: 'x'.repeat(40) }))),
    'bad signature, query': plain(q(sign({ sub: uniqueSub(), exp: nowS() + 600 }, { key: 'x'.repeat(40) }))),
    'expired, header': plain('', bearer(sign({ sub: uniqueSub(), exp: nowS() - 3600 }))),
    'expired, query': plain(q(sign({ sub: uniqueSub(), exp: nowS() - 3600 }))),
    'not yet valid': plain(q(sign({ sub: uniqueSub(), nbf: nowS() + 3600 }))),
    'alg none': plain(q(sign({ sub: uniqueSub(), exp: nowS() + 600 }, { alg: 'none' }))),
    'a.b.c.d': plain(q('a.b.c.d')),
    'garbage Bearer': plain('', bearer('garbage')),
    'Basic auth': plain('', { Authorization: 'Basic YTpi' }),
    'a bad percent escape': plain('token=%zz'),
    'a 6 KB token of garbage in the query': plain(q('A'.repeat(6000))),
  };
  await Promise.all(Object.entries(cases).map(([what, c]) => refused(c, what)));
});

test('an upgrade carrying a token over 8 KiB is refused (4401 or an HTTP error), never accepted', async () => {
  const big = sign({ sub: uniqueSub(), exp: nowS() + 600, pad: 'p'.repeat(7000) });
  assert.ok(big.length > 8192);
  for (const [what, c] of [['header', plain('', bearer(big))], ['query', plain(q(big))]]) {
    const outcome = await c.upgraded.then(() => 'upgraded', (e) => e.message);
    if (outcome === 'upgraded') await refused(c, what);
    else assert.match(outcome, /HTTP 4\d\d/, `${what}: ${outcome}`);
  }
});

test('header and query both given: the header\'s token is used', async () => {
  const sub = uniqueSub();
  const good = sign({ sub, exp: nowS() + 600 });
  const bad = sign({ sub: uniqueSub(), exp: nowS() + 600 }, { key: 'y'.repeat(40) });
  const d = await accepted(plain(q(good), bearer(good)), 'both good');
  assert.equal(d.user.id, sub);
  // PROTOCOL.md §2 orders the header before the query for Socket.IO; /ws should agree.
  const c = plain(q(bad), bearer(good));
  await c.upgraded;
  const first = await c.next(null, T(3000));
  assert.equal(first.event, 'connected', `a good header with a bad query: ${show(first)} (close ${show(c.close)})`);
});

test(`expiry on /ws: error {code: token_expired, event: refresh_token}; refresh_token answers with its id; without it close 4401 after ${GRACE_MS} ms`, { timeout: T(15000) }, async () => {
  const sub = uniqueSub();
  const exp = Math.ceil(Date.now() / 1000) + 1;
  const token = sign({ sub, exp });
  const x = plain(q(token));
  const y = plain('', bearer(token));
  await accepted(x, 'x');
  await accepted(y, 'y');
  const bound = T(exp * 1000 - Date.now() + 2000);
  const [ex, ey] = await Promise.all([x, y].map((c) => c.next((f) => f.event === 'error' && f.data && f.data.code === 'token_expired', bound)));
  assert.equal(ex.data.event, 'refresh_token');
  assert.equal(ey.data.event, 'refresh_token');
  const eyAt = Date.now();
  const newExp = nowS() + 600;
  x.send({ event: 'refresh_token', data: { token: sign({ sub, exp: newExp }) }, id: 42 });
  const reply = await x.next((f) => f.id === 42);
  assert.deepEqual(reply, { event: 'token_refreshed', data: { exp: newExp * 1000 }, id: 42 }, 'the refresh reply');
  const yc = await h.withTimeout(y.closed, T(GRACE_MS + 3000), 'y to be closed after the grace');
  assert.equal(yc.code, 4401, 'y: close code');
  assert.ok(yc.at - eyAt >= GRACE_MS - 100, `y closed ${yc.at - eyAt} ms after token_expired`);
  // x is still open once y's grace ran out.
  x.send({ event: 'get_room_users', data: { room: 'after-grace' }, id: 43 });
  assert.equal((await x.next((f) => f.id === 43)).event, 'room_users');
  assert.equal(x.close, null, 'x must still be open');
  // Another sub is refused on /ws too.
  x.send({ event: 'refresh_token', data: { token: sign({ sub: uniqueSub(), exp: newExp }) }, id: 44 });
  const r44 = await x.next((f) => f.id === 44);
  assert.equal(r44.event, 'error');
  assert.equal(r44.data.code, 'invalid_token');
});
