'use strict';
// Socket.IO connection state recovery (issue 14 item 3) through the stock socket.io-client:
// the test cuts a client's transport (its engine closes, or its TCP connection dies), another
// member sends meanwhile, and the client reconnects by itself with {pid, offset}: the same socket
// (id, rooms), every missed message once and in order before the CONNECT reply, and the others
// saw nobody leave or join. A client's own disconnect, a pid or offset the server does not know,
// and the end of the window (--recovery-window) give a fresh connection.

const { test, describe, before, after, afterEach } = require('node:test');
const h = require('./harness');

const { T, eq, ok, settle } = h;

const RECONNECT = { reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 300, randomizationFactor: 0 };

// A client that reconnects by itself, on the given transports (null: polling, then the upgrade).
async function member(srv, room, transports) {
  const s = await h.connectClient(srv, h.uniqueName('r'), { ...RECONNECT, transports });
  await h.expectAnswer(s, 'join_room', { room }, 'joined_room');
  return s;
}

// Resolves with the next `connect` of socket (a reconnect).
function nextConnect(socket) {
  return h.withTimeout(new Promise((resolve) => socket.once('connect', resolve)), T(5000))
    .catch(() => { throw new Error(`${socket.label}: did not reconnect; received: ${socket.inbox.summary()}`); });
}

async function send(socket, room, text) {
  await h.expectAnswer(socket, 'send_message', { room, text }, 'message_sent');
}

const texts = (socket, room) => socket.inbox.all('new_message', (d) => d && d.room === room).map((d) => d.text);

