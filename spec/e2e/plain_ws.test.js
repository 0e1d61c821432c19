'use strict';
// The plain WebSocket protocol on /ws (PROTOCOL.md §1-§4) with the stock `ws` client:
// ws://host/ws?name=alice (development login), one JSON object per text frame
// {"event", "data", "id"?}, answers echoing the id (a number or a string of at most 64 bytes, as
// JSON-RPC sends it), errors, frames that are not such an object (invalid_payload, the connection
// stays), rooms shared with Socket.IO clients, protocol violations and their close codes (with a
// reason), the Origin check, server WebSocket pings.
// Main server: default options; a second one with --ping-interval 300 --ping-timeout 200.

const { test, describe, before, after, beforeEach, afterEach } = require('node:test');
const WebSocket = require('ws');
const h = require('./harness');

const { show, T, Inbox, eq, ok } = h;

let srv;
const main = new h.ManagedServer();
const clients = new Set();
before(async () => { srv = await main.start(); });
beforeEach(async () => { srv = await main.ensure(); });
afterEach(async () => {
  for (const c of clients) c.terminate();
  clients.clear();
  h.closeAllClients();
  await main.check();
});
after(async () => {
  for (const c of clients) c.terminate();
  h.closeAllClients();
  await main.finish();
});


// ---------------------------------------------------------------------------------------------
// a /ws client: every frame recorded (as {event, data, id} objects, by event name)

let seq = 0;
class PlainClient {
  // opts: {query: {name, ...} | string, headers, autoPong, server}
  static async open(opts = {}) {
    const c = new PlainClient(opts);
    await c.opened;
    return c;
  }

  // Opens and takes the first frame, which must be "connected".
  static async login(name, opts = {}) {
    const c = await PlainClient.open({ ...opts, query: name === undefined ? '' : { name } });
    const first = await c.inbox.take(['connected', 'error', '$text', '$binary', '$close'], null, h.DEFAULT_WAIT);
    if (first.name !== 'connected') {
      throw new Error(`${c.label}: expected the first frame to be {"event":"connected",...}, got ${first.name} ${show(first.data)}`);
    }
    eq(first.index, 0, `${c.label}: position of the "connected" frame (must be the first frame)`);
    c.connected = first.data.data;
    return c;
  }

  constructor(opts = {}) {
    const server = opts.server || srv;
    const q = opts.query === undefined ? '' : typeof opts.query === 'string' ? opts.query
      : '?' + new URLSearchParams(opts.query).toString();
    this.url = `ws://127.0.0.1:${server.port}/ws${q}`;
    this.label = `plain${++seq}${opts.query && opts.query.name ? ':' + opts.query.name : ''}`;
    this.inbox = new Inbox(this.label);
    this.frames = 0;
    this.pings = [];
    this.ws = new WebSocket(this.url, { perMessageDeflate: false, headers: opts.headers || {}, autoPong: opts.autoPong !== false });
    clients.add(this);
    this.opened = new Promise((resolve, reject) => {
      this.ws.on('open', () => { this.openedAt = Date.now(); resolve(); });
      this.ws.on('unexpected-response', (req, res) => {
        const e = new Error(`${this.label}: upgrade refused with HTTP ${res.statusCode}`);
        e.status = res.statusCode;
        reject(e);
        req.destroy();
      });
      this.ws.on('error', (e) => reject(e));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), at: Date.now() };
        this.inbox.push('$close', this.closeInfo, { index: this.frames++ });
        resolve(this.closeInfo);
      });
    });
    this.ws.on('ping', () => this.pings.push(Date.now()));
    this.ws.on('message', (data, isBinary) => {
      const index = this.frames++;
      if (isBinary) { this.inbox.push('$binary', Buffer.from(data), { index }); return; }
      const text = data.toString('utf8');
      let obj;
      try { obj = JSON.parse(text); } catch (_) { obj = undefined; }
      if (obj && typeof obj === 'object' && typeof obj.event === 'string') this.inbox.push(obj.event, obj, { index, text });
      else this.inbox.push('$text', text, { index });
    });
  }

  get isOpen() { return this.ws.readyState === WebSocket.OPEN; }
  get user() { return this.connected.user; }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }

  // The next frame named `event` (whole frame {event, data, id?}).
  async next(event, pred, timeoutMs = h.DEFAULT_WAIT) {
    return (await this.inbox.take(event, pred, timeoutMs)).data;
  }

  // Sends {event, data, id?}; returns the answering frame: the one with the same id when an id is
  // given, else the next `answer` or `error` frame.
  async request(event, data, answer, id) {
    const msg = { event };
    if (data !== undefined) msg.data = data;
    if (id !== undefined) msg.id = id;
    this.send(msg);
    const names = [answer, 'error'];
    const it = await this.inbox.take(names, id === undefined ? null : (f) => f.id === id, h.DEFAULT_WAIT);
    return it.data;
  }

  async expect(event, data, answer, id) {
    const f = await this.request(event, data, answer, id);
    if (f.event !== answer) throw new Error(`${this.label}: ${event} ${show(data)}: expected "${answer}", got ${show(f)}`);
    return f;
  }

  async waitClose(timeoutMs = T(3000)) {
    return h.withTimeout(this.closed, timeoutMs, `${this.label} to be closed by the server (received: ${this.inbox.summary()})`);
  }

  // Proves the connection still answers.
  async roundTrip() {
    const id = 900000 + Math.floor(Math.random() * 1000);
    const f = await this.request('get_room_users', { room: 'health' }, 'room_users', id);
    eq(f.event, 'room_users', `${this.label}: answer to a health check`);
  }

  terminate() { try { this.ws.terminate(); } catch (_) { /* ignore */ } }
}

