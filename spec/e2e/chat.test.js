'use strict';
// PROTOCOL.md §3-§5 through the stock socket.io-client, once per client configuration:
//   websocket  transports: ['websocket']                         (WebSocket from the start)
//   default    the client's default options                      (long-polling, then the upgrade to WebSocket)
//   polling    transports: ['polling']                           (HTTP long-polling only)
// join_room, leave_room, send_message, get_room_users, their errors, and disconnect cleanup. After
// each test every client still connected must be on the transport its configuration ends on
// (default: upgraded to websocket; polling: still polling).
// Run: node --test spec/e2e/  (the binary comes from $SPACE_SERVER, scripts from $SPACE_SCRIPTS)
// SPACE_TEST_TRANSPORTS=websocket,default,polling picks configurations (default: all three).

const { test: nodeTest, describe, before, after, beforeEach, afterEach } = require('node:test');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const h = require('./harness');

const { T, eq, ok, settle } = h;

const MODES = [
  { key: 'websocket', label: "transports ['websocket']", opts: { transports: ['websocket'] }, ends: 'websocket' },
  { key: 'default', label: 'default transports (polling, then upgrade)', opts: { transports: null }, ends: 'websocket' },
  { key: 'polling', label: "transports ['polling']", opts: { transports: ['polling'] }, ends: 'polling' },
];
const wanted = (process.env.SPACE_TEST_TRANSPORTS || '').split(',').map((x) => x.trim()).filter(Boolean);
for (const w of wanted) {
  if (!MODES.some((m) => m.key === w)) throw new Error(`SPACE_TEST_TRANSPORTS: unknown configuration "${w}" (known: ${MODES.map((m) => m.key)})`);
}

// An http.Agent (no keep-alive) that remembers every TCP connection it made, so that a test can cut
// the connections of a client abruptly, whatever its transport.
class TrackingAgent extends http.Agent {
  constructor() {
    super({ keepAlive: false });
    this.made = [];
  }

