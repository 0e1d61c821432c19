'use strict';
// Engine.IO v4 HTTP long-polling and the polling → WebSocket upgrade, by hand over raw HTTP
// (node `net`, one request per TCP connection unless a test says keep-alive), as socketio-wire.md
// §1.2 (request checks and error bodies), §1.7 (long-polling and its concurrency/error table) and
// §1.9 (upgrade) describe them.
// Servers: the main one with --max-payload 4096 (default timers, so no ping lands in a payload);
// one with --ping-interval 300 --ping-timeout 200 for the heartbeat over polling; one running
// examples/protocol-suite (it echoes binary attachments) for b<base64>.
// Nothing sleeps for synchronisation: a parked GET is known to be parked once its bytes are written
// and a later request on another connection has been answered (the server is one event loop that
// reads ready connections in order).

const { test, describe, before, after, beforeEach, afterEach } = require('node:test');
const path = require('node:path');
const h = require('./harness');

const { show, T, RawClient, eq, ok } = h;
const MAX_PAYLOAD = 4096;
const POLL = '/socket.io/?EIO=4&transport=polling';
const RS = '\x1e';

let srv;
const raws = new Set();
// Recovery off: these check the end of an Engine.IO session, which no recovery window delays,
// and the bytes of events without a recovery offset (spec/e2e/recovery.test.js has recovery).
const main = new h.ManagedServer({ args: ['--max-payload', String(MAX_PAYLOAD), '--recovery-window', '0'] });
before(async () => { srv = await main.start(); });
beforeEach(async () => { srv = await main.ensure(); });
afterEach(async () => {
  for (const r of raws) r.close();
  raws.clear();
  await main.check();
});
after(async () => {
  for (const r of raws) r.close();
  await main.finish();
});


// ---------------------------------------------------------------------------------------------
// raw HTTP