function assertFrame(frame, event, id, what) {
  eq(frame.event, event, `${what}: event`);
  if (id === undefined) ok(!('id' in frame), `${what}: no "id" key in an answer to a request without id`, frame);
  else eq(frame.id, id, `${what}: id echoed`);
  const extra = Object.keys(frame).filter((k) => !['event', 'data', 'id'].includes(k));
  eq(extra, [], `${what}: keys besides event, data, id`);
  ok(frame.data && typeof frame.data === 'object' && !Array.isArray(frame.data), `${what}: data is an object`, frame);
}

function assertError(frame, code, event, id, what) {
  assertFrame(frame, 'error', id, what);
  eq(frame.data.code, code, `${what}: error code`);
  ok(typeof frame.data.message === 'string' && frame.data.message.length > 0, `${what}: error message`, frame.data);
  eq(frame.data.event, event, `${what}: error.event`);
}

const ids = (users) => users.map((u) => u.id).sort();

// ---------------------------------------------------------------------------------------------

describe('login and the connected frame', () => {
  test('ws://…/ws?name=alice: the first frame is {"event":"connected","data":{sid, user:{id, name:"alice"}, server_time}}', async () => {
    const name = h.uniqueName('alice');
    const t0 = Date.now();
    const c = await PlainClient.login(name);
    const f = c.inbox.items[0];
    eq(Object.keys(f.data).sort(), ['data', 'event'], 'keys of the connected frame');
    const d = c.connected;
    eq(Object.keys(d).sort(), ['server_time', 'sid', 'user'], 'keys of connected.data');
    ok(typeof d.sid === 'string' && d.sid.length > 0, 'connected.data.sid is a non-empty string', d);
    ok(h.isUser(d.user), 'connected.data.user is {id, name}', d.user);
    eq(d.user.name, name, 'connected.data.user.name');
    ok(Number.isInteger(d.server_time) && Math.abs(d.server_time - t0) < 3000, 'server_time: ms since the epoch, near now', d.server_time);
  });

  test('the same name is the same user, over /ws and over Socket.IO; sids differ', async () => {
    const name = h.uniqueName('bob');
    const a = await PlainClient.login(name);
    const b = await PlainClient.login(name);
    const s = await h.connectClient(srv, name);
    eq(b.user.id, a.user.id, 'user id of a second /ws connection with the same name');
    eq(s.connectedData.user, a.user, 'user of a Socket.IO connection with the same name');
    ok(a.connected.sid !== b.connected.sid, 'sids of two /ws connections differ', [a.connected.sid, b.connected.sid]);
  });

  test('a percent-encoded UTF-8 name is decoded (name=J%C3%BCrgen%20K → "Jürgen K")', async () => {
    const c = await PlainClient.open({ query: '?name=J%C3%BCrgen%20K' });
    const f = await c.next('connected');
    eq(f.data.user.name, 'Jürgen K', 'connected.data.user.name');
  });

  test('development mode: no name → a guest user; each connection its own id', async () => {
    const g1 = await PlainClient.login(undefined);
    const g2 = await PlainClient.login(undefined);
    ok(h.isUser(g1.user) && g1.user.name.length > 0, 'guest user {id, name} with a non-empty name', g1.user);
    ok(g1.user.id !== g2.user.id, 'two guests have different ids', [g1.user, g2.user]);
  });
});

