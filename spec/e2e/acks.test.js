'use strict';
// A client's acknowledgement is always answered (issue 17 item 4): a handler that returns nothing
// answers it with no data (Socket.IO `43<id>[]`, /ws {"event":"ack","data":null,"id":ID}); a
// handler that takes ev and returns nothing keeps the event and answers it later, once; an ack the
// handler answered is never answered a second time. Scripts: spec/e2e/scripts_acks.

const path = require('node:path');
const { test, before, after, describe } = require('node:test');
const h = require('./harness');
const { eq, ok, T } = h;

const SCRIPTS = path.join(__dirname, 'scripts_acks');

let srv;
before(async () => { srv = await h.startServer({ scripts: SCRIPTS }); });
after(async () => {
  h.closeAllClients();
  if (srv) await srv.stopClean();
});

// A raw Socket.IO client on `/`: every text frame it receives is kept in order.
async function raw() {
  const c = await h.RawClient.open(srv);
  await c.connectNs();
  return c;
}

// Once the ack of a later `echo` request has come, every frame the server sent before it has too.
let seq = 900;
async function settle(c) {
  const id = ++seq;
  c.send(`42${id}["echo",{}]`);
  await c.nextText(`43${id}[`);
}

// The acks with this id the client got, as their JSON arrays.
const acks = (c, id) => c.inbox.all('text', (t) => t.startsWith(`43${id}[`)).map((t) => JSON.parse(t.slice(2 + String(id).length)));

describe('a handler that returns nothing', () => {
  test('socket.io-client: emitWithAck resolves with undefined, and nothing else is sent', async () => {
    const socket = await h.connectClient(srv);
    eq(await socket.timeout(T(2000)).emitWithAck('nothing', { a: 1 }), undefined, 'ack of nothing');
    eq(await socket.timeout(T(2000)).emitWithAck('no_answer', { a: 1 }), undefined, 'ack of a handler returning 42');
    eq(socket.inbox.count('error'), 0, 'error events');
  });

  test('raw Socket.IO: the ack is 43<id>[]', async () => {
    const c = await raw();
    c.send('4217["nothing",{}]');
    eq(await c.nextText('4317'), '4317[]', 'the ack');
    c.close();
  });

  test('/ws: a request with an id gets {"event":"ack","data":null,"id":ID}; one without gets nothing', async () => {
    const c = await h.RawClient.open(srv, { url: `ws://127.0.0.1:${srv.port}/ws` });
    c.send('{"event":"nothing","data":{}}');
    c.send('{"event":"nothing","data":{},"id":"r-1"}');
    c.send('{"event":"no_answer","data":{},"id":5}');
    const first = await c.nextText((t) => !t.includes('"connected"'));
    eq(JSON.parse(first), { event: 'ack', data: null, id: 'r-1' }, 'first answer frame');
    eq(JSON.parse(await c.nextText((t) => !t.includes('"connected"'))), { event: 'ack', data: null, id: 5 }, 'second answer frame');
    c.close();
  });
});

describe('a handler that takes ev', () => {
  test('returning nothing keeps the event: answered later by conn:reply, once, with its data', async () => {
    const c = await raw();
    c.send('4221["later",{"q":1}]');
    const question = await c.nextText((t) => /^42\d+\["question"/.test(t));
    const qid = /^42(\d+)/.exec(question)[1];
    eq(acks(c, 21), [], 'acks before the answer');
    c.send(`43${qid}[{"a":2}]`);
    eq(await c.nextEvent('answered'), { a: 2 }, 'the later event');
    await settle(c);
    eq(acks(c, 21), [[{ a: 2 }]], 'acks of the kept event');
    c.close();
  });

  test('socket.io-client: emitWithAck of a kept event resolves with the later answer', async () => {
    const socket = await h.connectClient(srv);
    socket.on('question', (data, cb) => cb({ echo: data }));
    eq(await socket.timeout(T(2000)).emitWithAck('later', { q: 3 }), { echo: { q: 3 } }, 'ack');
  });

  test('answering now and again later from a callback: one ack, the first answer', async () => {
    const c = await raw();
    c.send('4231["now_and_later",{"q":1}]');
    eq(await c.nextEvent('now'), { q: 1 }, 'the answer now');
    const question = await c.nextText((t) => /^42\d+\["question"/.test(t));
    c.send(`43${/^42(\d+)/.exec(question)[1]}[{"a":2}]`);
    eq(await c.nextEvent('answered'), { a: 2 }, 'the later event');
    await settle(c);
    eq(acks(c, 31), [[{ q: 1 }]], 'acks');
    c.close();
  });

  test('returning nothing and dropping ev: the ack goes with no data once ev is collected', async () => {
    const c = await raw();
    c.send('4251["dropped",{}]');
    c.send('42["fail",{}]'); // a failed call ends with a full collection
    eq(await c.nextText('4351'), '4351[]', 'the ack of the dropped event');
    await settle(c);
    eq(acks(c, 51), [[]], 'acks');
    ok(/dropped it unanswered: its ack goes with no data event="dropped"/.test(srv.stderr), 'the warning', h.show(srv.stderr.slice(-500)));
    c.close();
  });

  test('conn:ack, then an error: the error event, and no second ack', async () => {
    const c = await raw();
    c.send('4241["ack_then_fail",{}]');
    const err = await c.nextEvent('error');
    eq(err.code, 'internal_error', 'error code');
    await settle(c);
    eq(acks(c, 41), [['early']], 'acks');
    ok(/failing after the ack/.test(srv.stderr), 'the failure is logged', h.show(srv.stderr.slice(-500)));
    c.close();
  });
});