describe('connection state recovery', () => {
  let srv;
  before(async () => { srv = await h.startServer(); });
  afterEach(() => h.closeAllClients());
  after(async () => { if (srv) await srv.stopClean(); });

  // cut: the client's engine closes (as socket.io-client does when its network drops), or the TCP
  // connection under its WebSocket is destroyed (the server sees the transport end without a close).
  const cuts = {
    engine: (s) => s.io.engine.close(),
    tcp: (s) => s.io.engine.transport.ws._socket.destroy(),
  };
  for (const [label, transports, cut] of [['websocket', ['websocket'], 'engine'], ['polling first', null, 'engine'],
    ['websocket, its TCP connection killed', ['websocket'], 'tcp']]) {
    test(`${label}: a cut transport recovers the same socket, its rooms and every missed message`, async () => {
      const room = h.uniqueRoom('rec');
      const a = await member(srv, room, transports);
      const b = await member(srv, room, ['websocket']);
      await h.nextEvent(a, 'user_joined_room');
      if (transports === null) await h.waitFor(() => a.io.engine.transport.name === 'websocket', T(5000), 'the upgrade');
      await send(b, room, 'before');
      await h.nextEvent(a, 'new_message');
      const id = a.id;
      const reconnected = nextConnect(a);
      cuts[cut](a); // the transport drops; the client reconnects after 300 ms
      for (let i = 1; i <= 5; i++) await send(b, room, `missed ${i}`);
      await reconnected;
      eq(a.recovered, true, 'socket.recovered');
      eq(a.id, id, 'the same socket id');
      await h.waitFor(() => texts(a, room).length >= 6, T(3000), 'the missed messages');
      eq(texts(a, room), ['before', 'missed 1', 'missed 2', 'missed 3', 'missed 4', 'missed 5']);
      // Its rooms were kept: a new message reaches it without join_room.
      await send(b, room, 'after');
      await h.waitFor(() => texts(a, room).includes('after'), T(3000), 'the message after recovery');
      await settle(a);
      eq(texts(a, room), ['before', 'missed 1', 'missed 2', 'missed 3', 'missed 4', 'missed 5', 'after']);
      await settle(b);
      eq(b.inbox.count('user_left_room'), 0, 'user_left_room seen by the other member');
      eq(b.inbox.count('user_joined_room'), 0, 'user_joined_room seen by the other member');
      // The server still answers it as a member of the room.
      await send(a, room, 'from a');
      await h.nextEvent(b, 'new_message', undefined, (d) => d.text === 'from a');
    });
  }

  test('a direct event sent while detached (an error answer) is replayed too', async () => {
    const room = h.uniqueRoom('rec');
    const a = await member(srv, room, ['websocket']);
    const b = await member(srv, room, ['websocket']);
    const reconnected = nextConnect(a);
    a.io.engine.close();
    await send(b, room, 'one');
    await reconnected;
    eq(a.recovered, true, 'socket.recovered');
    await h.waitFor(() => texts(a, room).includes('one'), T(3000), 'the missed message');
    // A further event to it alone carries an offset as its last argument, and the client keeps it.
    const r = await h.request(a, 'leave_room', { room: 'no-such-room' }, 'error');
    eq(r.name, 'error');
    const last = a.inbox.items.filter((it) => it.name === 'error').pop();
    ok(typeof last.args[last.args.length - 1] === 'string' && /^[0-9a-f]{16}$/.test(last.args[last.args.length - 1]),
      `the error event's last argument is an offset: ${h.show(last.args)}`);
  });

  test('a pid whose old transport the server still holds takes the socket over from it', async () => {
    // A polling session that parks no GET: the server cannot notice that its client went away.
    const base = `http://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text();
    const eioSid = JSON.parse(open.slice(1)).sid;
    const name = h.uniqueName('t');
    await fetch(`${base}&sid=${eioSid}`, { method: 'POST', body: `40${JSON.stringify({ name })}` });
    const packets = (await (await fetch(`${base}&sid=${eioSid}`)).text()).split('\x1e');
    const reply = JSON.parse(packets.find((p) => p.startsWith('40')).slice(2));
    const connected = JSON.parse(packets.find((p) => p.startsWith('42["connected"')).slice(2));
    ok(typeof reply.pid === 'string' && reply.pid.length === 20, 'a pid in the CONNECT reply', reply);
    const offset = connected[connected.length - 1];
    ok(/^[0-9a-f]{16}$/.test(offset), 'an offset last in connected', connected);
    const again = await h.connectClient(srv, name, { auth: { pid: reply.pid, offset, name } });
    eq(again.id, reply.sid, 'the same socket id');
    const r = await fetch(`${base}&sid=${eioSid}`);
    eq(r.status, 400, 'the old session is gone');
  });

  test("a client's own disconnect is not recoverable: the others see it leave at once", async () => {
    const room = h.uniqueRoom('rec');
    const a = await member(srv, room, ['websocket']);
    const b = await member(srv, room, ['websocket']);
    const id = a.id;
    a.disconnect();
    const left = await h.nextEvent(b, 'user_left_room');
    eq(left.room, room);
    const back = nextConnect(a);
    a.connect(); // the client still sends its old pid: the server no longer keeps it
    await back;
    eq(a.recovered, false, 'socket.recovered');
    ok(a.id !== id, 'a new socket id');
  });

  test('a browser leaving the page (WebSocket close 1001) is not kept: the others see it leave at once', async () => {
    const room = h.uniqueRoom('rec');
    const a = await member(srv, room, ['websocket']);
    const b = await member(srv, room, ['websocket']);
    a.io.reconnection(false); // the page is gone: nothing comes back
    a.io.engine.transport.ws.close(1001, 'going away'); // what a browser sends when its page closes
    const left = await h.nextEvent(b, 'user_left_room');
    eq(left.room, room);
  });

  test('an unknown pid, or an offset the log does not hold, gets a fresh connection', async () => {
    const room = h.uniqueRoom('rec');
    const name = h.uniqueName('p');
    const fake = await h.connectClient(srv, name, { auth: { pid: 'AAAAAAAAAAAAAAAAAAAA', offset: '0000000000000000', name } });
    eq(fake.recovered, false, 'recovered with an unknown pid');
    const a = await member(srv, room, ['websocket']);
    const b = await member(srv, room, ['websocket']);
    const id = a.id;
    const reconnected = nextConnect(a);
    a.io.engine.close();
    a._lastOffset = 'ffffffffffffffff'; // an offset the server never gave
    await reconnected;
    eq(a.recovered, false, 'socket.recovered');
    ok(a.id !== id, 'a new socket id');
    // The detached socket ended when its recovery failed: its user left the room.
    const left = await h.nextEvent(b, 'user_left_room');
    eq(left.room, room);
  });
});

describe('scripts see a recovered connection', () => {
  let srv;
  before(async () => {
    // on_connect tells what the script sees: conn:recovered(), and a counter kept in conn:data().
    const dir = h.copyScripts((rel, text) => (rel !== 'init.lua' ? text : text.replace(
      'conn:emit("connected", { sid = conn:id(), user = conn:user(), server_time = space.now() })',
      'local d = conn:data(); d.connects = (d.connects or 0) + 1\n' +
      '  conn:emit("connected", { sid = conn:id(), user = conn:user(), server_time = space.now(),' +
      ' recovered = conn:recovered(), connects = d.connects })')));
    srv = await h.startServer({ scripts: dir });
  });
  afterEach(() => h.closeAllClients());
  after(async () => { if (srv) await srv.stopClean(); });

  test('conn:recovered() is true and conn:data() is the same table', async () => {
    const a = await h.connectClient(srv, h.uniqueName('d'), { ...RECONNECT, transports: ['websocket'] });
    eq([a.connectedData.recovered, a.connectedData.connects], [false, 1], 'the first on_connect');
    const reconnected = nextConnect(a);
    a.io.engine.close();
    await reconnected;
    const again = await h.nextEvent(a, 'connected');
    eq([a.recovered, again.recovered, again.connects, again.sid], [true, true, 2, a.id], 'on_connect after recovery');
  });
});

describe('the end of the recovery window (--recovery-window 1500)', () => {
  let srv;
  before(async () => { srv = await h.startServer({ args: ['--recovery-window', '1500'] }); });
  afterEach(() => h.closeAllClients());
  after(async () => { if (srv) await srv.stopClean(); });

  test('the detached socket leaves its rooms when the window ends; a later reconnect is fresh', async () => {
    const room = h.uniqueRoom('rec');
    const a = await member(srv, room, ['websocket']);
    const b = await member(srv, room, ['websocket']);
    const id = a.id;
    const cutAt = Date.now();
    a.io.reconnection(false);
    a.io.engine.close();
    const left = await h.nextEvent(b, 'user_left_room', T(5000));
    eq(left.room, room);
    // Not before the window: a recoverable drop does not look like a leave.
    ok(Date.now() - cutAt >= 1400, `user_left_room came ${Date.now() - cutAt} ms after the cut, before the window ended`);
    const back = nextConnect(a);
    a.connect();
    await back;
    eq(a.recovered, false, 'socket.recovered');
    ok(a.id !== id, 'a new socket id');
  });
});

describe('recovery off (--recovery-window 0)', () => {
  let srv;
  before(async () => { srv = await h.startServer({ args: ['--recovery-window', '0'] }); });
  afterEach(() => h.closeAllClients());
  after(async () => { if (srv) await srv.stopClean(); });

  test('no pid, no offsets, and a cut transport is a disconnect', async () => {
    const room = h.uniqueRoom('rec');
    const a = await member(srv, room, ['websocket']);
    const b = await member(srv, room, ['websocket']);
    await send(b, room, 'plain');
    await h.nextEvent(a, 'new_message');
    const it = a.inbox.items.filter((x) => x.name === 'new_message').pop();
    eq(it.args.length, 1, 'new_message arguments');
    a.io.reconnection(false);
    a.io.engine.close();
    const left = await h.nextEvent(b, 'user_left_room');
    eq(left.room, room);
  });
});