describe('chat events, with and without id', () => {
  for (const id of [undefined, 7, 0, 9007199254740991, 'req-2', '', 'é'.repeat(32), -3, 1.5, 12345678901234567890]) {
    const tag = id === undefined ? 'without id' : `with id ${JSON.stringify(id)}`;
    test(`join_room, get_room_users, send_message, leave_room ${tag}: one answering frame each${id === undefined ? ', no id key' : ', id echoed'}`, async () => {
      const a = await PlainClient.login(h.uniqueName('a'));
      const room = h.uniqueRoom();
      const j = await a.expect('join_room', { room }, 'joined_room', id);
      assertFrame(j, 'joined_room', id, 'joined_room');
      eq(j.data, { room, users: [a.user], count: 1 }, 'joined_room.data');
      const u = await a.expect('get_room_users', { room }, 'room_users', id);
      assertFrame(u, 'room_users', id, 'room_users');
      eq(u.data, { room, users: [a.user], count: 1 }, 'room_users.data');
      const t0 = Date.now();
      const m = await a.expect('send_message', { room, text: '  hi there  ', client_msg_id: 'c1' }, 'message_sent', id);
      assertFrame(m, 'message_sent', id, 'message_sent');
      eq(Object.keys(m.data).sort(), ['client_msg_id', 'id', 'room', 'timestamp'], 'message_sent.data keys');
      ok(typeof m.data.id === 'string' && m.data.id.length > 0, 'message_sent.data.id', m.data);
      eq([m.data.room, m.data.client_msg_id], [room, 'c1'], 'message_sent room and client_msg_id');
      ok(Math.abs(m.data.timestamp - t0) < 3000, 'message_sent.timestamp near now', m.data.timestamp);
      const l = await a.expect('leave_room', { room }, 'left_room', id);
      assertFrame(l, 'left_room', id, 'left_room');
      eq(l.data, { room }, 'left_room.data');
      // exactly one frame per request
      await a.roundTrip();
      eq(a.inbox.items.filter((it) => !it.taken).map((it) => it.name), [], 'frames besides the answers');
    });
  }

  test('requests with different ids are answered with their own id, in order', async () => {
    const a = await PlainClient.login(h.uniqueName('pipe'));
    const rooms = [h.uniqueRoom(), h.uniqueRoom(), h.uniqueRoom()];
    rooms.forEach((room, i) => a.send({ event: 'join_room', data: { room }, id: 100 + i }));
    const got = [];
    for (let i = 0; i < 3; i++) got.push(await a.next('joined_room'));
    eq(got.map((f) => [f.id, f.data.room]), rooms.map((r, i) => [100 + i, r]), '[id, room] of the answers');
  });

  test('a second member: user_joined_room / new_message / user_left_room arrive as frames without id', async () => {
    const a = await PlainClient.login(h.uniqueName('a'));
    const b = await PlainClient.login(h.uniqueName('b'));
    const room = h.uniqueRoom();
    await a.expect('join_room', { room }, 'joined_room', 1);
    const jb = await b.expect('join_room', { room }, 'joined_room', 2);
    eq(ids(jb.data.users), ids([a.user, b.user]), 'users in b\'s joined_room');
    const uj = await a.next('user_joined_room');
    eq(uj, { event: 'user_joined_room', data: { room, user: b.user } }, 'user_joined_room frame');
    const sent = await b.expect('send_message', { room, text: 'hello a' }, 'message_sent', 3);
    const nm = await a.next('new_message');
    eq({ ...nm, data: h.dropOffset(nm.data, 'new_message') }, { event: 'new_message', data: { id: sent.data.id, room, user: b.user, text: 'hello a', timestamp: sent.data.timestamp } },
      'new_message frame');
    await b.expect('leave_room', { room }, 'left_room');
    eq(await a.next('user_left_room'), { event: 'user_left_room', data: { room, user: b.user } }, 'user_left_room frame');
    await b.roundTrip();
    eq(b.inbox.items.filter((it) => !it.taken && it.name === 'new_message'), [], 'the sender does not get its own new_message');
  });

  test('closing a /ws connection leaves its rooms: the others get user_left_room', async () => {
    const a = await PlainClient.login(h.uniqueName('a'));
    const b = await PlainClient.login(h.uniqueName('b'));
    const room = h.uniqueRoom();
    await a.expect('join_room', { room }, 'joined_room');
    await b.expect('join_room', { room }, 'joined_room');
    b.ws.close(1000);
    eq(await a.next('user_left_room'), { event: 'user_left_room', data: { room, user: b.user } }, 'user_left_room after b closed');
  });
});

