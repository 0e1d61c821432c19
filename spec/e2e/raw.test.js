'use strict';
// Engine.IO v4 / Socket.IO v5 on the wire (raw WebSocket frames via `ws`, handcrafted frames via `net`),
// protocol violations and their close codes, heartbeats, and the plain HTTP side.
// Main server: --ping-interval 300 --ping-timeout 200 --max-payload 2048.

const { test, describe, before, after, beforeEach, afterEach } = require('node:test');
const h = require('./harness');

const { T, RawClient, NetWs, eq, ok } = h;
const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 2048;

let srv;
const raws = new Set();
const main = new h.ManagedServer({
  args: ['--ping-interval', String(PING_INTERVAL), '--ping-timeout', String(PING_TIMEOUT), '--max-payload', String(MAX_PAYLOAD)],
});
before(async () => { srv = await main.start(); });
beforeEach(async () => { srv = await main.ensure(); });
afterEach(async () => { await main.check(); });
after(async () => {
  for (const r of raws) r.close();
  h.closeAllClients();
  await main.finish();
});


let nameSeq = 0;
async function rawOpen(opts = {}, server = srv) {
  const c = new RawClient(server, { label: opts.label || `raw${++nameSeq}`, ...opts });
  raws.add(c);
  await c.opened;
  return c;
}
async function rawConnected(name = h.uniqueName('raw'), opts = {}, server = srv) {
  const c = await rawOpen({ label: name, ...opts }, server);
  c.info = await c.connectNs({ name });
  return c;
}

// Closes with the expected code, and the healthy connection still answers afterwards.
async function expectClosedWith(victim, code, healthy, what) {
  const info = await victim.waitClose(T(3000)).catch((e) => {
    throw new Error(`${what}: expected close code ${code}, but the connection stayed open: ${e.message}`);
  });
  if (info.code !== code) await h.assertAlive(srv); // a crash explains a 1006 better than the code does
  eq(info.code, code, `${what}: close code`);
  if (healthy) {
    ok(healthy.isOpen, `${what}: the healthy connection must stay open`, healthy.closeInfo);
    await healthy.ping().catch((e) => { throw new Error(`${what}: the healthy connection stopped answering: ${e.message}`); });
  }
}

// ---------------------------------------------------------------------------------------------