  createConnection(options, cb) {
    const s = super.createConnection(options, cb);
    this.made.push(s);
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// helpers


async function join(sock, room) {
  return h.expectAnswer(sock, 'join_room', { room }, 'joined_room');
}

async function leave(sock, room) {
  return h.expectAnswer(sock, 'leave_room', { room }, 'left_room');
}

async function send(sock, room, text, extra = {}) {
  return h.expectAnswer(sock, 'send_message', { room, text, ...extra }, 'message_sent');
}

async function roomUsers(sock, room) {
  return h.expectAnswer(sock, 'get_room_users', { room }, 'room_users');
}

// Asserts that `sock` got no (untaken) event `name` matching pred, after a settle round trip.
async function assertNothing(sock, name, pred, what) {
  await settle(sock);
  const untaken = sock.inbox.items.filter((it) => !it.taken && it.name === name && (!pred || pred(it.data)));
  eq(untaken.map((it) => it.data), [], `${what} (${sock.label} must not get "${name}")`);
}

function assertError(err, code, event) {
  ok(err && typeof err === 'object' && !Array.isArray(err), 'error data must be an object {code, message, event}', err);
  eq(err.code, code, `error.code`);
  ok(typeof err.message === 'string' && err.message.length > 0, 'error.message must be a non-empty string', err);
  eq(err.event, event, `error.event (the event that was refused)`);
}

function ids(users) {
  return users.map((u) => u.id).sort();
}

function assertUsers(data, expectedUsers, what) {
  ok(Array.isArray(data.users), `${what}: users must be an array`, data);
  for (const u of data.users) ok(h.isUser(u), `${what}: every user is {id, name}`, u);
  eq(ids(data.users), ids(expectedUsers), `${what}: user ids (each user listed once)`);
  eq(data.count, expectedUsers.length, `${what}: count = number of distinct users`);
  for (const e of expectedUsers) {
    const u = data.users.find((x) => x.id === e.id);
    eq(u.name, e.name, `${what}: name of user ${e.id}`);
  }
}

const userOf = (sock) => sock.connectedData.user;

function assertTime(ts, lo, hi, what) {
  ok(Number.isInteger(ts), `${what} must be an integer number of milliseconds`, ts);
  ok(ts >= lo - 2000 && ts <= hi + 2000, `${what} must be within 2 s of the client clock [${lo}, ${hi}]`, ts);
}

// ---------------------------------------------------------------------------------------------

for (const mode of MODES) {
  if (wanted.length && !wanted.includes(mode.key)) continue;
  describe(`chat over ${mode.label}`, () => chatSuite(mode));
}

function chatSuite(mode) {
  let srv;
  // A short recovery window: a dropped connection (reconnection off here) leaves its rooms 1 s later.
  const main = new h.ManagedServer({ args: ['--recovery-window', '1000'] });
  before(async () => { srv = await main.start(); });
  beforeEach(async () => { srv = await main.ensure(); });
  afterEach(async () => {
    h.closeAllClients();
    await main.check();
  });
  after(async () => {
    h.closeAllClients();
    await main.finish();
  });

  let opened = []; // the clients of the running test
  const connectTo = async (server, name, extra = {}) => {
    const s = await h.connectClient(server, name, { ...mode.opts, ...extra });
    opened.push(s);
    return s;
  };
  const connect = (name, extra) => connectTo(srv, name === undefined ? h.uniqueName() : name, extra);

  // Every client still connected ends on the configuration's transport: the default configuration
  // upgrades to websocket (within a bound), polling-only stays on polling.
  async function assertTransports() {
    for (const s of opened) {
      if (!s.connected) continue;
      const engine = s.io.engine;
      const name = () => engine && engine.transport && engine.transport.name;
      if (mode.ends === 'websocket') {
        await h.waitFor(() => name() === 'websocket', T(3000), 'the transport to be websocket').catch(() => {
          throw new Error(`${s.label} (${mode.label}): expected the client to end on transport "websocket" ` +
            `(socket.io.engine.transport.name), got "${name()}" after ${T(3000)} ms (upgrading=${engine && engine.upgrading})`);
        });
      } else {
        eq(name(), 'polling', `${s.label} (${mode.label}): socket.io.engine.transport.name (must stay on polling)`);
        ok(engine.upgrading !== true, `${s.label} (${mode.label}): engine.upgrading must not be true (no upgrade attempt)`, engine.upgrading);
      }
    }
  }

  // Every test also checks the transports at its end.
  const test = (name, fn) => nodeTest(name, async () => {
    opened = [];
    await fn();
    await assertTransports();
  });

  // Cuts the client's TCP connection(s) without a Socket.IO DISCONNECT or an Engine.IO close packet.
  // WebSocket: terminate the socket (after the upgrade in the default configuration). Polling (the
  // client must have been connected with a TrackingAgent, and must have received everything the
  // server meant for it so far, so that its pending GET stays parked): wait until that GET has been
  // written, close the client without a word (its transport can send nothing more), and destroy
  // every connection it made.
  async function dropTransportAbruptly(sock) {
    const engine = sock.io.engine;
    if (mode.ends === 'websocket') {
      await h.waitFor(() => engine.transport.name === 'websocket', T(3000), `${sock.label} to be on websocket`);
      const ws = engine.transport.ws;
      ok(ws && typeof ws.terminate === 'function', 'test setup: the client transport exposes its ws socket', typeof ws);
      ws.terminate();
      return;
    }
    const agent = sock.io.opts.agent;
    ok(agent instanceof TrackingAgent, 'test setup: the polling client was connected with a TrackingAgent', agent);
    // written = connected, something written, nothing left in node's buffer (so the server gets the
    // request before the FIN); pending = no byte of an answer yet
    await h.waitFor(() => agent.made.some((s) => !s.destroyed && !s.connecting && s.bytesWritten > 0 &&
      s.writableLength === 0 && s.bytesRead === 0 && s._httpMessage && s._httpMessage.method === 'GET'),
    T(3000), `a written, unanswered long-polling GET of ${sock.label}`);
    const tr = engine.transport;
    ok(typeof engine._onClose === 'function', 'test setup: engine.io-client has _onClose', typeof engine._onClose);
    tr.doClose = () => {}; // no close packet
    tr.send = () => {};
    engine._onClose('transport cut by the test');
    for (const s of agent.made) if (!s.destroyed) s.destroy();
  }

  // ---------------------------------------------------------------------------------------------

  describe('connect', () => {
    test('"connected" {sid, user:{id,name}, server_time} arrives right after connecting', async () => {
      const name = h.uniqueName('alice');
      const t0 = Date.now();
      const a = await connect(name);
      const t1 = Date.now();
      const c = a.connectedData;
      ok(c && typeof c === 'object', 'connected data must be an object', c);
      ok(typeof c.sid === 'string' && c.sid.length > 0, 'connected.sid must be a non-empty string', c);
      eq(c.sid, a.id, 'connected.sid (the Socket.IO socket id from the CONNECT reply)');
      ok(h.isUser(c.user), 'connected.user must be {id, name}', c);
      eq(c.user.name, name, 'connected.user.name (the dev auth name)');
      assertTime(c.server_time, t0, t1, 'connected.server_time');
    });

    test('the same name is the same user; different names are different users; sids differ', async () => {
      const name = h.uniqueName('alice');
      const a1 = await connect(name);
      const a2 = await connect(name);
      const b = await connect();
      eq(userOf(a2).id, userOf(a1).id, 'user id of a second connection with the same name');
      ok(userOf(b).id !== userOf(a1).id, 'different names must give different user ids', [userOf(a1), userOf(b)]);
      ok(a1.connectedData.sid !== a2.connectedData.sid, 'two connections must have different sids',
        [a1.connectedData.sid, a2.connectedData.sid]);
    });

    test('without a name each connection gets its own guest id and name', async () => {
      const g1 = await connectTo(srv, undefined);
      const g2 = await connectTo(srv, undefined);
      ok(h.isUser(userOf(g1)) && userOf(g1).name.length > 0, 'guest user must be {id, name} with a name', userOf(g1));
      ok(userOf(g1).id !== userOf(g2).id, 'two guests must have different ids', [userOf(g1), userOf(g2)]);
    });
  });

  describe('join_room', () => {
    test('first joiner gets joined_room {room, users:[self], count:1}', async () => {
      const a = await connect();
      const room = h.uniqueRoom();
      const j = await join(a, room);
      eq(j.room, room, 'joined_room.room');
      assertUsers(j, [userOf(a)], 'joined_room');
    });

    test('ack of join_room carries the same data as the joined_room event, which is sent as well', async () => {
      const a = await connect();
      const room = h.uniqueRoom();
      const r = await h.ackRequest(a, 'join_room', { room }, 'joined_room');
      eq(r.name, 'joined_room', 'answering event');
      eq(r.ack, r.data, 'ack data vs joined_room data');
    });

    test('a second user joining: joiner gets both users, the member gets user_joined_room, the joiner does not', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      const j = await join(b, room);
      assertUsers(j, [userOf(a), userOf(b)], 'joined_room for the second user');
      const ev = await h.nextEvent(a, 'user_joined_room');
      eq(ev, { room, user: userOf(b) }, 'user_joined_room received by the existing member');
      await assertNothing(b, 'user_joined_room', null, 'the joiner is not told about itself');
    });

    test('non-members get nothing when someone joins a room', async () => {
      const a = await connect();
      const outsider = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await join(outsider, h.uniqueRoom());
      const b = await connect();
      await join(b, room);
      await h.nextEvent(a, 'user_joined_room');
      await assertNothing(outsider, 'user_joined_room', null, 'a connection outside the room');
    });

    test('joining a room twice answers joined_room again and tells nobody', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await join(b, room);
      await h.nextEvent(a, 'user_joined_room');
      const again = await join(b, room);
      eq(again.room, room, 'second joined_room.room');
      assertUsers(again, [userOf(a), userOf(b)], 'second joined_room');
      await assertNothing(a, 'user_joined_room', null, 'after the repeated join');
    });

    test("a user's second connection joining: joined_room to it, user listed once, nobody told", async () => {
      const name = h.uniqueName('alice');
      const a1 = await connect(name);
      const a2 = await connect(name);
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a1, room);
      await join(b, room);
      await h.nextEvent(a1, 'user_joined_room');
      const j = await join(a2, room);
      assertUsers(j, [userOf(a1), userOf(b)], 'joined_room of the second connection');
      await assertNothing(b, 'user_joined_room', null, 'the same user already was in the room');
      await assertNothing(a1, 'user_joined_room', null, "the user's own first connection");
    });

    test('users lists a user with two connections once (get_room_users, joined_room)', async () => {
      const name = h.uniqueName('alice');
      const a1 = await connect(name);
      const a2 = await connect(name);
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a1, room);
      await join(a2, room);
      const j = await join(b, room);
      assertUsers(j, [userOf(a1), userOf(b)], 'joined_room of a third party');
      assertUsers(await roomUsers(b, room), [userOf(a1), userOf(b)], 'room_users');
    });