describe('errors', () => {
  const cases = [
    ['join_room with an invalid room', 'join_room', { room: 'bad room' }, 'invalid_room'],
    ['join_room without data', 'join_room', undefined, 'invalid_payload'],
    ['join_room with data a string', 'join_room', 'lobby', 'invalid_payload'],
    ['join_room with room a number', 'join_room', { room: 5 }, 'invalid_payload'],
    ['send_message to a room one is not in', 'send_message', { room: 'nobody-here', text: 'x' }, 'not_in_room'],
    ['leave_room of a room one is not in', 'leave_room', { room: 'nobody-here' }, 'not_in_room'],
    ['get_room_users without room', 'get_room_users', {}, 'invalid_payload'],
    ['an unknown event', 'frobnicate', {}, 'unknown_event'],
    ['a server-to-client event name (new_message)', 'new_message', { room: 'r' }, 'unknown_event'],
  ];
  for (const [label, event, data, code] of cases) {
    for (const id of [undefined, 42]) {
      test(`${label} → {"event":"error","data":{"code":"${code}",…,"event":"${event}"}${id === undefined ? '' : ',"id":42'}}; the connection stays`, async () => {
        const a = await PlainClient.login(h.uniqueName('err'));
        const f = await a.request(event, data, '(none)', id);
        assertError(f, code, event, id, label);
        await a.roundTrip();
        ok(a.isOpen, 'the connection stays open after an error', a.closeInfo);
      });
    }
  }

  test('empty_message and message_too_long with ids', async () => {
    const a = await PlainClient.login(h.uniqueName('len'));
    const room = h.uniqueRoom();
    await a.expect('join_room', { room }, 'joined_room', 1);
    assertError(await a.request('send_message', { room, text: ' \n\t ' }, '-', 2), 'empty_message', 'send_message', 2, 'whitespace text');
    assertError(await a.request('send_message', { room, text: 'é'.repeat(4001) }, '-', 3), 'message_too_long', 'send_message', 3, '4001 code points');
    const okf = await a.expect('send_message', { room, text: 'é'.repeat(4000) }, 'message_sent', 4);
    assertFrame(okf, 'message_sent', 4, '4000 code points');
  });
});

describe('a /ws user and a Socket.IO user in one room', () => {
  for (const [label, transports] of [['WebSocket', ['websocket']], ['long-polling', ['polling']]]) {
    test(`they see each other join, chat and leave (Socket.IO over ${label})`, async () => {
      const p = await PlainClient.login(h.uniqueName('plain'));
      const s = await h.connectClient(srv, h.uniqueName('sio'), { transports });
      const room = h.uniqueRoom();
      await p.expect('join_room', { room }, 'joined_room', 1);
      const js = await h.expectAnswer(s, 'join_room', { room }, 'joined_room');
      eq(ids(js.users), ids([p.user, s.connectedData.user]), 'users seen by the Socket.IO joiner');
      eq((await p.next('user_joined_room')).data, { room, user: s.connectedData.user }, '/ws member told of the Socket.IO joiner');
      const fromSio = await h.expectAnswer(s, 'send_message', { room, text: 'from socket.io' }, 'message_sent');
      const nm1 = await p.next('new_message');
      eq(h.dropOffset(nm1.data), { id: fromSio.id, room, user: s.connectedData.user, text: 'from socket.io', timestamp: fromSio.timestamp },
        'new_message at the /ws member');
      const fromWs = await p.expect('send_message', { room, text: 'from /ws' }, 'message_sent', 2);
      const nm2 = await h.nextEvent(s, 'new_message');
      eq(h.dropOffset(nm2), { id: fromWs.data.id, room, user: p.user, text: 'from /ws', timestamp: fromWs.data.timestamp }, 'new_message at the Socket.IO member');
      ok(fromWs.data.id > fromSio.id, 'message ids sort in acceptance order across protocols', [fromSio.id, fromWs.data.id]);
      const users = await p.expect('get_room_users', { room }, 'room_users', 3);
      eq(users.data.count, 2, 'room_users count seen from /ws');
      p.ws.close(1000);
      eq(await h.nextEvent(s, 'user_left_room'), { room, user: p.user }, 'Socket.IO member told the /ws user left');
    });
  }
});