// One request as bytes. opts: {headers: ['Name: value'], body, contentType, keepAlive, host}
function httpReq(method, target, opts = {}) {
  const body = opts.body === undefined ? null : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, 'utf8');
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${opts.host || '127.0.0.1'}`];
  if (!opts.keepAlive) lines.push('Connection: close');
  if (body !== null) {
    lines.push(`Content-Type: ${opts.contentType || 'text/plain;charset=UTF-8'}`);
    lines.push(`Content-Length: ${body.length}`);
  }
  lines.push(...(opts.headers || []));
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  return body === null ? head : Buffer.concat([head, body]);
}

const send = (server, method, target, opts) => h.httpRaw(server.port, httpReq(method, target, opts), opts && opts.timeoutMs);

function describeResponse(r) {
  return `HTTP ${r.status} ${show(r.headers)} body ${show(r.body)}`;
}

// A barrier: once a request on a new connection is answered, the server has read what was written
// on earlier connections before it.
async function barrier(server) {
  const r = await send(server, 'GET', '/healthz');
  eq(r.status, 200, 'barrier GET /healthz');
}

const packetsOf = (body) => (body === '' ? [] : body.split(RS));
const eventOf = (pkt) => {
  const m = /^42(\d*)(\[.*)$/s.exec(pkt);
  if (!m) return null;
  try {
    const arr = JSON.parse(m[2]);
    return { name: arr[0], data: arr[1], id: m[1] };
  } catch (_) {
    return null;
  }
};

function assertEioError(r, status, code, message, what) {
  eq(r.status, status, `${what}: HTTP status (${describeResponse(r)})`);
  ok(/^application\/json/.test(r.headers['content-type'] || ''), `${what}: Content-Type application/json`, r.headers['content-type']);
  eq(r.body, JSON.stringify({ code, message }), `${what}: error body`);
}

// Opens a connection, sends one request, waits for its whole answer and leaves the connection open.
function keepAliveConnection(server, data) {
  return new Promise((resolve, reject) => {
    const net = require('node:net');
    const sock = net.connect(server.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('no answer on the keep-alive connection')); }, h.DEFAULT_WAIT);
    sock.on('error', () => {});
    sock.on('connect', () => sock.write(data));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = h.parseResponse(buf);
      if (r) {
        clearTimeout(timer);
        if (r.status !== 200 || /close/i.test(r.headers.connection || '')) {
          sock.destroy();
          reject(new Error(`keep-alive request: expected 200 without Connection: close, got HTTP ${r.status} ${show(r.headers)}`));
        } else resolve(sock);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// a polling session

class Session {
  static async open(server = srv, opts = {}) {
    const r = await send(server, 'GET', POLL + (opts.query || ''), { headers: opts.headers });
    if (r.status !== 200 || !r.body.startsWith('0{')) {
      throw new Error(`polling handshake: expected 200 with an open packet 0{...}, got ${describeResponse(r)}`);
    }
    const s = new Session(server, JSON.parse(r.body.slice(1)), r);
    if (opts.name !== undefined) await s.connect(opts.name);
    return s;
  }

  constructor(server, open, handshake) {
    this.server = server;
    this.open = open;
    this.sid = open.sid;
    this.handshake = handshake;
    this.received = []; // every packet any GET of this session returned
  }

  target(extra = '') { return `${POLL}&sid=${encodeURIComponent(this.sid)}${extra}`; }

  // Starts a request and returns h.httpStart's {response, socket, written}.
  start(method, opts = {}) {
    return h.httpStart(this.server.port, httpReq(method, this.target(), opts), opts.timeoutMs || h.DEFAULT_WAIT);
  }

  request(method, opts) { return this.start(method, opts).response; }

  // POST a payload; fails unless answered 200 "ok".
  async post(body, opts = {}) {
    const r = await this.request('POST', { ...opts, body });
    if (r.status !== 200 || r.body !== 'ok') {
      throw new Error(`POST ${show(body)} on ${this.sid}: expected 200 "ok", got ${describeResponse(r)}`);
    }
    return r;
  }

  // GET; fails unless 200. Returns the packets.
  async get(opts = {}) {
    const r = await this.request('GET', opts);
    if (r.status !== 200) throw new Error(`GET on ${this.sid}: expected 200, got ${describeResponse(r)}`);
    const pkts = packetsOf(r.body);
    this.received.push(...pkts);
    return pkts;
  }

  // GETs until pred(packets received by this call so far) holds; bounded overall.
  async collect(pred, what, timeoutMs = h.DEFAULT_WAIT) {
    const got = [];
    const deadline = Date.now() + timeoutMs;
    while (!pred(got)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.sid}: timed out waiting for ${what}; received ${show(got)}`);
      got.push(...await this.get({ timeoutMs: left }).catch((e) => {
        throw new Error(`${this.sid}: waiting for ${what}: ${e.message}; received so far ${show(got)}`);
      }));
    }
    return got;
  }

  // The next event `name` (skipping others); returns {name, data, id}.
  async nextEvent(name) {
    const pkts = await this.collect((g) => g.some((p) => eventOf(p) && eventOf(p).name === name), `event "${name}"`);
    return eventOf(pkts.find((p) => eventOf(p) && eventOf(p).name === name));
  }

  async connect(name) {
    await this.post('40' + JSON.stringify({ name }));
    const pkts = await this.collect((g) => g.some((p) => p.startsWith('42["connected"')), 'the CONNECT reply and "connected"');
    ok(pkts[0].startsWith('40{"sid"'), 'first packet after CONNECT must be 40{"sid":...}', pkts);
    this.connected = eventOf(pkts.find((p) => p.startsWith('42["connected"'))).data;
    return this.connected;
  }

  async join(room) {
    await this.post(`42["join_room",${JSON.stringify({ room })}]`);
    return (await this.nextEvent('joined_room')).data;
  }

  // A GET the server holds: written, then a barrier.
  async park() {
    const p = this.start('GET');
    await p.written;
    await barrier(this.server);
    return p;
  }

  // Passes when the server no longer knows the session.
  async assertGone(what) {
    const r = await this.request('GET');
    assertEioError(r, 400, 1, 'Session ID unknown', `${what}: a GET on the closed session`);
  }
}

let rawSeq = 0;
// A raw Engine.IO WebSocket client, closed after the test (or by the test when opts.untracked).
async function wsClient(server = srv, opts = {}) {
  const c = new RawClient(server, { label: opts.label || `ws${++rawSeq}`, ...opts });
  if (!opts.untracked) raws.add(c);
  await c.opened;
  return c;
}
async function wsMember(room, server = srv, opts = {}) {
  const c = await wsClient(server, opts);
  c.info = await c.connectNs({ name: h.uniqueName('wsm') });
  c.send(`4290["join_room",${JSON.stringify({ room })}]`);
  await c.nextText('4390[');
  return c;
}
const probeUrl = (server, sid) => `ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(sid)}`;

// ---------------------------------------------------------------------------------------------

