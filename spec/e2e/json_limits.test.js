'use strict';
// Issue 11, items 9 and 10: JSON over a limit (nesting deeper than 64 levels counting the
// message's outer array or object, a number beyond a double such as 1e400 or 1000 digits) is
// answered with `error` {code: "invalid_payload"} (and the ack when one was asked); the same
// connection then keeps working. Only what is not JSON at all is a protocol violation (1002).
// Every close the server starts carries a reason text in its close frame.
// Main server: default options, except --max-payload 65536 (for the 1009 case).

const { test, describe, before, after, beforeEach, afterEach } = require('node:test');
const WebSocket = require('ws');
const h = require('./harness');

const { T, RawClient, NetWs, eq, ok } = h;
const MAX_PAYLOAD = 65536;

let srv;
const opened = new Set();
const main = new h.ManagedServer({ args: ['--max-payload', String(MAX_PAYLOAD)] });
before(async () => { srv = await main.start(); });
beforeEach(async () => { srv = await main.ensure(); });
afterEach(async () => {
  for (const c of opened) c.close();
  opened.clear();
  h.closeAllClients();
  await main.check();
});
after(async () => { await main.finish(); });


const nestedArrays = (n, inner = '') => '['.repeat(n) + inner + ']'.repeat(n);
const THOUSAND_DIGITS = '9'.repeat(1000);

async function rawConnected(name = h.uniqueName('raw')) {
  const c = new RawClient(srv, { label: name });
  opened.add(c);
  await c.opened;
  await c.connectNs({ name });
  return c;
}