    test('room names: every allowed character and 64 characters are accepted', async () => {
      const a = await connect();
      const name64 = ('Az09_-.:' + h.uniqueRoom('r').replace(/[^A-Za-z0-9]/g, '')).padEnd(64, 'x').slice(0, 64);
      eq(name64.length, 64, 'test room name length');
      const j = await join(a, name64);
      eq(j.room, name64, 'joined_room.room for a 64-character name');
      eq((await join(a, 'a')).room, 'a', 'joined_room.room for a 1-character name');
    });

    for (const [label, room] of [
      ['empty', ''],
      ['65 characters', 'r'.repeat(65)],
      ['a space', 'has space'],
      ['a slash', 'a/b'],
      ['non-ASCII', 'caf\u00e9'],
      ['a NUL', 'a\u0000b'],
      ['a hash', 'a#b'],
    ]) {
      test(`join_room with a room name containing ${label} → invalid_room, nothing joined`, async () => {
        const a = await connect();
        const err = await h.expectError(a, 'join_room', { room });
        assertError(err, 'invalid_room', 'join_room');
      });
    }

    test('a refused join changes nothing: the user is not listed and members are not told', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      assertError(await h.expectError(b, 'join_room', [room]), 'invalid_payload', 'join_room');
      assertError(await h.expectError(b, 'join_room', { room: [room] }), 'invalid_payload', 'join_room');
      await assertNothing(a, 'user_joined_room', null, 'refused joins');
      assertUsers(await roomUsers(a, room), [userOf(a)], 'room_users after refused joins');
      assertError(await h.expectError(b, 'send_message', { room, text: 'x' }), 'not_in_room', 'send_message');
    });

    for (const [label, args] of [
      ['no data at all', []],
      ['null', [null]],
      ['a string', ['lobby']],
      ['a number', [42]],
      ['an array', [['lobby']]],
      ['an object without room', [{}]],
      ['room as a number', [{ room: 5 }]],
      ['room as null', [{ room: null }]],
      ['room as an array', [{ room: ['lobby'] }]],
      ['room as an object', [{ room: { name: 'lobby' } }]],
    ]) {
      test(`join_room with ${label} → invalid_payload`, async () => {
        const a = await connect();
        const err = await h.expectError(a, 'join_room', ...args);
        assertError(err, 'invalid_payload', 'join_room');
      });
    }
  });

  describe('leave_room', () => {
    test('leaver gets left_room {room}; the others get user_left_room {room, user}; the list shrinks', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await join(b, room);
      const l = await leave(b, room);
      eq(l, { room }, 'left_room data');
      eq(await h.nextEvent(a, 'user_left_room'), { room, user: userOf(b) }, 'user_left_room received by the member');
      await assertNothing(b, 'user_left_room', null, 'the leaver is not told about itself');
      assertUsers(await roomUsers(a, room), [userOf(a)], 'room_users after the leave');
    });

    test('ack of leave_room carries the same data as left_room', async () => {
      const a = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      const r = await h.ackRequest(a, 'leave_room', { room }, 'left_room');
      eq(r.name, 'left_room', 'answering event');
      eq(r.ack, r.data, 'ack data vs left_room data');
      eq(r.ack, { room }, 'ack data');
    });

    test('leaving a room one is not in → not_in_room (room with members, and unknown room)', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      assertError(await h.expectError(b, 'leave_room', { room }), 'not_in_room', 'leave_room');
      assertError(await h.expectError(b, 'leave_room', { room: h.uniqueRoom() }), 'not_in_room', 'leave_room');
      await assertNothing(a, 'user_left_room', null, 'a refused leave changes nothing');
      assertUsers(await roomUsers(a, room), [userOf(a)], 'room_users after refused leave');
    });

    test('leaving twice: the second leave answers not_in_room', async () => {
      const a = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await leave(a, room);
      assertError(await h.expectError(a, 'leave_room', { room }), 'not_in_room', 'leave_room');
    });

    test("one of a user's two connections leaving: left_room to it, nobody else told; the last one tells the others", async () => {
      const name = h.uniqueName('alice');
      const a1 = await connect(name);
      const a2 = await connect(name);
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a1, room);
      await join(a2, room);
      await join(b, room);
      await h.nextEvent(a1, 'user_joined_room');
      await h.nextEvent(a2, 'user_joined_room');
      eq(await leave(a1, room), { room }, 'left_room of the first connection');
      await assertNothing(b, 'user_left_room', null, 'the user still has a connection in the room');
      await assertNothing(a2, 'user_left_room', null, "the user's other connection");
      assertUsers(await roomUsers(b, room), [userOf(a1), userOf(b)], 'room_users while one connection remains');
      await leave(a2, room);
      eq(await h.nextEvent(b, 'user_left_room'), { room, user: userOf(a1) }, 'user_left_room after the last connection left');
      assertUsers(await roomUsers(b, room), [userOf(b)], 'room_users after both left');
    });

    test('after leaving, the connection no longer gets new_message for the room', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await join(b, room);
      await leave(b, room);
      await send(a, room, 'after leave');
      await assertNothing(b, 'new_message', null, 'a connection that left the room');
    });

    test('leave_room with an invalid room name → invalid_room', async () => {
      const a = await connect();
      assertError(await h.expectError(a, 'leave_room', { room: 'bad room' }), 'invalid_room', 'leave_room');
      assertError(await h.expectError(a, 'leave_room', { room: 'x'.repeat(65) }), 'invalid_room', 'leave_room');
    });

    for (const [label, args] of [
      ['no data', []],
      ['a string', ['lobby']],
      ['an array', [[]]],
      ['an object without room', [{ name: 'lobby' }]],
      ['room as a number', [{ room: 1 }]],
    ]) {
      test(`leave_room with ${label} → invalid_payload`, async () => {
        const a = await connect();
        assertError(await h.expectError(a, 'leave_room', ...args), 'invalid_payload', 'leave_room');
      });
    }
  });

  describe('send_message', () => {
    test('sender gets message_sent {id, room, timestamp, client_msg_id}; the other member gets new_message', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await join(b, room);
      const t0 = Date.now();
      const sent = await send(a, room, 'hello there', { client_msg_id: 'cm-1' });
      const t1 = Date.now();
      ok(typeof sent.id === 'string' && sent.id.length > 0, 'message_sent.id must be a non-empty string', sent);
      eq(sent.room, room, 'message_sent.room');
      eq(sent.client_msg_id, 'cm-1', 'message_sent.client_msg_id (echoed)');
      assertTime(sent.timestamp, t0, t1, 'message_sent.timestamp');
      const nm = await h.nextEvent(b, 'new_message');
      eq(h.dropOffset(nm, 'new_message'), { id: sent.id, room, user: userOf(a), text: 'hello there', timestamp: sent.timestamp },
        'new_message received by the other member');
      await assertNothing(a, 'new_message', null, 'the sending connection does not get its own new_message');
    });

    test('ack of send_message carries the same data as message_sent', async () => {
      const a = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      const r = await h.ackRequest(a, 'send_message', { room, text: 'acked', client_msg_id: 'x9' }, 'message_sent');
      eq(r.name, 'message_sent', 'answering event');
      eq(r.ack, r.data, 'ack data vs message_sent data');
      eq(r.ack.client_msg_id, 'x9', 'ack client_msg_id');
    });

    test("the sender's other connection in the room gets new_message; its connection outside the room and non-members do not", async () => {
      const name = h.uniqueName('alice');
      const a1 = await connect(name);
      const a2 = await connect(name);
      const a3 = await connect(name); // same user, not in the room
      const outsider = await connect();
      const room = h.uniqueRoom();
      await join(a1, room);
      await join(a2, room);
      await join(outsider, h.uniqueRoom());
      const sent = await send(a1, room, 'from tab 1');
      const nm = await h.nextEvent(a2, 'new_message');
      eq(nm.id, sent.id, 'new_message.id on the other tab');
      eq(nm.user, userOf(a1), 'new_message.user on the other tab');
      await assertNothing(a1, 'new_message', null, 'the sending tab');
      await assertNothing(a3, 'new_message', null, "the same user's connection outside the room");
      await assertNothing(outsider, 'new_message', null, 'a non-member');
    });

    test('sending to a room one is not in → not_in_room, and its members get nothing', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      assertError(await h.expectError(b, 'send_message', { room, text: 'intruder' }), 'not_in_room', 'send_message');
      assertError(await h.expectError(b, 'send_message', { room: h.uniqueRoom(), text: 'x' }), 'not_in_room', 'send_message');
      await assertNothing(a, 'new_message', null, 'a refused message');
    });

    test('ack of a refused send_message carries the error object, and the error event is sent as well', async () => {
      const a = await connect();
      const r = await h.ackRequest(a, 'send_message', { room: h.uniqueRoom(), text: 'x' }, 'message_sent');
      eq(r.name, 'error', 'answering event');
      assertError(r.ack, 'not_in_room', 'send_message');
      eq(r.ack, r.data, 'ack data vs error event data');
    });

    for (const [label, text] of [['empty', ''], ['whitespace only', '  \t\n\r  ']]) {
      test(`${label} text → empty_message, and nothing is delivered`, async () => {
        const a = await connect();
        const b = await connect();
        const room = h.uniqueRoom();
        await join(a, room);
        await join(b, room);
        assertError(await h.expectError(a, 'send_message', { room, text }), 'empty_message', 'send_message');
        await assertNothing(b, 'new_message', null, 'an empty message');
      });
    }

    test('text is trimmed of leading and trailing whitespace; inner whitespace is kept', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await join(b, room);
      await send(a, room, ' \n\t hello \n  world \t\r\n ');
      eq((await h.nextEvent(b, 'new_message')).text, 'hello \n  world', 'delivered text');
    });

    describe('length limit: 4000 code points after trimming', () => {
      const cases = [
        ['ASCII', 'a'],
        ['2-byte UTF-8 (é)', '\u00e9'],
        ['3-byte UTF-8 (€)', '\u20ac'],
        ['4-byte UTF-8 / UTF-16 surrogate pair (😀)', '\u{1F600}'],
      ];
      for (const [label, ch] of cases) {
        test(`4000 × ${label} is accepted and delivered intact; 4001 → message_too_long`, async () => {
          const a = await connect();
          const b = await connect();
          const room = h.uniqueRoom();
          await join(a, room);
          await join(b, room);
          const text = ch.repeat(4000);
          const sent = await send(a, room, text);
          const nm = await h.nextEvent(b, 'new_message');
          eq(nm.id, sent.id, 'new_message.id');
          ok(nm.text === text, `delivered text must equal the sent 4000 code points (length ${text.length})`,
            { length: nm.text && nm.text.length, codePoints: nm.text && [...nm.text].length });
          assertError(await h.expectError(a, 'send_message', { room, text: ch.repeat(4001) }), 'message_too_long', 'send_message');
          await assertNothing(b, 'new_message', null, 'an over-long message');
        });
      }

      test('combining sequences count per code point: 2000 × "e\\u0301" is accepted, 2001 is too long', async () => {
        const a = await connect();
        const room = h.uniqueRoom();
        await join(a, room);
        await send(a, room, 'e\u0301'.repeat(2000));
        assertError(await h.expectError(a, 'send_message', { room, text: 'e\u0301'.repeat(2001) }), 'message_too_long', 'send_message');
      });

      test('the limit is counted after trimming: 4000 code points plus surrounding whitespace is accepted, delivered trimmed', async () => {
        const a = await connect();
        const b = await connect();
        const room = h.uniqueRoom();
        await join(a, room);
        await join(b, room);
        const core = 'z'.repeat(3999) + '\u00e9';
        await send(a, room, '   \n' + core + ' \t  \n');
        eq((await h.nextEvent(b, 'new_message')).text === core, true, 'delivered text equals the trimmed 4000 code points');
      });
    });

    test('text round-trips exactly: quotes, backslashes, control characters, U+2028, astral characters', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await join(b, room);
      const text = 'q"uo\'te \\back\\slash / <tag>&amp; \u0001\u001e\u001f\u007f \u2028\u2029 \u00e9\u4e2d\u{1F680} {"json":[1,2]} 42["x"]';
      await send(a, room, text);
      eq((await h.nextEvent(b, 'new_message')).text, text, 'delivered text');
    });

    test('send_message with an invalid room name → invalid_room', async () => {
      const a = await connect();
      assertError(await h.expectError(a, 'send_message', { room: 'no spaces', text: 'x' }), 'invalid_room', 'send_message');
    });

    for (const [label, args] of [
      ['no data', []],
      ['null', [null]],
      ['a string', ['hello']],
      ['an array', [['r', 'hello']]],
      ['no text', [{ room: 'r' }]],
      ['text as a number', [{ room: 'r', text: 5 }]],
      ['text as null', [{ room: 'r', text: null }]],
      ['text as an object', [{ room: 'r', text: { t: 'x' } }]],
      ['no room', [{ text: 'x' }]],
      ['room as a number', [{ room: 7, text: 'x' }]],
    ]) {
      test(`send_message with ${label} → invalid_payload`, async () => {
        const a = await connect();
        const room = h.uniqueRoom();
        await join(a, room);
        const patched = args.map((x) => (x && typeof x === 'object' && x.room === 'r' ? { ...x, room } : x));
        assertError(await h.expectError(a, 'send_message', ...patched), 'invalid_payload', 'send_message');
      });
    }

    test('message ids are unique strings that sort (as strings) in acceptance order, from a fresh server\'s first message on', async () => {
      // a fresh server, so that counters start low and cross 9 → 10 within these 24 messages
      const fresh = await h.startServer();
      try {
        await idsSortInAcceptanceOrder(fresh);
      } finally {
        h.closeAllClients();
        await fresh.stopClean();
      }
    });

    async function idsSortInAcceptanceOrder(server) {
      const a = await connectTo(server, h.uniqueName());
      const b = await connectTo(server, h.uniqueName());
      const watcher = await connectTo(server, h.uniqueName());
      const r1 = h.uniqueRoom();
      const r2 = h.uniqueRoom();
      for (const s of [a, b, watcher]) { await join(s, r1); await join(s, r2); }
      const accepted = [];
      let prevTs = 0;
      for (let i = 0; i < 24; i++) {
        const sender = i % 2 ? b : a;
        const room = i % 3 ? r1 : r2;
        const m = await send(sender, room, `m${i}`);
        ok(typeof m.id === 'string', 'message id must be a string', m);
        ok(m.timestamp >= prevTs, 'timestamps must not go backwards in acceptance order', [prevTs, m.timestamp]);
        prevTs = m.timestamp;
        accepted.push(m.id);
      }
      eq(new Set(accepted).size, accepted.length, 'number of distinct ids');
      for (let i = 1; i < accepted.length; i++) {
        ok(accepted[i - 1] < accepted[i], `id #${i} must sort after id #${i - 1} (string order)`, [accepted[i - 1], accepted[i]]);
      }
      await h.waitFor(() => watcher.inbox.count('new_message') >= 24, T(3000), 'the watcher to get 24 new_message');
      eq(watcher.inbox.all('new_message').map((m) => m.id), accepted, 'ids in the order the watcher received them');
    }

    test('concurrent senders: new_message arrives in id order at every member', async () => {
      const a = await connect();
      const b = await connect();
      const w = await connect();
      const room = h.uniqueRoom();
      for (const s of [a, b, w]) await join(s, room);
      for (let i = 0; i < 15; i++) {
        a.emit('send_message', { room, text: `a${i}` });
        b.emit('send_message', { room, text: `b${i}` });
      }
      await h.waitFor(() => w.inbox.count('new_message') >= 30, T(3000), 'the watcher to get 30 new_message');
      const got = w.inbox.all('new_message');
      for (let i = 1; i < got.length; i++) {
        ok(got[i - 1].id < got[i].id, `new_message #${i} must carry an id above the previous one`, [got[i - 1].id, got[i].id]);
      }
      eq(got.filter((m) => m.text.startsWith('a')).map((m) => m.text), Array.from({ length: 15 }, (_, i) => `a${i}`),
        "a's messages in the order a sent them");
      eq(new Set(got.map((m) => m.id)).size, 30, 'distinct ids');
    });

    test('rate limit: burst 40 then rate_limited; refused messages are not delivered; refills; per connection', async () => {
      const name = h.uniqueName('fast');
      const a = await connect(name);
      const a2 = await connect(name);
      const b = await connect();
      const room = h.uniqueRoom();
      for (const s of [a, a2, b]) await join(s, room);
      const N = 60;
      const t0 = Date.now();
      const acks = await Promise.all(Array.from({ length: N }, (_, i) =>
        a.timeout(T(5000)).emitWithAck('send_message', { room, text: `burst ${i}`, client_msg_id: `c${i}` })));
      const elapsed = Date.now() - t0;
      const accepted = acks.map((x, i) => [x, i]).filter(([x]) => x && typeof x.id === 'string');
      const limited = acks.filter((x) => x && x.code === 'rate_limited');
      eq(accepted.length + limited.length, N, 'every send_message answered with message_sent or rate_limited');
      ok(accepted.length >= 40, 'at least the burst of 40 must be accepted', { accepted: accepted.length, elapsed });
      const maxAllowed = 40 + Math.ceil(20 * elapsed / 1000) + 1;
      ok(accepted.length <= maxAllowed, `at most 40 + 20/s × ${elapsed} ms = ${maxAllowed} may be accepted`, accepted.length);
      ok(limited.length >= 1, 'some of 60 immediate messages must be rate_limited', limited.length);
      assertError(limited[0], 'rate_limited', 'send_message');
      await h.waitFor(() => b.inbox.count('new_message') >= accepted.length, T(3000), 'b to get every accepted message');
      await settle(b);
      eq(b.inbox.all('new_message').map((m) => m.text).sort(), accepted.map(([, i]) => `burst ${i}`).sort(),
        'texts delivered to b = exactly the accepted ones');
      // another connection of the same user has its own budget
      await send(a2, room, 'other tab is not limited');
      // the budget refills at 20/s: a message is accepted again within a second or so
      let tries = 0;
      await h.waitFor(async () => {
        tries++;
        const r = await a.timeout(T(3000)).emitWithAck('send_message', { room, text: 'after refill' });
        return r && typeof r.id === 'string';
      }, T(2000), 'a send_message to be accepted again after the refill', 100);
      ok(tries >= 1, 'refill tries', tries);
    });
  });

  describe('get_room_users', () => {
    test('answers room_users {room, users, count}; the ack carries the same data', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await join(b, room);
      const r = await h.ackRequest(a, 'get_room_users', { room }, 'room_users');
      eq(r.name, 'room_users', 'answering event');
      eq(r.ack, r.data, 'ack data vs room_users data');
      eq(r.data.room, room, 'room_users.room');
      assertUsers(r.data, [userOf(a), userOf(b)], 'room_users');
      await assertNothing(b, 'room_users', (d) => d.room === room, 'get_room_users answers only the asker');
    });

    test('works for a room one is not in, and for an empty room (users [], count 0)', async () => {
      const a = await connect();
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      assertUsers(await roomUsers(b, room), [userOf(a)], 'room_users asked by a non-member');
      const empty = await roomUsers(b, h.uniqueRoom());
      eq([empty.users, empty.count], [[], 0], 'room_users of a room nobody is in');
    });

    test('get_room_users with an invalid room → invalid_room; with bad data → invalid_payload', async () => {
      const a = await connect();
      assertError(await h.expectError(a, 'get_room_users', { room: 'a b' }), 'invalid_room', 'get_room_users');
      assertError(await h.expectError(a, 'get_room_users', {}), 'invalid_payload', 'get_room_users');
      assertError(await h.expectError(a, 'get_room_users', 'lobby'), 'invalid_payload', 'get_room_users');
      assertError(await h.expectError(a, 'get_room_users', { room: 3 }), 'invalid_payload', 'get_room_users');
      assertError(await h.expectError(a, 'get_room_users'), 'invalid_payload', 'get_room_users');
    });
  });

  describe('unknown events', () => {
    for (const name of ['no_such_event', 'new_message', 'connected', 'JOIN_ROOM']) {
      test(`an event named "${name}" from a client → unknown_event, connection kept`, async () => {
        const a = await connect();
        assertError(await h.expectError(a, name, { room: 'r' }), 'unknown_event', name);
        await settle(a);
        ok(a.connected, 'the connection must stay up', a.inbox.summary());
      });
    }

    test('unknown event with an ack: the ack carries the error object', async () => {
      const a = await connect();
      const r = await h.ackRequest(a, 'frobnicate', {}, 'never');
      eq(r.name, 'error', 'answering event');
      assertError(r.ack, 'unknown_event', 'frobnicate');
    });
  });

  describe('disconnect', () => {
    test("disconnect cleanup: others get user_left_room only when the user's last connection is gone", async () => {
      const name = h.uniqueName('alice');
      const a1 = await connect(name);
      const a2 = await connect(name);
      const b = await connect();
      const witness = await connect();
      const room = h.uniqueRoom();
      const side = h.uniqueRoom(); // only a1 (not a2) and the witness are here
      await join(a1, room);
      await join(a2, room);
      await join(b, room);
      await join(witness, side);
      await join(a1, side);
      await h.nextEvent(witness, 'user_joined_room');
      await h.disconnectClient(a1);
      // the witness is told alice left `side`: from then on the server has handled a1's disconnect
      eq(await h.nextEvent(witness, 'user_left_room'), { room: side, user: userOf(a1) }, 'user_left_room in the side room');
      await assertNothing(b, 'user_left_room', null, 'alice still has a connection in the room');
      assertUsers(await roomUsers(b, room), [userOf(a2), userOf(b)], 'room_users after one of two connections left');
      await h.disconnectClient(a2);
      eq(await h.nextEvent(b, 'user_left_room'), { room, user: userOf(a2) }, 'user_left_room after the last connection');
      assertUsers(await roomUsers(b, room), [userOf(b)], 'room_users after both connections left');
    });

    test('a disconnect leaves every room the connection was in', async () => {
      const a = await connect();
      const b = await connect();
      const rooms = [h.uniqueRoom(), h.uniqueRoom(), h.uniqueRoom()];
      for (const r of rooms) { await join(a, r); await join(b, r); }
      await h.disconnectClient(a);
      const got = [];
      for (let i = 0; i < rooms.length; i++) got.push(await h.nextEvent(b, 'user_left_room'));
      eq(got.map((e) => e.room).sort(), [...rooms].sort(), 'rooms in the user_left_room events');
      for (const e of got) eq(e.user, userOf(a), 'user_left_room.user');
      for (const r of rooms) assertUsers(await roomUsers(b, r), [userOf(b)], `room_users of ${r}`);
    });

    test('an abrupt transport close (no Socket.IO DISCONNECT) cleans up the same way once the recovery window ends', async () => {
      const a = await connect(undefined, { agent: new TrackingAgent() });
      const b = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await join(b, room);
      await h.nextEvent(a, 'user_joined_room'); // the last event the server has for a
      await dropTransportAbruptly(a);
      eq(await h.nextEvent(b, 'user_left_room', T(3000)), { room, user: userOf(a) }, 'user_left_room after a dropped TCP connection');
    });

    test('a room emptied by disconnects can be joined afresh', async () => {
      const a = await connect();
      const room = h.uniqueRoom();
      await join(a, room);
      await h.disconnectClient(a);
      const b = await connect();
      await h.waitFor(async () => (await roomUsers(b, room)).count === 0, T(3000), 'the room to be empty');
      assertUsers(await join(b, room), [userOf(b)], 'joined_room of a fresh joiner');
    });

    test('a member who disconnected gets no more events and the others keep chatting', async () => {
      const a = await connect();
      const b = await connect();
      const c = await connect();
      const room = h.uniqueRoom();
      for (const s of [a, b, c]) await join(s, room);
      await h.disconnectClient(c);
      await h.nextEvent(a, 'user_left_room');
      const m = await send(a, room, 'still here');
      eq((await h.nextEvent(b, 'new_message')).id, m.id, 'new_message after a member left');
    });
  });

  describe('three clients in one room', () => {
    test('each gets every message of the other two, in send order, and none of its own', async () => {
      const cs = [await connect(), await connect(), await connect()];
      const room = h.uniqueRoom();
      for (const c of cs) await join(c, room);
      const sentBy = [[], [], []];
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 3; i++) {
          const text = `c${i} r${round} ${'\u{1F44B}'}`;
          const m = await send(cs[i], room, text);
          sentBy[i].push({ id: m.id, text });
        }
      }
      for (let i = 0; i < 3; i++) {
        await h.waitFor(() => cs[i].inbox.count('new_message') >= 6, T(3000), `client ${i} to get 6 new_message`);
        await settle(cs[i]);
        const got = cs[i].inbox.all('new_message');
        eq(got.length, 6, `number of new_message at client ${i}`);
        for (let j = 0; j < 3; j++) {
          const fromJ = got.filter((m) => m.user.id === userOf(cs[j]).id).map((m) => ({ id: m.id, text: m.text }));
          eq(fromJ, i === j ? [] : sentBy[j], `messages from client ${j} at client ${i}`);
        }
      }
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe('room_full (scripts copy with room.max_users = 2)', () => {
    let small;
    let dir;
    before(async () => {
      let edited = false;
      dir = h.copyScripts((rel, text) => {
        if (rel !== 'rules.lua') return text;
        edited = true;
        if (/max_users\s*=\s*\d+/.test(text)) return text.replace(/max_users\s*=\s*\d+/, 'max_users = 2');
        if (/\broom\s*=\s*\{/.test(text)) return text.replace(/\broom\s*=\s*\{/, 'room = { max_users = 2,');
        return text.replace(/return\s*\{/, 'return { room = { max_users = 2 },');
      });
      if (!edited) throw new Error(`no rules.lua in ${h.SCRIPTS_DIR}: cannot set room.max_users`);
      small = await h.startServer({ scripts: dir });
    });
    after(async () => {
      h.closeAllClients();
      if (small) await small.stopClean();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test('a third user → room_full; a second connection of a member still joins; after a leave the third can join', async () => {
      const c = (n) => connectTo(small, n || h.uniqueName());
      const alice = h.uniqueName('alice');
      const a = await c(alice);
      const b = await c();
      const x = await c();
      const room = h.uniqueRoom();
      await join(a, room);
      await join(b, room);
      await h.nextEvent(a, 'user_joined_room');
      assertError(await h.expectError(x, 'join_room', { room }), 'room_full', 'join_room');
      await assertNothing(a, 'user_joined_room', null, 'a refused join tells nobody');
      assertUsers(await roomUsers(a, room), [userOf(a), userOf(b)], 'room_users after the refused join');
      const a2 = await c(alice);
      assertUsers(await join(a2, room), [userOf(a), userOf(b)], "joined_room of a member's second connection");
      await leave(b, room);
      assertUsers(await join(x, room), [userOf(a), userOf(x)], 'joined_room after a place came free');
    });

    test('the rules file copy really sets max_users = 2', () => {
      const text = fs.readFileSync(path.join(dir, 'rules.lua'), 'utf8');
      ok(/max_users\s*=\s*2\b/.test(text), 'rules.lua copy must contain max_users = 2', text);
    });
  });
}