describe('frames that are not a /ws message answer invalid_payload; the connection stays', () => {
  // [label, frame, the error's event (undefined: none could be read), the id echoed (undefined: none)]
  const cases = [
    ['a text frame that is not JSON', 'hello', undefined, undefined],
    ['a JSON array', '["join_room",{"room":"r"}]', undefined, undefined],
    ['a JSON string', '"join_room"', undefined, undefined],
    ['JSON null', 'null', undefined, undefined],
    ['truncated JSON', '{"event":"join_room","data":{"room":"r"},"id":"t"', undefined, undefined],
    ['a byte order mark before the object', '\ufeff{"event":"join_room","data":{"room":"r"},"id":"bom"}', undefined, undefined],
    ['bytes after the object', '{"event":"join_room","data":{"room":"r"},"id":"tr"} {}', undefined, undefined],
    ['an object without "event"', '{"data":{"room":"r"},"id":"no-event"}', undefined, 'no-event'],
    ['an object whose "event" is a number', '{"event":5,"data":{},"id":6}', undefined, 6],
    ['an empty "event"', '{"event":"","data":{},"id":7}', '', 7],
    ['a reserved event name', '{"event":"disconnect","data":{},"id":8}', 'disconnect', 8],
    ['"data" an array', '{"event":"join_room","data":["r"],"id":"arr"}', 'join_room', 'arr'],
    ['"data" a string', '{"event":"join_room","data":"lobby","id":"str"}', 'join_room', 'str'],
    ['"data" null', '{"event":"join_room","data":null,"id":"nul"}', 'join_room', 'nul'],
    ['"id" true', '{"event":"join_room","data":{"room":"r"},"id":true}', 'join_room', undefined],
    ['"id" an object', '{"event":"join_room","data":{"room":"r"},"id":{"n":1}}', 'join_room', undefined],
    ['"id" null', '{"event":"join_room","data":{"room":"r"},"id":null}', 'join_room', undefined],
    ['"id" a string of 65 bytes', `{"event":"join_room","data":{"room":"r"},"id":"${'x'.repeat(65)}"}`, 'join_room', undefined],
    ['"id" 33 two-byte characters (66 bytes)', `{"event":"join_room","data":{"room":"r"},"id":"${'é'.repeat(33)}"}`, 'join_room', undefined],
    ['"event" twice', '{"event":"join_room","event":"leave_room","data":{"room":"r"},"id":"twice"}', undefined, 'twice'],
  ];
  for (const [label, frame, event, id] of cases) {
    test(`${label} → error invalid_payload${id === undefined ? '' : `, id ${JSON.stringify(id)} echoed`}; the next request is answered`, async () => {
      const a = await PlainClient.login(h.uniqueName('bad'));
      a.send(frame);
      const f = await a.next('error');
      assertError(f, 'invalid_payload', event, id, label);
      await a.roundTrip();
      ok(a.isOpen, 'the connection stays open', a.closeInfo);
    });
  }

  test('a string id of exactly 64 bytes is echoed; members besides event, data and id are ignored (JSON-RPC\'s "jsonrpc")', async () => {
    const a = await PlainClient.login(h.uniqueName('rpc'));
    const id = 'é'.repeat(32);
    a.send({ jsonrpc: '2.0', event: 'get_room_users', data: { room: 'r' }, id });
    const f = await a.next('room_users');
    assertFrame(f, 'room_users', id, '64-byte id');
  });

  test('an escaped key still names the member ("\\u0065vent" is "event")', async () => {
    const a = await PlainClient.login(h.uniqueName('esc'));
    a.send('{"\\u0065vent":"get_room_users","data":{"room":"r"},"id":"esc"}');
    assertFrame(await a.next('room_users'), 'room_users', 'esc', 'escaped key');
  });

  test('pipelined requests with string and number ids are each answered with their own id', async () => {
    const a = await PlainClient.login(h.uniqueName('pipe'));
    const ids = ['a', 1, 'b', -1, 'c', 0.5];
    for (const id of ids) a.send({ event: 'get_room_users', data: { room: 'r' }, id });
    const got = [];
    for (let i = 0; i < ids.length; i++) got.push((await a.next('room_users')).id);
    eq(got, ids, 'ids of the answers, in order');
  });
});