// A /ws client: frames parsed, the close recorded.
async function plainOpen(name = h.uniqueName('plain')) {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws?name=${encodeURIComponent(name)}`, { perMessageDeflate: false });
  const c = { ws, inbox: new h.Inbox(name), closeInfo: null, close: () => ws.terminate() };
  opened.add(c);
  c.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
    c.closeInfo = { code, reason: reason.toString() };
    c.inbox.push('$close', c.closeInfo);
    resolve(c.closeInfo);
  }));
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString());
    c.inbox.push(f.event, f);
  });
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  await c.inbox.take('connected');
  return c;
}

function assertInvalidPayload(data, event, cause, what) {
  eq(data.code, 'invalid_payload', `${what}: error code`);
  ok(cause.test(data.message), `${what}: the message names the cause (${cause})`, data.message);
  eq(data.event, event, `${what}: error.event`);
}

describe('Socket.IO: data over a JSON limit answers invalid_payload, the connection stays', () => {
  test('socket.io-client emits 100 nested arrays with an ack: error and ack are invalid_payload; the socket then chats on', async () => {
    const s = await h.connectClient(srv, h.uniqueName('deep'));
    let deep = {};
    for (let i = 0; i < 100; i++) deep = [deep];
    const ack = await s.timeout(h.DEFAULT_WAIT).emitWithAck('send_message', { room: 'r', text: deep })
      .catch((e) => { throw new Error(`no ack for the deep send_message: ${e.message}`); });
    assertInvalidPayload(ack, 'send_message', /deep|64/, 'the ack');
    const err = await h.nextEvent(s, 'error');
    eq(err, ack, 'the error event carries the same object as the ack');
    ok(s.connected, 'the socket is still connected', s.connected);
    const room = h.uniqueRoom();
    await h.expectAnswer(s, 'join_room', { room }, 'joined_room');
    const sent = await h.expectAnswer(s, 'send_message', { room, text: 'still here' }, 'message_sent');
    eq(sent.room, room, 'message_sent after the refused event');
  });

  test('64 levels (the args array included) pass; 65 are refused', async () => {
    const c = await rawConnected();
    c.send(`4211["get_room_users",{"room":"r","x":${nestedArrays(62)}}]`); // args 1 + data 1 + 62 = 64 levels
    eq(JSON.parse((await c.nextText('4311[')).slice(4)), [{ room: 'r', users: [], count: 0 }], '64 levels: answered by the handler');
    c.send(`4212["get_room_users",{"room":"r","x":${nestedArrays(63)}}]`); // 65 levels
    const refused = JSON.parse((await c.nextText('4312[')).slice(4))[0];
    assertInvalidPayload(refused, 'get_room_users', /deep|64/, '65 levels');
    ok(c.isOpen, 'still open', c.closeInfo);
  });

  for (const [label, number] of [['1e400', '1e400'], ['a 1000-digit number', THOUSAND_DIGITS], ['-1e309', '-1e309']]) {
    test(`a raw EVENT packet holding ${label}: error and ack invalid_payload ("out of range"); the connection then answers`, async () => {
      const c = await rawConnected();
      c.send(`421["get_room_users",{"room":"r","n":${number}}]`);
      const err = await c.nextEvent('error');
      assertInvalidPayload(err, 'get_room_users', /range/, 'error event');
      const ack = JSON.parse((await c.nextText('431[')).slice(3));
      eq(ack, [err], 'the ack carries the error object');
      c.send('42["get_room_users",{"room":"r"}]');
      eq(await c.nextEvent('room_users'), { room: 'r', users: [], count: 0 }, 'the next event is answered');
      ok(c.isOpen, 'the connection is still open', c.closeInfo);
    });
  }

  test('an ACK packet over a limit answers error invalid_payload; a number in range (1e308) passes', async () => {
    const c = await rawConnected();
    c.send(`43999[${nestedArrays(80)}]`);
    const err = await c.nextEvent('error');
    eq(err.code, 'invalid_payload', 'error code for a deep ACK');
    c.send('42["get_room_users",{"room":"r","n":1e308}]');
    await c.nextEvent('room_users');
  });

  test('CONNECT data over a limit: CONNECT_ERROR invalid_payload; the session stays and can connect', async () => {
    const c = new RawClient(srv, { label: 'deep-auth' });
    opened.add(c);
    await c.opened;
    await c.openPacket();
    c.send(`40{"name":"x","deep":${nestedArrays(100)}}`);
    const refusal = JSON.parse((await c.nextText('44')).slice(2));
    eq(refusal.data && refusal.data.code, 'invalid_payload', 'CONNECT_ERROR data.code');
    c.send('40{"name":"x"}');
    await c.nextText('40{');
  });

  test('not JSON at all still closes with 1002, with a reason: an unterminated 100-deep array', async () => {
    const c = await rawConnected();
    c.send(`42["get_room_users",${'['.repeat(100)}`);
    const info = await c.waitClose(T(3000));
    eq(info.code, 1002, 'close code');
    ok(info.reason.length > 0, 'the close frame has a reason', info);
  });
});

describe('/ws: over a JSON limit answers invalid_payload with the id, the connection stays', () => {
  const cases = [
    ['data nested 100 arrays deep', `{"event":"get_room_users","data":{"room":"r","x":${nestedArrays(100)}},"id":"deep-1"}`, /deep|64/],
    ['data nested 63 levels below data (65 in all)', `{"event":"get_room_users","data":{"room":"r","x":${nestedArrays(63)}},"id":"deep-2"}`, /deep|64/],
    ['1e400', '{"event":"get_room_users","data":{"room":"r","n":1e400},"id":"big-1"}', /range/],
    ['a 1000-digit number', `{"event":"get_room_users","data":{"room":"r","n":${THOUSAND_DIGITS}},"id":"big-2"}`, /range/],
  ];
  for (const [label, frame, cause] of cases) {
    test(`${label}: error invalid_payload naming the cause, the id echoed; the same connection answers next`, async () => {
      const c = await plainOpen();
      const id = JSON.parse(frame.replace(/"n":[0-9e]+/, '"n":0').replace(/"x":\[[\[\]]*\]/, '"x":0')).id;
      c.ws.send(frame);
      const f = (await c.inbox.take(['error', '$close'])).data;
      eq(f.id, id, 'id echoed');
      assertInvalidPayload(f.data, 'get_room_users', cause, label);
      c.ws.send('{"event":"get_room_users","data":{"room":"r"},"id":"next"}');
      const next = (await c.inbox.take(['room_users', 'error', '$close'])).data;
      eq([next.event, next.id], ['room_users', 'next'], 'the next request is answered');
      eq(c.closeInfo, null, 'the connection stays open');
    });
  }

  test('62 arrays inside data (64 levels in all) are accepted', async () => {
    const c = await plainOpen();
    c.ws.send(`{"event":"get_room_users","data":{"room":"r","x":${nestedArrays(62)}},"id":1}`);
    const f = (await c.inbox.take(['room_users', 'error', '$close'])).data;
    eq([f.event, f.id], ['room_users', 1], 'answer at 64 levels');
  });
});

describe('every close the server starts says why', () => {
  test('/ws: a binary frame → 1003 with a reason', async () => {
    const c = await plainOpen();
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    const info = await h.withTimeout(c.closed, T(3000), 'the close');
    eq(info.code, 1003, 'close code');
    ok(info.reason.length > 0, 'reason text', info);
  });

  test('/ws: invalid UTF-8 → 1007 with a reason', async () => {
    const c = await plainOpen();
    c.ws.send(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), { binary: false });
    const info = await h.withTimeout(c.closed, T(3000), 'the close');
    eq(info.code, 1007, 'close code');
    ok(info.reason.length > 0, 'reason text', info);
  });

  test(`/ws: a message over --max-payload (${MAX_PAYLOAD}) → 1009 with a reason`, async () => {
    const c = await plainOpen();
    c.ws.send(`{"event":"x","data":{"t":"${'a'.repeat(MAX_PAYLOAD)}"}}`);
    const info = await h.withTimeout(c.closed, T(3000), 'the close');
    eq(info.code, 1009, 'close code');
    ok(info.reason.length > 0, 'reason text', info);
  });

  test('Socket.IO: a malformed packet → 1002 with a reason', async () => {
    const c = await rawConnected();
    c.send('4x');
    const info = await c.waitClose(T(3000));
    eq(info.code, 1002, 'close code');
    ok(info.reason.length > 0, 'reason text', info);
  });

  test('Socket.IO: a fragmented text message that is over --max-payload → 1009 with a reason (wslay\'s own close)', async () => {
    const c = await rawConnected();
    c.sendTextBytes(Buffer.alloc(MAX_PAYLOAD / 2 + 1, 0x61), false);
    c.sendTextBytes(Buffer.alloc(MAX_PAYLOAD / 2 + 1, 0x61), true);
    const info = await c.waitClose(T(3000));
    eq(info.code, 1009, 'close code');
    ok(info.reason.length > 0, 'reason text', info);
  });

  for (const [label, path] of [['Socket.IO', '/socket.io/?EIO=4&transport=websocket'], ['/ws', '/ws?name=netws']]) {
    test(`${label}: an unmasked client frame → 1002 with a reason (wslay's own close)`, async () => {
      const v = await NetWs.open(srv, path);
      opened.add({ close: () => v.destroy() });
      v.write({ opcode: 1, payload: 'x', mask: false });
      eq(await v.waitClose(T(3000)), 1002, 'close code');
      ok(v.closeReason && v.closeReason.length > 0, 'reason text', v.closeReason);
    });
  }

  test('a client\'s own close is echoed as it came (code 1000, no reason added)', async () => {
    const v = await NetWs.open(srv, '/ws?name=netws');
    opened.add({ close: () => v.destroy() });
    v.write({ opcode: 8, payload: Buffer.from([0x03, 0xe8]) });
    eq(await v.waitClose(T(3000)), 1000, 'close code');
    eq(v.closeReason, '', 'no reason in the echo');
  });
});