describe('handshake and the basic exchange', () => {
  test('GET handshake → 200 text/plain; charset=UTF-8, Cache-Control no-store, 0{sid, upgrades:["websocket"], pingInterval, pingTimeout, maxPayload}', async () => {
    const r = await send(srv, 'GET', POLL);
    eq(r.status, 200, 'status');
    eq(r.headers['content-type'], 'text/plain; charset=UTF-8', 'Content-Type');
    ok(/no-store/i.test(r.headers['cache-control'] || ''), 'Cache-Control must say no-store', r.headers);
    ok(r.body.startsWith('0{'), 'body is the open packet 0{...}', r.body);
    const o = JSON.parse(r.body.slice(1));
    eq(Object.keys(o).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades'], 'open packet keys');
    ok(/^[A-Za-z0-9_-]{20}$/.test(o.sid), 'sid: 20 URL-safe characters', o.sid);
    eq(o.upgrades, ['websocket'], 'upgrades on a polling handshake');
    eq([o.pingInterval, o.pingTimeout, o.maxPayload], [25000, 20000, MAX_PAYLOAD], '[pingInterval, pingTimeout, maxPayload]');
    eq(packetsOf(r.body).length, 1, 'the handshake response carries the open packet only');
  });

  test('POST 40{name} → 200 "ok" text/html; the next GET carries 40{"sid"} and 42["connected",{sid,user,server_time}]', async () => {
    const s = await Session.open();
    const name = h.uniqueName('poll');
    const r = await s.request('POST', { body: '40' + JSON.stringify({ name }) });
    eq([r.status, r.body], [200, 'ok'], 'POST status and body');
    ok(/^text\/html/.test(r.headers['content-type'] || ''), 'POST answer Content-Type text/html', r.headers);
    const got = await s.get();
    eq(got.length, 2, `packets in the GET after CONNECT (${show(got)})`);
    ok(got[0].startsWith('40{"sid":"'), 'first: the CONNECT reply', got[0]);
    const sioSid = JSON.parse(got[0].slice(2)).sid;
    const ev = eventOf(got[1]);
    eq(ev && ev.name, 'connected', 'second: the connected event');
    eq(ev.data.sid, sioSid, 'connected.sid = the Socket.IO sid of the CONNECT reply');
    eq(ev.data.user.name, name, 'connected.user.name');
    ok(sioSid !== s.sid, 'the Socket.IO sid differs from the Engine.IO sid', [sioSid, s.sid]);
  });

  test('one POST with several packets joined by \\x1e runs them in order; the answers come in one GET', async () => {
    const s = await Session.open(srv, { name: h.uniqueName('multi') });
    const room = h.uniqueRoom();
    await s.post([`4211["join_room",{"room":"${room}"}]`, `4212["get_room_users",{"room":"${room}"}]`,
      `4213["leave_room",{"room":"${room}"}]`].join(RS));
    const got = await s.collect((g) => g.filter((p) => /^43\d/.test(p)).length >= 3, 'three acks');
    const acks = got.filter((p) => /^43\d/.test(p));
    eq(acks.map((p) => p.slice(0, 4)), ['4311', '4312', '4313'], 'ack ids in order');
    eq(JSON.parse(acks[1].slice(4))[0].count, 1, 'get_room_users after the join in the same POST sees the user');
    eq(JSON.parse(acks[2].slice(4))[0], { room }, 'leave_room ack');
  });

  test('a GET with nothing queued is held until something is queued, then answered with it', async () => {
    const room = h.uniqueRoom();
    const s = await Session.open(srv, { name: h.uniqueName('held') });
    await s.join(room);
    const parked = await s.park();
    let answered = false;
    parked.response.then(() => { answered = true; }, () => {});
    await barrier(srv);
    eq(answered, false, 'the GET must still be pending while nothing is queued');
    const w = await wsMember(room);
    const r = await parked.response;
    eq(r.status, 200, 'status of the held GET');
    const ev = eventOf(packetsOf(r.body)[0]);
    eq(ev && ev.name, 'user_joined_room', 'the held GET is answered with the event queued meanwhile');
    eq(ev.data.user, w.info.connected.user, 'user_joined_room.user');
  });
});

describe('Engine.IO request checks and error bodies (§1.2)', () => {
  test('transport=foo (and no transport) → 400 {"code":0,"message":"Transport unknown"}', async () => {
    assertEioError(await send(srv, 'GET', '/socket.io/?EIO=4&transport=foo'), 400, 0, 'Transport unknown', 'transport=foo');
    assertEioError(await send(srv, 'GET', '/socket.io/?EIO=4'), 400, 0, 'Transport unknown', 'no transport');
  });

  test('unknown sid → 400 {"code":1,"message":"Session ID unknown"} for GET and POST', async () => {
    const target = `${POLL}&sid=AAAAAAAAAAAAAAAAAAAA`;
    assertEioError(await send(srv, 'GET', target), 400, 1, 'Session ID unknown', 'GET with an unknown sid');
    assertEioError(await send(srv, 'POST', target, { body: '40' }), 400, 1, 'Session ID unknown', 'POST with an unknown sid');
    assertEioError(await send(srv, 'GET', `${POLL}&sid=nope`), 400, 1, 'Session ID unknown', 'GET with a short sid');
  });

  test('POST without sid (a handshake by POST) → 400 {"code":2,"message":"Bad handshake method"}', async () => {
    assertEioError(await send(srv, 'POST', POLL, { body: '40' }), 400, 2, 'Bad handshake method', 'POST handshake');
  });

  test('transport=websocket on a plain GET (no Upgrade) → 400 {"code":3,"message":"Bad request"}', async () => {
    assertEioError(await send(srv, 'GET', '/socket.io/?EIO=4&transport=websocket'), 400, 3, 'Bad request', 'websocket without Upgrade');
  });

  test('EIO=3 or no EIO on a polling handshake → 400 {"code":5,"message":"Unsupported protocol version"}', async () => {
    assertEioError(await send(srv, 'GET', '/socket.io/?EIO=3&transport=polling'), 400, 5, 'Unsupported protocol version', 'EIO=3');
    assertEioError(await send(srv, 'GET', '/socket.io/?transport=polling'), 400, 5, 'Unsupported protocol version', 'no EIO');
    assertEioError(await send(srv, 'GET', '/socket.io/?EIO=5&transport=polling'), 400, 5, 'Unsupported protocol version', 'EIO=5');
  });

  test('a foreign browser Origin → 403 {"code":4,"message":"Forbidden"} on the handshake and on a known session', async () => {
    const origin = ['Origin: http://evil.example'];
    assertEioError(await send(srv, 'GET', POLL, { headers: origin }), 403, 4, 'Forbidden', 'handshake with a foreign Origin');
    const s = await Session.open(srv, { name: h.uniqueName('orig') });
    assertEioError(await s.request('GET', { headers: origin }), 403, 4, 'Forbidden', 'GET on a session with a foreign Origin');
    assertEioError(await s.request('POST', { headers: origin, body: '42["get_room_users",{"room":"r"}]' }), 403, 4,
      'Forbidden', 'POST on a session with a foreign Origin');
  });

  test('a method other than GET/POST on a known session (PUT) → 500', async () => {
    const s = await Session.open();
    const r = await s.request('PUT', { body: '40' });
    eq(r.status, 500, `status for PUT on a known session (${describeResponse(r)})`);
  });
});

describe('long-polling concurrency and error cases (§1.7)', () => {
  test('a second GET while one is parked → the second answered 400, the parked one 200 "1"; the session is closed', async () => {
    const room = h.uniqueRoom();
    const s = await Session.open(srv, { name: h.uniqueName('dup') });
    await s.join(room);
    const w = await wsMember(room);
    await s.nextEvent('user_joined_room');
    const first = await s.park();
    const second = await s.request('GET');
    const r1 = await first.response;
    eq(second.status, 400, `status of the second GET (${describeResponse(second)})`);
    eq([r1.status, r1.body], [200, '1'], 'the parked GET is answered with the close packet "1"');
    eq(await w.nextEvent('user_left_room'), { room, user: s.connected.user }, 'the other member is told the user left');
    await s.assertGone('after the overlapping GET');
  });

  test('POST "1" (close) while a GET is parked → POST 200 "ok", the parked GET gets "6"; the session is closed', async () => {
    const s = await Session.open(srv, { name: h.uniqueName('bye') });
    const parked = await s.park();
    const p = await s.request('POST', { body: '1' });
    eq([p.status, p.body], [200, 'ok'], 'answer to the POST of "1"');
    const r = await parked.response;
    eq([r.status, r.body], [200, '6'], 'the parked GET is answered with a noop "6"');
    await s.assertGone('after the client close');
  });

  test('a client that aborts its parked GET is disconnected (others told at once)', async () => {
    const room = h.uniqueRoom();
    const s = await Session.open(srv, { name: h.uniqueName('abort') });
    await s.join(room);
    const w = await wsMember(room);
    await s.nextEvent('user_joined_room');
    const parked = await s.park();
    parked.socket.destroy();
    eq(await w.nextEvent('user_left_room'), { room, user: s.connected.user }, 'user_left_room after the aborted GET');
    await s.assertGone('after the aborted GET');
  });

  for (const [label, body] of [['"abc"', 'abc'], ['an empty body', ''], ['a valid packet then an empty one', `42["get_room_users",{"room":"r"}]${RS}`]]) {
    test(`a POST with an undecodable payload (${label}) → 400 (or Node's 200) and the session is closed`, async () => {
      const room = h.uniqueRoom();
      const s = await Session.open(srv, { name: h.uniqueName('bad') });
      await s.join(room);
      const w = await wsMember(room);
      const r = await s.request('POST', { body });
      ok(r.status === 400 || r.status === 200, `status for a malformed payload must be 400 (or 200 like Node) (${describeResponse(r)})`, r.status);
      eq(await w.nextEvent('user_left_room'), { room, user: s.connected.user }, 'the session is closed: the member is told');
      await s.assertGone('after a malformed payload');
    });
  }

  test('a POST with Content-Type application/octet-stream → 400 and the session is closed', async () => {
    const s = await Session.open(srv, { name: h.uniqueName('octet') });
    const r = await s.request('POST', { body: '42["get_room_users",{"room":"r"}]', contentType: 'application/octet-stream' });
    eq(r.status, 400, `status for an octet-stream POST (${describeResponse(r)})`);
    await s.assertGone('after an octet-stream POST');
  });

  test(`a POST body over --max-payload (${MAX_PAYLOAD}) → 413, its packets dropped; the session keeps working`, async () => {
    const room = h.uniqueRoom();
    const s = await Session.open(srv, { name: h.uniqueName('big') });
    await s.join(room);
    const w = await wsMember(room);
    await s.nextEvent('user_joined_room');
    const body = `42["send_message",{"room":"${room}","text":"${'x'.repeat(MAX_PAYLOAD)}"}]`;
    const r = await s.request('POST', { body });
    eq(r.status, 413, `status for a ${Buffer.byteLength(body)}-byte POST (${describeResponse(r)})`);
    await s.post(`4277["send_message",{"room":"${room}","text":"small"}]`);
    const ack = (await s.collect((g) => g.some((p) => p.startsWith('4377[')), 'the ack of the small message')).find((p) => p.startsWith('4377['));
    ok(typeof JSON.parse(ack.slice(4))[0].id === 'string', 'the small message is accepted after the 413', ack);
    const nm = await w.nextEvent('new_message');
    eq(nm.text, 'small', 'the first new_message the member gets is the small one (the oversized one was dropped)');
  });

  test('a second POST while one is still being read → 400 and the session is closed', async () => {
    const s = await Session.open(srv, { name: h.uniqueName('post2') });
    const full = Buffer.from('42["get_room_users",{"room":"first"}]');
    const whole = httpReq('POST', s.target(), { body: full });
    const slow = h.httpStart(srv.port, whole.subarray(0, whole.length - Math.floor(full.length / 2))); // half the body
    await slow.written;
    await barrier(srv);
    const second = await s.request('POST', { body: '42["get_room_users",{"room":"second"}]' });
    slow.socket.destroy();
    eq(second.status, 400, `status of a POST while another POST's body is still arriving (${describeResponse(second)})`);
    await s.assertGone('after the overlapping POST');
  });

  test('requests on a closed session → 400 {"code":1}', async () => {
    const s = await Session.open(srv, { name: h.uniqueName('closed') });
    await s.post('1');
    await s.assertGone('GET after the client closed');
    assertEioError(await s.request('POST', { body: '42["get_room_users",{"room":"r"}]' }), 400, 1, 'Session ID unknown',
      'POST after the client closed');
  });
});

describe('the 16-packet cap per GET response', () => {
  test('21 packets queued → GETs carry 16 and 5, in order (python-engineio refuses more than 16)', async () => {
    const room = h.uniqueRoom();
    const s = await Session.open(srv, { name: h.uniqueName('cap') });
    await s.join(room);
    const sender = await wsMember(room);
    await s.nextEvent('user_joined_room');
    const N = 21;
    for (let i = 0; i < N; i++) sender.send(`42${500 + i}["send_message",{"room":"${room}","text":"m${i}"}]`);
    for (let i = 0; i < N; i++) await sender.nextText(`43${500 + i}[`);
    // every handler has run: all N new_message are queued for the polling session
    const first = await s.get();
    ok(first.length <= 16, `the first GET must carry at most 16 packets (got ${first.length})`, first.length);
    eq(first.length, 16, 'packets in the first GET while 21 are queued (the cap, not fewer)');
    const second = await s.get();
    eq(second.length, N - 16, 'packets in the second GET (the rest)');
    const texts = [...first, ...second].map((p) => { const e = eventOf(p); return e && e.name === 'new_message' ? e.data.text : p; });
    eq(texts, Array.from({ length: N }, (_, i) => `m${i}`), 'new_message texts across both GETs, in order');
  });
});

describe('server shutdown with polling clients', () => {
  for (const keepAlive of [false, true]) {
    test(`SIGTERM: a parked GET (${keepAlive ? 'keep-alive' : 'Connection: close'}) is answered with the close packet "1"; exit 0 within a second`, async () => {
      const p = await h.startServer();
      try {
        const s = await Session.open(p, { name: h.uniqueName('shut') });
        const parked = s.start('GET', { keepAlive });
        await parked.written;
        await barrier(p);
        const r = await p.stop(T(1000));
        const pr = await parked.response.catch((e) => ({ error: e.message }));
        ok(!r.killed && r.code === 0, `exit code 0 within a second of SIGTERM\n--- server stderr ---\n${p.stderr.slice(-500)}`, r);
        eq(pr.error ? `no HTTP answer (${pr.error})` : [pr.status, pr.body], [200, '1'], 'answer to the GET parked at shutdown');
      } finally {
        await p.stop();
      }
    });
  }

  test('SIGTERM with idle keep-alive connections (as python requests.Session and browsers keep them): exit 0 within a second', async () => {
    const p = await h.startServer();
    const idle = [];
    try {
      for (let i = 0; i < 2; i++) idle.push(await keepAliveConnection(p, httpReq('GET', '/healthz', { keepAlive: true })));
      const r = await p.stop(T(1000));
      ok(!r.killed && r.code === 0, 'exit code 0 within a second of SIGTERM with 2 idle keep-alive HTTP connections open' +
        `\n--- server stderr ---\n${p.stderr.slice(-500)}`, r);
    } finally {
      for (const c of idle) c.destroy();
      await p.stop();
    }
  });
});

describe('binary attachments as b<base64> (server running examples/protocol-suite)', () => {
  let echo;
  before(async () => { echo = await h.startServer({ scripts: path.join(h.REPO, 'examples', 'protocol-suite') }); });
  after(async () => { if (echo) await echo.stopClean(); });

  async function echoSession() {
    const s = await Session.open(echo);
    await s.post('40');
    await s.collect((g) => g.some((p) => p.startsWith('42["auth"')), 'CONNECT reply and the "auth" event');
    return s;
  }

  test('POST 451-["message",<placeholder>] + bAQIDBA== → the echo comes back as 451-["message-back",<placeholder>] + bAQIDBA==', async () => {
    const s = await echoSession();
    await s.post(`451-["message",{"_placeholder":true,"num":0}]${RS}bAQIDBA==`);
    const got = await s.collect((g) => g.length >= 2, 'the binary echo (2 packets)');
    eq(got.slice(0, 2), ['451-["message-back",{"_placeholder":true,"num":0}]', 'bAQIDBA=='], 'packets of the echo');
  });

  test('binary ack: 451-7["message-with-ack",<placeholder>] + b<bytes 00 ff 10 80> → 461-7[<placeholder>] + the same bytes', async () => {
    const s = await echoSession();
    const b64 = 'b' + Buffer.from([0x00, 0xff, 0x10, 0x80]).toString('base64');
    await s.post(`451-7["message-with-ack",{"_placeholder":true,"num":0}]${RS}${b64}`);
    const got = await s.collect((g) => g.length >= 2, 'the binary ack (2 packets)');
    eq(got.slice(0, 2), ['461-7[{"_placeholder":true,"num":0}]', b64], 'packets of the ack');
  });

  test('an attachment that is not valid base64 (b + 5 characters) closes the session', async () => {
    const s = await echoSession();
    const r = await s.request('POST', { body: `451-["message",{"_placeholder":true,"num":0}]${RS}bAQIDB` });
    ok(r.status === 200 || r.status === 400, `status for a bad base64 attachment (${describeResponse(r)})`, r.status);
    await s.assertGone('after a bad base64 attachment');
  });

  test('two attachments in separate POSTs are put together', async () => {
    const s = await echoSession();
    await s.post('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    await s.post('bAQ==');
    await s.post('bAgM=');
    const got = await s.collect((g) => g.length >= 3, 'the echo with 2 attachments');
    eq(got.slice(0, 3), ['452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', 'bAQ==', 'bAgM='],
      'packets of the echo');
  });

  test('binary queued on polling before "5" goes out on the WebSocket as a binary frame after the upgrade', async () => {
    const s = await echoSession();
    const probe = await wsClient(echo, { url: probeUrl(echo, s.sid) });
    probe.send('2probe');
    eq(await probe.nextText(() => true), '3probe', 'first frame on the probe');
    await s.post(`451-["message",{"_placeholder":true,"num":0}]${RS}bCQgH`);
    probe.send('5');
    eq(await probe.nextText((t) => t.startsWith('45')), '451-["message-back",{"_placeholder":true,"num":0}]', 'the text part on the WebSocket');
    const bin = await probe.inbox.take('binary', null, h.DEFAULT_WAIT);
    eq([...bin.data], [9, 8, 7], 'the attachment as a binary frame');
  });
});

describe('upgrade to WebSocket by hand (§1.9)', () => {
  test('JS-client sequence: probe → 3probe, the parked GET released with "6", polling works until "5", then everything on the WebSocket', async () => {
    const room = h.uniqueRoom();
    const s = await Session.open(srv, { name: h.uniqueName('up') });
    await s.join(room);
    const w = await wsMember(room);
    await s.nextEvent('user_joined_room');
    const parked = await s.park();
    const probe = await wsClient(srv, { url: probeUrl(srv, s.sid) });
    probe.send('2probe');
    eq(await probe.nextText(() => true), '3probe', 'the first frame on the probe WebSocket');
    const released = await parked.response;
    eq([released.status, released.body], [200, '6'], 'the parked GET is released with a noop');
    // until "5", polling keeps working
    await s.post(`4211["get_room_users",{"room":"${room}"}]`);
    const viaPoll = await s.collect((g) => g.some((p) => p.startsWith('4311[')), 'the ack over polling during the upgrade');
    eq(JSON.parse(viaPoll.find((p) => p.startsWith('4311[')).slice(4))[0].count, 2, 'room_users count via polling');
    // queued on polling, not fetched: must move to the WebSocket with "5"
    w.send(`4212["send_message",{"room":"${room}","text":"queued before 5"}]`);
    await w.nextText('4312[');
    probe.send('5');
    const nm = JSON.parse((await probe.nextText((t) => t.startsWith('42["new_message"'))).slice(2))[1];
    eq(nm.text, 'queued before 5', 'the queued new_message arrives on the WebSocket after "5"');
    probe.send(`4213["get_room_users",{"room":"${room}"}]`);
    ok((await probe.nextText('4313[')).length > 6, 'an ack on the WebSocket', probe.inbox.summary());
    w.send(`4214["send_message",{"room":"${room}","text":"after 5"}]`);
    eq(JSON.parse((await probe.nextText((t) => t.startsWith('42["new_message"'))).slice(2))[1].text, 'after 5', 'new output on the WebSocket');
    // polling is over for this sid
    assertEioError(await s.request('GET'), 400, 3, 'Bad request', 'a polling GET after the upgrade');
    assertEioError(await s.request('POST', { body: '42["get_room_users",{"room":"r"}]' }), 400, 3, 'Bad request', 'a polling POST after the upgrade');
    // a second WebSocket for the upgraded sid is opened, then closed at once
    const again = await wsClient(srv, { url: probeUrl(srv, s.sid) });
    await again.waitClose(T(2000));
    ok(probe.isOpen, 'the upgraded WebSocket stays open', probe.closeInfo);
    await probe.ping();
    probe.close();
    eq(await w.nextEvent('user_left_room'), { room, user: s.connected.user }, 'closing the upgraded WebSocket disconnects the user');
  });

  test('python-client sequence: WebSocket probe right after the handshake, "5", then CONNECT on the WebSocket; polling refused afterwards', async () => {
    const s = await Session.open();
    const ws = await wsClient(srv, { url: probeUrl(srv, s.sid) });
    ws.send('2probe');
    eq(await ws.nextText(() => true), '3probe', 'the very next frame after 2probe');
    ws.send('5');
    const name = h.uniqueName('pystyle');
    ws.send('40' + JSON.stringify({ name }));
    ok((await ws.nextText(() => true)).startsWith('40{"sid":"'), 'CONNECT reply on the WebSocket', ws.inbox.summary());
    eq((await ws.nextEvent('connected')).user.name, name, 'connected.user.name on the WebSocket');
    assertEioError(await s.request('GET'), 400, 3, 'Bad request', 'a polling GET after the upgrade');
  });

  test('a second WebSocket for a sid that is being probed is opened, then closed at once; the first probe goes on', async () => {
    const s = await Session.open(srv, { name: h.uniqueName('twoprobes') });
    const p1 = await wsClient(srv, { url: probeUrl(srv, s.sid) });
    p1.send('2probe');
    eq(await p1.nextText(() => true), '3probe', 'first probe answered');
    const p2 = await wsClient(srv, { url: probeUrl(srv, s.sid) });
    await p2.waitClose(T(2000));
    p1.send('5');
    await p1.ping();
  });

  test('a first frame other than "2probe" on the probe closes that WebSocket; the session stays on polling', async () => {
    const s = await Session.open(srv, { name: h.uniqueName('badprobe') });
    const p = await wsClient(srv, { url: probeUrl(srv, s.sid) });
    p.send('5');
    await p.waitClose(T(2000));
    await s.post('4221["get_room_users",{"room":"r"}]');
    await s.collect((g) => g.some((x) => x.startsWith('4321[')), 'the ack over polling after the refused probe');
  });

  test('WebSocket with an unknown sid → refused (400), no upgrade', async () => {
    const r = await h.httpRaw(srv.port, `GET /socket.io/?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\n` +
      'Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
      'Sec-WebSocket-Version: 13\r\n\r\n');
    eq(r.status, 400, `status for an upgrade with an unknown sid (${describeResponse(r)})`);
    ok(r.body.includes('Session ID unknown'), 'the body names the error', r.body);
  });
});

describe('timers (in parallel: they wait)', { concurrency: true }, () => {
  test('heartbeat over polling (--ping-interval 300 --ping-timeout 200): pings queued as "2"; a client that polls and answers stays, one that stops polling is dropped after pingInterval + pingTimeout', async () => {
    const p = await h.startServer({ args: ['--ping-interval', '300', '--ping-timeout', '200', '--recovery-window', '0'] });
    const local = new Set();
    try {
      const room = h.uniqueRoom();
      const w = await wsMember(room, p, { untracked: true });
      local.add(w);
      const live = await Session.open(p, { name: h.uniqueName('live') });
      const t0 = Date.now();
      const quiet = await Session.open(p, { name: h.uniqueName('quiet') });
      const quietOpened = Date.now();
      await live.join(room);
      await quiet.join(room);
      const left = w.inbox.take('text', (t) => t.startsWith('42["user_left_room"'), T(300 + 200 + 2000));
      // the live client: poll, answer every ping, three times
      let pings = 0;
      while (pings < 3) {
        const got = await live.get({ timeoutMs: T(2000) });
        const n = got.filter((x) => x === '2').length;
        if (n) await live.post('3');
        pings += n;
      }
      const livedFor = Date.now() - t0;
      ok(livedFor >= 3 * 300 - 100, 'three pings take about three pingIntervals', livedFor);
      const gone = await left;
      eq(JSON.parse(gone.data.slice(2))[1].user, quiet.connected.user, 'the user dropped is the one that stopped polling');
      const dropAfter = gone.at - quietOpened;
      ok(dropAfter >= 300 + 200 - 100 && dropAfter <= 300 + 200 + T(1500),
        'dropped about pingInterval + pingTimeout (500 ms) after its handshake', dropAfter);
      await quiet.assertGone('the quiet client');
      await live.post('42["get_room_users",{"room":"r"}]');
      w.close();
    } finally {
      for (const c of local) c.close();
      await p.stopClean();
    }
  });

  test('upgrade timeout: a probe answered but never sent "5" is closed after about 10 s; the session stays on polling', async () => {
    const s = await Session.open(srv, { name: h.uniqueName('slowup') });
    const probe = await wsClient(srv, { url: probeUrl(srv, s.sid), untracked: true });
    try {
      probe.send('2probe');
      eq(await probe.nextText(() => true), '3probe', 'probe answered');
      const info = await probe.waitClose(T(13000));
      const after = info.at - probe.openedAt;
      ok(after >= 9500 && after <= 10000 + T(2500), 'the probe is closed about 10 s after it opened', after);
      await s.post('4231["get_room_users",{"room":"r"}]');
      await s.collect((g) => g.some((x) => x.startsWith('4331[')), 'the ack over polling after the upgrade timeout');
    } finally {
      probe.close();
    }
  });
});