describe('protocol violations close only that connection', () => {
  const cases = [
    ['a binary frame', 1003, (c) => c.ws.send(Buffer.from([1, 2, 3]), { binary: true })],
    ['invalid UTF-8 (0xFF)', 1007, (c) => c.ws.send(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), { binary: false })],
    ['invalid UTF-8 (a lone surrogate ED A0 80)', 1007, (c) => c.ws.send(Buffer.from('{"event":"x\xed\xa0\x80"}', 'latin1'), { binary: false })],
  ];
  for (const [label, code, act] of cases) {
    test(`${label} → close ${code}; another connection of the same user keeps working`, async () => {
      const name = h.uniqueName('victim');
      const healthy = await PlainClient.login(name);
      const victim = await PlainClient.login(name);
      act(victim);
      const info = await victim.waitClose(T(3000)).catch((e) => {
        throw new Error(`${label}: expected close code ${code}, but the connection stayed open: ${e.message}`);
      });
      if (info.code !== code) await h.assertAlive(srv);
      eq(info.code, code, `${label}: close code`);
      ok(info.reason.length > 0, `${label}: the close frame says why`, info);
      ok(healthy.isOpen, 'the other connection stays open', healthy.closeInfo);
      await healthy.roundTrip();
    });
  }
});

describe('Origin', () => {
  test('a foreign Origin is refused: HTTP 403 on the upgrade', async () => {
    const err = await PlainClient.open({ query: { name: 'evil' }, headers: { Origin: 'http://evil.example' } }).then(() => null, (e) => e);
    ok(err && err.status === 403, 'expected the upgrade to be refused with HTTP 403', err && (err.status || err.message));
  });

  test('the server\'s own origin (Origin = http://<Host>) and no Origin pass', async () => {
    const own = await PlainClient.login(h.uniqueName('own'), { headers: { Origin: `http://127.0.0.1:${srv.port}` } });
    ok(own.isOpen, 'own origin connected', own.closeInfo);
    const none = await PlainClient.login(h.uniqueName('none'));
    ok(none.isOpen, 'no Origin connected', none.closeInfo);
  });
});

describe('server WebSocket pings (--ping-interval 300 --ping-timeout 200)', () => {
  let fast;
  before(async () => { fast = await h.startServer({ args: ['--ping-interval', '300', '--ping-timeout', '200'] }); });
  after(async () => { if (fast) await fast.stopClean(); });

  test('ping frames every pingInterval; a client that pongs stays, one that does not is closed after pingInterval + pingTimeout', async () => {
    const ponger = await PlainClient.login(h.uniqueName('pong'), { server: fast });
    const mute = await PlainClient.login(h.uniqueName('mute'), { server: fast, autoPong: false });
    const info = await mute.waitClose(T(300 + 200 + 2000));
    const life = info.at - mute.openedAt;
    ok(mute.pings.length >= 1, 'the mute client got a ping frame before being closed', mute.pings.length);
    ok(life >= 300 + 200 - 100, 'closed no earlier than pingInterval + pingTimeout after opening', life);
    await h.waitFor(() => ponger.pings.length >= 3, T(3000), 'three pings at the ponging client');
    const gaps = ponger.pings.slice(1).map((t, i) => t - ponger.pings[i]);
    for (const g of gaps) ok(g >= 300 - 60 && g <= 300 + T(700), 'gap between pings about pingInterval (300 ms)', gaps);
    ok(ponger.isOpen, 'the ponging client is still open', ponger.closeInfo);
    // the ponging client's data also still flows
    const id = 5;
    const f = await ponger.request('get_room_users', { room: 'r' }, 'room_users', id);
    eq(f.event, 'room_users', 'answer after three pings');
  });
});