describe('a message the scripts\' memory cannot hold (--lua-memory 8, a 12 MiB string)', () => {
  let small;
  before(async () => { small = await h.startServer({ args: ['--lua-memory', '8'] }); });
  after(async () => { if (small) await small.stopClean(); });

  test('/ws: answered invalid_payload (the decoder ran out of Lua memory in a protected call); the server and the connection live on', async () => {
    const keep = srv;
    srv = small;
    try {
      const c = await plainOpen();
      const other = await plainOpen();
      c.ws.send(`{"event":"get_room_users","data":{"room":"r","t":"${'a'.repeat(12 * 1024 * 1024)}"},"id":"huge"}`);
      const f = (await c.inbox.take(['error', 'room_users', '$close'], null, T(10000))).data;
      eq([f.event, f.id, f.data && f.data.code], ['error', 'huge', 'invalid_payload'], 'the answer to the huge message');
      await h.assertAlive(small);
      c.ws.send('{"event":"get_room_users","data":{"room":"r"},"id":2}');
      eq((await c.inbox.take(['room_users', 'error', '$close'])).data.id, 2, 'the same connection answers next');
      other.ws.send('{"event":"get_room_users","data":{"room":"r"},"id":3}');
      eq((await other.inbox.take(['room_users', 'error', '$close'])).data.id, 3, 'another connection answers');
    } finally {
      srv = keep;
    }
  });

  test('Socket.IO: the sender is closed, not the server; another connection answers', async () => {
    const keep = srv;
    srv = small;
    try {
      const c = await rawConnected();
      const other = await rawConnected();
      c.send(`42["get_room_users",{"room":"r","t":"${'a'.repeat(12 * 1024 * 1024)}"}]`);
      await c.waitClose(T(10000));
      await h.assertAlive(small);
      await other.ping();
    } finally {
      srv = keep;
    }
  });
});