describe('Engine.IO handshake', () => {
  test('open packet: 0{"sid":<20 chars>,"upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":2048}', async () => {
    const c = await rawOpen();
    const first = await c.nextText(() => true);
    ok(first.startsWith('0{'), 'the first frame must be the Engine.IO open packet "0{...}"', first);
    const o = JSON.parse(first.slice(1));
    eq(Object.keys(o).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades'], 'open packet keys');
    ok(/^[A-Za-z0-9_-]{20}$/.test(o.sid), 'sid must be 20 URL-safe base64 characters', o.sid);
    eq(o.upgrades, [], 'upgrades on a WebSocket handshake');
    eq(o.pingInterval, PING_INTERVAL, 'pingInterval (from --ping-interval)');
    eq(o.pingTimeout, PING_TIMEOUT, 'pingTimeout (from --ping-timeout)');
    eq(o.maxPayload, MAX_PAYLOAD, 'maxPayload (from --max-payload)');
    const c2 = await rawOpen();
    const o2 = await c2.openPacket();
    ok(o2.sid !== o.sid, 'two connections must get different sids', [o.sid, o2.sid]);
  });

  test('CONNECT 40{"name":"x"} → 40{"sid"} then 42["connected",{sid,user,server_time}]', async () => {
    const name = h.uniqueName('rawx');
    const c = await rawOpen();
    const open = await c.openPacket();
    const t0 = Date.now();
    c.send('40' + JSON.stringify({ name }));
    const reply = await c.nextText();
    ok(reply.startsWith('40{'), 'the answer to CONNECT must be 40{...}', reply);
    const r = JSON.parse(reply.slice(2));
    ok(/^[A-Za-z0-9_-]{20}$/.test(r.sid), 'CONNECT reply sid must be 20 URL-safe characters', reply);
    ok(r.sid !== open.sid, 'the Socket.IO sid must differ from the Engine.IO sid', [r.sid, open.sid]);
    const next = await c.nextText();
    ok(next.startsWith('42["connected",'), 'the frame after the CONNECT reply must be the "connected" event', next);
    const [, data] = JSON.parse(next.slice(2));
    eq(data.sid, r.sid, 'connected.sid vs the CONNECT reply sid');
    eq(data.user && data.user.name, name, 'connected.user.name');
    ok(typeof data.user.id === 'string' && data.user.id.length > 0, 'connected.user.id', data.user);
    ok(Number.isInteger(data.server_time) && Math.abs(data.server_time - t0) < 3000, 'server_time near now', data.server_time);
  });

  test('CONNECT without auth (40) connects a guest', async () => {
    const c = await rawOpen();
    const { connected } = await c.connectNs(undefined);
    ok(connected.user && typeof connected.user.id === 'string' && connected.user.id.length > 0, 'guest user', connected);
  });

  test('unknown namespace → 44/random,{"message":"Invalid namespace"} and the connection stays', async () => {
    const c = await rawOpen();
    await c.openPacket();
    c.send('40/random,{}');
    eq(await c.nextText(), '44/random,{"message":"Invalid namespace"}', 'answer to CONNECT /random before /');
    c.send('40' + JSON.stringify({ name: h.uniqueName() }));
    ok((await c.nextText()).startsWith('40{"sid"'), 'CONNECT / after the refused namespace', c.inbox.summary());
    await c.nextEvent('connected');
    c.send('40/random,');
    eq(await c.nextText(), '44/random,{"message":"Invalid namespace"}', 'answer to CONNECT /random after /');
    await c.ping();
    ok(c.isOpen, 'connection open after an unknown namespace', c.closeInfo);
  });
});

describe('heartbeat', () => {
  test('server pings "2" every pingInterval; a client answering "3" stays connected', async () => {
    const c = await rawConnected();
    await h.waitFor(() => c.pings.length >= 3, T(3000), '3 pings');
    const first = c.pings[0] - c.openedAt;
    ok(first >= PING_INTERVAL - 60 && first <= PING_INTERVAL + T(1000), `first ping about ${PING_INTERVAL} ms after open`, first);
    for (let i = 1; i < 3; i++) {
      const gap = c.pings[i] - c.pings[i - 1];
      ok(gap >= PING_INTERVAL - 60 && gap <= PING_INTERVAL + T(1000), `gap between pings ${i - 1} and ${i} about ${PING_INTERVAL} ms`, gap);
    }
    ok(c.isOpen, 'a ponging client stays open', c.closeInfo);
    await c.ping();
  });

  test('a client that stops answering pings is closed after pingInterval + pingTimeout; a ponging one is not', async () => {
    const healthy = await rawConnected();
    const mute = await rawConnected(h.uniqueName('mute'), { autoPong: false });
    const info = await mute.waitClose(T(PING_INTERVAL + PING_TIMEOUT + 2000));
    const life = info.at - mute.openedAt;
    ok(mute.pings.length >= 1, 'the mute client got at least one ping before being closed', mute.pings.length);
    ok(life >= PING_INTERVAL + PING_TIMEOUT - 100, `closed no earlier than pingInterval + pingTimeout (${PING_INTERVAL + PING_TIMEOUT} ms)`, life);
    ok(info.at - mute.pings[0] >= PING_TIMEOUT - 60, `closed about pingTimeout after the unanswered ping`, info.at - mute.pings[0]);
    ok(healthy.isOpen, 'the ponging client is still open', healthy.closeInfo);
    await healthy.ping();
  });

  test('other traffic does not count as liveness: sending events without pongs still gets closed', async () => {
    const busy = await rawConnected(h.uniqueName('busy'), { autoPong: false });
    let n = 0;
    const timer = setInterval(() => { if (busy.isOpen) busy.send(`42["get_room_users",{"room":"busy${n++}"}]`); }, 40);
    try {
      const info = await busy.waitClose(T(PING_INTERVAL + PING_TIMEOUT + 2000));
      ok(info.at - busy.openedAt >= PING_INTERVAL + PING_TIMEOUT - 100, 'closed after pingInterval + pingTimeout', info.at - busy.openedAt);
      ok(busy.inbox.count('text', (t) => t.startsWith('42["room_users"')) >= 1, 'the events were answered meanwhile', busy.inbox.summary());
    } finally {
      clearInterval(timer);
    }
  });

  test('a WebSocket-level ping frame is answered with a pong frame', async () => {
    const c = await rawConnected();
    const pong = new Promise((resolve) => c.ws.once('pong', (d) => resolve(d.toString())));
    c.ws.ping('hi');
    eq(await h.withTimeout(pong, T(2000), 'pong frame'), 'hi', 'pong payload');
  });
});

describe('acknowledgements', () => {
  test('4212["get_room_users",{"room":"r"}] → 4312[{room_users data}] and the room_users event too', async () => {
    const c = await rawConnected();
    c.send('4212["get_room_users",{"room":"r"}]');
    const ack = await c.nextText('4312');
    const ev = await c.nextEvent('room_users');
    const arr = JSON.parse(ack.slice(4));
    ok(Array.isArray(arr) && arr.length === 1, 'ack payload: an array with one argument', ack);
    eq(arr[0], ev, 'ack argument vs room_users data');
    eq(arr[0].room, 'r', 'room in the ack');
  });

  test('an ack for a refused request carries the error object: 4213["join_room",{"room":"bad room"}]', async () => {
    const c = await rawConnected();
    c.send('4213["join_room",{"room":"bad room"}]');
    const ack = JSON.parse((await c.nextText('4313')).slice(4));
    eq(ack[0] && ack[0].code, 'invalid_room', 'code in the ack');
    eq(ack[0].event, 'join_room', 'event in the ack');
    eq(await c.nextEvent('error'), ack[0], 'error event vs ack data');
  });

  test('large ack ids are echoed exactly', async () => {
    const c = await rawConnected();
    c.send('42987654321["get_room_users",{"room":"r"}]');
    ok((await c.nextText('43987654321[')).length > 12, 'ack with the same id', c.inbox.summary());
  });

  test('an ACK from the client for an unknown id is ignored (connection kept)', async () => {
    const c = await rawConnected();
    c.send('4399["whatever"]');
    c.send('43100[]');
    await c.ping();
    ok(c.isOpen, 'open after stray ACKs', c.closeInfo);
  });
});

describe('accepted oddities (not protocol errors)', () => {
  test('binary event with one attachment (451-[...] + binary frame) is accepted and answered', async () => {
    const c = await rawConnected();
    c.send('451-31["get_room_users",{"_placeholder":true,"num":0}]');
    c.sendBinary(Buffer.from([1, 2, 3]));
    const ans = await c.nextText((t) => t.startsWith('4331[') || t.startsWith('42["error"') || t.startsWith('42["room_users"'));
    ok(ans, 'an answer to the binary event', ans);
    await c.ping();
    ok(c.isOpen, 'open after a binary event', c.closeInfo);
  });

  test('an attachment sent as a text frame "b<base64>" is accepted', async () => {
    const c = await rawConnected();
    c.send('451-32["get_room_users",{"_placeholder":true,"num":0}]');
    c.send('bAQID');
    await c.nextText((t) => t.startsWith('4332[') || t.startsWith('42["error"') || t.startsWith('42["room_users"'));
    await c.ping();
    ok(c.isOpen, 'open after a b64 attachment', c.closeInfo);
  });

  test('an EVENT without payload ("42") is ignored', async () => {
    const c = await rawConnected();
    c.send('42');
    await c.ping();
    ok(c.isOpen, 'open after "42"', c.closeInfo);
  });

  test('an EVENT with a numeric name (42[1,{}]) → unknown_event, connection kept', async () => {
    const c = await rawConnected();
    c.send('42[1,{}]');
    const err = await c.nextEvent('error');
    eq(err.code, 'unknown_event', 'error code for a numeric event name');
    await c.ping();
  });

  for (const pkt of ['5', '6']) {
    test(`Engine.IO packet "${pkt}" outside an upgrade is ignored`, async () => {
      const c = await rawConnected();
      c.send(pkt);
      await c.ping();
      ok(c.isOpen, `open after "${pkt}"`, c.closeInfo);
    });
  }

  test('a text message split in fragments (a UTF-8 character cut in two, a ping frame in between) is reassembled', async () => {
    const c = await rawConnected();
    const msg = Buffer.from('4241["get_room_users",{"room":"frag","note":"caf\u00e9 \u{1F600}"}]', 'utf8');
    const cut = msg.indexOf(0xc3) + 1; // inside the 2-byte é
    const cut2 = msg.indexOf(0xf0) + 2; // inside the 4-byte emoji
    c.sendTextBytes(msg.subarray(0, cut), false);
    c.ws.ping();
    c.sendTextBytes(msg.subarray(cut, cut2), false);
    c.sendTextBytes(msg.subarray(cut2), true);
    const ack = JSON.parse((await c.nextText('4341[')).slice(4));
    eq(ack[0] && ack[0].room, 'frag', 'room in the ack of the fragmented message');
  });

  test('a message just under maxPayload is accepted', async () => {
    const c = await rawConnected();
    const room = h.uniqueRoom('big');
    c.send(`4250["join_room",{"room":"${room}"}]`);
    await c.nextText('4350[');
    const prefix = `4251["send_message",{"room":"${room}","text":"`;
    const text = 'y'.repeat(MAX_PAYLOAD - 100 - prefix.length);
    const frame = prefix + text + '"}]';
    ok(frame.length < MAX_PAYLOAD, 'test frame under maxPayload', frame.length);
    c.send(frame);
    const ack = JSON.parse((await c.nextText('4351[')).slice(4));
    ok(ack[0] && typeof ack[0].id === 'string', 'message_sent for a message under maxPayload', ack);
  });

  test('DISCONNECT (41) leaves the namespace and its rooms; the Engine.IO connection stays and may CONNECT again', async () => {
    const name = h.uniqueName('leaver');
    const c = await rawConnected(name);
    const w = await rawConnected();
    const room = h.uniqueRoom();
    c.send(`4260["join_room",{"room":"${room}"}]`);
    await c.nextText('4360[');
    w.send(`4261["join_room",{"room":"${room}"}]`);
    await w.nextText('4361[');
    c.send('41');
    const left = await w.nextEvent('user_left_room');
    eq(left, { room, user: c.info.connected.user }, 'user_left_room after 41');
    c.send('40' + JSON.stringify({ name }));
    ok((await c.nextText((t) => t.startsWith('40') || t.startsWith('44'))).startsWith('40{"sid"'), 'CONNECT after 41', c.inbox.summary());
    await c.nextEvent('connected');
    await c.ping();
  });
});

describe('protocol violations close only that connection with 1002', () => {
  // [label, 'connected' | 'open', frames]: a frame is a string (text) or {binary: Buffer}
  const B = (bytes) => ({ binary: Buffer.from(bytes) });
  const cases = [
    ['Socket.IO type not a digit 0-6: 4abc', 'connected', ['4abc']],
    ['Socket.IO type 8: 48[]', 'connected', ['48[]']],
    ['empty Engine.IO message: 4', 'connected', ['4']],
    ['EVENT with an object: 42{}', 'connected', ['42{}']],
    ['EVENT with an empty array: 42[]', 'connected', ['42[]']],
    ['EVENT with a string payload: 42"x"', 'connected', ['42"x"']],
    ['EVENT with a string payload: 42"disconnect"', 'connected', ['42"disconnect"']],
    ['EVENT with a string payload and an ack id: 421"x"', 'connected', ['421"x"']],
    ['EVENT with null: 42null', 'connected', ['42null']],
    ['reserved event name: 42["disconnect"]', 'connected', ['42["disconnect"]']],
    ['reserved event name: 42["connect",{}]', 'connected', ['42["connect",{}]']],
    ['EVENT followed by non-JSON: 42abc["x"]', 'connected', ['42abc["get_room_users"]']],
    ['EVENT with truncated JSON', 'connected', ['42["get_room_users",{"room":"r"}']],
    ['ACK with an object: 431{"a":1}', 'connected', ['431{"a":1}']],
    ['DISCONNECT with a payload: 41{"a":1}', 'connected', ['41{"a":1}']],
    ['CONNECT with an array: 40[]', 'open', ['40[]']],
    ['CONNECT with a string: 40"x"', 'open', ['40"x"']],
    ['more than 10 attachments: 4511-[...]', 'connected', ['4511-["get_room_users",{"_placeholder":true,"num":0}]']],
    ['attachment count not a number: 45a-[...]', 'connected', ['45a-["get_room_users",{}]']],
    ['attachment count without "-": 451[...]', 'connected', ['451["get_room_users",{}]']],
    ['binary frame when no attachment is expected', 'connected', [B([1, 2, 3])]],
    ['text packet while an attachment is expected', 'connected',
      ['451-["get_room_users",{"_placeholder":true,"num":0}]', '42["get_room_users",{"room":"r"}]']],
    ['placeholder num out of range', 'connected', ['451-["get_room_users",{"_placeholder":true,"num":3}]', B([9])]],
    ['EVENT for a namespace not joined: 42/admin,[...]', 'connected', ['42/admin,["get_room_users",{"room":"r"}]']],
    ['EVENT before any CONNECT', 'open', ['42["get_room_users",{"room":"r"}]']],
    ['EVENT after DISCONNECT (41)', 'connected', ['41', '42["get_room_users",{"room":"r"}]']],
    ['a second CONNECT for a joined namespace', 'connected', ['40{"name":"again"}']],
    ['CONNECT_ERROR from the client: 44{"message":"x"}', 'connected', ['44{"message":"x"}']],
    ['a client ping "2"', 'connected', ['2']],
    ['unknown Engine.IO packet type "9"', 'connected', ['9']],
    ['Engine.IO packet not starting with a digit: "x"', 'connected', ['x']],
    ['empty text frame', 'connected', ['']],
  ];
  for (const [label, setup, frames] of cases) {
    test(`${label} → close 1002; another connection of the same user keeps working`, async () => {
      const name = h.uniqueName('victim');
      const healthy = await rawConnected(name);
      const victim = setup === 'connected' ? await rawConnected(name) : await rawOpen();
      if (setup === 'open') await victim.openPacket();
      for (const f of frames) {
        if (typeof f === 'string') victim.send(f);
        else victim.sendBinary(f.binary);
      }
      await expectClosedWith(victim, 1002, healthy, label);
    });
  }
});

describe('invalid UTF-8 → 1007, oversized → 1009', () => {
  const bad = [
    ['a 0xFF byte', [0x34, 0x32, 0x5b, 0x22, 0xff, 0x22, 0x5d]],
    ['an overlong encoding (C0 80)', [0x34, 0x32, 0x5b, 0x22, 0xc0, 0x80, 0x22, 0x5d]],
    ['a UTF-16 surrogate (ED A0 80)', [0x34, 0x32, 0x5b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x5d]],
    ['a code point above U+10FFFF (F4 90 80 80)', [0x34, 0x32, 0x5b, 0x22, 0xf4, 0x90, 0x80, 0x80, 0x22, 0x5d]],
    ['a sequence truncated at the end of the message', [0x34, 0x32, 0x5b, 0x22, 0x22, 0x5d, 0xe2, 0x82]],
  ];
  for (const [label, bytes] of bad) {
    test(`text frame with ${label} → close 1007; another connection keeps working`, async () => {
      const healthy = await rawConnected();
      const victim = await rawConnected();
      victim.sendTextBytes(Buffer.from(bytes));
      await expectClosedWith(victim, 1007, healthy, label);
    });
  }

  test('invalid UTF-8 across fragments of one text message → close 1007', async () => {
    const healthy = await rawConnected();
    const victim = await rawConnected();
    victim.sendTextBytes(Buffer.from([0x34, 0x32, 0x5b, 0x22, 0xe2]), false);
    victim.sendTextBytes(Buffer.from([0x28, 0xa1, 0x22, 0x5d]), true);
    await expectClosedWith(victim, 1007, healthy, 'fragmented invalid UTF-8');
  });

  test(`a text frame over maxPayload (${MAX_PAYLOAD}) → close 1009; another connection keeps working`, async () => {
    const healthy = await rawConnected();
    const victim = await rawConnected();
    victim.send(`42["send_message",{"room":"r","text":"${'x'.repeat(MAX_PAYLOAD + 1000)}"}]`);
    await expectClosedWith(victim, 1009, healthy, 'oversized text frame');
  });

  test('a fragmented text message whose total is over maxPayload → close 1009', async () => {
    const healthy = await rawConnected();
    const victim = await rawConnected();
    const part = Buffer.from('x'.repeat(1000));
    victim.sendTextBytes(Buffer.concat([Buffer.from('42["send_message",{"room":"r","text":"'), part]), false);
    victim.sendTextBytes(part, false);
    victim.sendTextBytes(part, false);
    victim.sendTextBytes(Buffer.from('"}]'), true);
    await expectClosedWith(victim, 1009, healthy, 'oversized fragmented message');
  });

  test('a binary attachment over maxPayload → close 1009', async () => {
    const healthy = await rawConnected();
    const victim = await rawConnected();
    victim.send('451-["get_room_users",{"_placeholder":true,"num":0}]');
    victim.sendBinary(Buffer.alloc(MAX_PAYLOAD + 1000, 7));
    await expectClosedWith(victim, 1009, healthy, 'oversized binary frame');
  });
});

describe('malformed WebSocket frames → 1002', () => {
  const frames = [
    ['an unmasked client frame', [{ opcode: 1, payload: '42["get_room_users",{"room":"r"}]', mask: false }]],
    ['RSV1 set without a negotiated extension', [{ opcode: 1, rsv: 4, payload: '42["get_room_users",{"room":"r"}]' }]],
    ['reserved opcode 0x3', [{ opcode: 3, payload: 'x' }]],
    ['reserved control opcode 0xB', [{ opcode: 0xb, payload: '' }]],
    ['a fragmented ping (FIN=0 on a control frame)', [{ opcode: 9, fin: false, payload: 'p' }]],
    ['a ping with a 126-byte payload', [{ opcode: 9, payload: Buffer.alloc(126, 1) }]],
    ['a continuation frame without a started message', [{ opcode: 0, payload: '42[]' }]],
    ['a new text frame while a fragmented message is open',
      [{ opcode: 1, fin: false, payload: '42["get_' }, { opcode: 1, payload: 'room_users",{"room":"r"}]' }]],
    ['a close frame with a 1-byte payload', [{ opcode: 8, payload: Buffer.from([3]) }]],
  ];
  for (const [label, list] of frames) {
    test(`${label} → close 1002; another connection keeps working`, async () => {
      const healthy = await rawConnected();
      const v = await NetWs.open(srv);
      await v.inbox.take('text', (t) => t.startsWith('0{'));
      v.sendText('40{"name":"netws"}');
      await v.inbox.take('text', (t) => t.startsWith('42["connected"'));
      for (const f of list) v.write(f);
      const code = await v.waitClose(T(3000));
      v.destroy();
      eq(code, 1002, `${label}: close code in the server's close frame (undefined = no close frame)`);
      await healthy.ping();
    });
  }

  test('a well-formed handcrafted frame is accepted (control for the cases above)', async () => {
    const v = await NetWs.open(srv);
    await v.inbox.take('text', (t) => t.startsWith('0{'));
    v.sendText('40{"name":"netws"}');
    await v.inbox.take('text', (t) => t.startsWith('42["connected"'));
    v.write({ opcode: 1, payload: '4270["get_room_users",{"room":"r"}]' });
    await v.inbox.take('text', (t) => t.startsWith('4370['));
    v.write({ opcode: 8, payload: Buffer.from([0x03, 0xe8]) }); // close 1000
    eq(await v.waitClose(T(3000)), 1000, 'close code echoed for a client close 1000');
    v.destroy();
  });
});

// ---------------------------------------------------------------------------------------------

describe('HTTP', () => {
  const req = (lines) => lines.join('\r\n') + '\r\n\r\n';
  const get = (path_, extra = []) => req([`GET ${path_} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...extra]);
  const upgradeWith = (path_, headers) => req([`GET ${path_} HTTP/1.1`, ...headers]);
  const upgrade = (path_, extra = [], host = '127.0.0.1') => upgradeWith(path_, [`Host: ${host}`, 'Upgrade: websocket',
    'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', ...extra]);

  test('GET /healthz → 200', async () => {
    const r = await h.httpRaw(srv.port, get('/healthz'));
    eq(r.status, 200, 'status of GET /healthz');
  });

  test('GET of an unknown path → 404', async () => {
    eq((await h.httpRaw(srv.port, get('/no/such/path'))).status, 404, 'status of GET /no/such/path');
    eq((await h.httpRaw(srv.port, get('/socket.iox/?EIO=4&transport=websocket'))).status, 404, 'status of GET /socket.iox/');
  });

  test('9 KiB of headers → 431 (one big header, and many small ones)', async () => {
    const r1 = await h.httpRaw(srv.port, get('/healthz', [`X-Big: ${'a'.repeat(9 * 1024)}`]));
    eq(r1.status, 431, 'status for one 9 KiB header');
    const many = Array.from({ length: 92 }, (_, i) => `X-H${i}: ${'b'.repeat(95)}`);
    const r2 = await h.httpRaw(srv.port, get('/healthz', many));
    eq(r2.status, 431, 'status for 92 headers of ~100 bytes');
  });

  for (const [label, data] of [
    ['garbage', 'THIS IS NOT HTTP\r\n\r\n'],
    ['no HTTP version', 'GET /healthz\r\nHost: x\r\n\r\n'],
    ['a control byte in the target', 'GET /heal\x01thz HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n'],
  ]) {
    test(`malformed request (${label}) → 400`, async () => {
      eq((await h.httpRaw(srv.port, data)).status, 400, `status for ${label}`);
    });
  }

  test('bad Sec-WebSocket-Version → 426 or 400, no upgrade', async () => {
    const data = upgradeWith('/socket.io/?EIO=4&transport=websocket', ['Host: 127.0.0.1', 'Upgrade: websocket',
      'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 99']);
    const r = await h.httpRaw(srv.port, data);
    ok(r.status === 426 || r.status === 400, 'status must be 426 or 400', r.status);
  });

  test('missing Sec-WebSocket-Key → 400, no upgrade', async () => {
    const data = upgradeWith('/socket.io/?EIO=4&transport=websocket', ['Host: 127.0.0.1', 'Upgrade: websocket',
      'Connection: Upgrade', 'Sec-WebSocket-Version: 13']);
    eq((await h.httpRaw(srv.port, data)).status, 400, 'status without Sec-WebSocket-Key');
  });

  for (const [label, query] of [['missing EIO', 'transport=polling'], ['EIO=3', 'EIO=3&transport=polling']]) {
    test(`${label} (plain GET) → 400 {"code":5,"message":"Unsupported protocol version"}`, async () => {
      const r = await h.httpRaw(srv.port, get(`/socket.io/?${query}`));
      eq(r.status, 400, 'status');
      eq(r.body, '{"code":5,"message":"Unsupported protocol version"}', 'body');
      ok(/application\/json/.test(r.headers['content-type'] || ''), 'Content-Type application/json', r.headers['content-type']);
    });
  }

  for (const [label, query] of [['missing EIO', 'transport=websocket'], ['EIO=3', 'EIO=3&transport=websocket']]) {
    test(`${label} (WebSocket upgrade) → 400 "Unsupported protocol version", no upgrade`, async () => {
      const r = await h.httpRaw(srv.port, upgrade(`/socket.io/?${query}`));
      eq(r.status, 400, 'status');
      ok(r.body.includes('Unsupported protocol version'), 'body names the error', r.body);
      if (r.body.trim().startsWith('{')) eq(JSON.parse(r.body), { code: 5, message: 'Unsupported protocol version' }, 'JSON body');
    });
  }

  test('transport=foo → 400 {"code":0,"message":"Transport unknown"} (plain GET and upgrade)', async () => {
    const r = await h.httpRaw(srv.port, get('/socket.io/?EIO=4&transport=foo'));
    eq(r.status, 400, 'status');
    eq(r.body, '{"code":0,"message":"Transport unknown"}', 'body');
    const u = await h.httpRaw(srv.port, upgrade('/socket.io/?EIO=4&transport=foo'));
    eq(u.status, 400, 'status for an upgrade with transport=foo');
    ok(u.body.includes('Transport unknown'), 'upgrade body names the error', u.body);
    const e3 = await h.httpRaw(srv.port, get('/socket.io/?EIO=3&transport=foo'));
    eq(JSON.parse(e3.body).code, 0, 'the transport is checked before EIO (code 0 for EIO=3&transport=foo)');
  });

  test('a foreign browser Origin is refused with 403; the own origin and no Origin pass', async () => {
    const foreign = await h.httpRaw(srv.port, upgrade('/socket.io/?EIO=4&transport=websocket', ['Origin: http://evil.example']));
    eq(foreign.status, 403, 'status for a foreign Origin');
    const own = await h.httpRaw(srv.port, upgrade('/socket.io/?EIO=4&transport=websocket',
      [`Origin: http://127.0.0.1:${srv.port}`], `127.0.0.1:${srv.port}`));
    eq(own.status, 101, 'status for the server\'s own origin');
    const none = await h.httpRaw(srv.port, upgrade('/socket.io/?EIO=4&transport=websocket'));
    eq(none.status, 101, 'status without Origin');
  });
});

describe('HTTP timeout (server with --http-timeout 500)', () => {
  let slow;
  before(async () => { slow = await h.startServer({ args: ['--http-timeout', '500'] }); });
  after(async () => { if (slow) await slow.stopClean(); });

  for (const [label, data] of [['half a request', 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n'], ['nothing at all', '']]) {
    test(`a client that sends ${label} and stops is dropped after about 500 ms; others are served meanwhile`, async () => {
      const net = require('node:net');
      const t0 = Date.now();
      const sock = net.connect(slow.port, '127.0.0.1');
      sock.on('error', () => {});
      const closed = new Promise((resolve) => sock.on('close', () => resolve(Date.now())));
      sock.on('connect', () => { if (data) sock.write(data); });
      sock.on('data', () => {}); // a 408 answer is fine
      const r = await h.httpRaw(slow.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      eq(r.status, 200, 'a healthy request while the slow one hangs');
      const at = await h.withTimeout(closed, T(3000), 'the stalled connection to be dropped').catch((e) => { sock.destroy(); throw e; });
      const elapsed = at - t0;
      ok(elapsed >= 400 && elapsed <= 500 + T(1500), 'dropped about --http-timeout (500 ms) after connecting', elapsed);
    });
  }
});

describe('connect timeout (server with --connect-timeout 500)', () => {
  let ct;
  before(async () => { ct = await h.startServer({ args: ['--connect-timeout', '500'] }); });
  after(async () => {
    for (const r of raws) r.close();
    if (ct) await ct.stopClean();
  });

  test('an Engine.IO connection that joins no namespace is closed after --connect-timeout; a connected one stays', async () => {
    const good = await rawConnected(h.uniqueName(), {}, ct);
    const idle = await rawOpen({}, ct);
    await idle.openPacket();
    const info = await idle.waitClose(T(3000));
    const life = info.at - idle.openedAt;
    ok(life >= 400 && life <= 500 + T(1500), 'closed about 500 ms after opening', life);
    ok(good.isOpen, 'the connected client stays open', good.closeInfo);
    await good.ping();
  });
});

describe('process', () => {
  test('SIGTERM with open connections: exit status 0 within a second', async () => {
    const p = await h.startServer();
    const c1 = await rawConnected(h.uniqueName(), {}, p);
    const c2 = await rawConnected(h.uniqueName(), {}, p);
    c1.send('4280["join_room",{"room":"bye"}]');
    await c1.nextText('4380[');
    const half = new (require('node:net').Socket)();
    half.on('error', () => {});
    await new Promise((resolve) => half.connect(p.port, '127.0.0.1', resolve));
    half.write('GET /healthz HTTP/1.1\r\n');
    const r = await p.stop(T(1000));
    half.destroy();
    ok(!r.killed && r.code === 0, 'exit code 0 after SIGTERM within a second', { ...r, stderr: p.stderr.slice(-1500) });
    await c1.waitClose(T(2000));
    await c2.waitClose(T(2000));
  });

  test('port already in use → exit 1 with a line saying why', async () => {
    const p = await h.startServer();
    try {
      const r = await h.runServerToExit(['--scripts', h.SCRIPTS_DIR, '--host', '127.0.0.1', '--port', String(p.port)]);
      eq(r.code, 1, 'exit code when the port is taken');
      ok(r.stderr.trim().length > 0, 'stderr must say why', r.stderr);
    } finally {
      await p.stopClean();
    }
  });

  test('unknown flag → exit 2 with a line saying why', async () => {
    const r = await h.runServerToExit(['--scripts', h.SCRIPTS_DIR, '--host', '127.0.0.1', '--port', '0', '--no-such-flag']);
    eq(r.code, 2, 'exit code for a usage error');
    ok(r.stderr.trim().length > 0, 'stderr must say why', r.stderr);
  });
});
