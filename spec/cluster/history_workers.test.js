'use strict';
// History with --workers 2 (issue 14): both workers write one SQLite database under --data-dir.
// Clients connected until both workers hold some (the kernel spreads them, SO_REUSEPORT) send in one
// room; get_history on either worker lists every message once, in offset order, and no write failed
// (the workers wait for each other's write lock instead of losing a batch).

const { describe, test, before, after } = require('node:test');
const h = require('../e2e/harness');

const { T, eq, ok, waitFor } = h;
const { Redis, redisAvailable } = require('./harness');

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const workerOf = (sid) => B64.indexOf(sid[16]);

describe('history with --workers 2', { skip: !redisAvailable() && 'redis-server is not installed' }, () => {
  let redis;
  let srv;
  before(async () => {
    redis = new Redis();
    await redis.start();
    srv = await h.startServer({ args: ['--workers', '2', '--redis', redis.url] });
    await waitFor(() => (srv.stderr.match(/listening address=/g) || []).length >= 2, T(10000), 'both workers listening');
  });
  after(async () => {
    h.closeAllClients();
    if (srv) await srv.stopClean();
    if (redis) await redis.stop();
  });

  test('messages sent on both workers are in one history, once each, in offset order', async () => {
    const room = h.uniqueRoom('hw');
    const byWorker = { 0: [], 1: [] };
    for (let i = 0; i < 40 && (!byWorker[0].length || !byWorker[1].length); i++) {
      const s = await h.connectClient(srv, h.uniqueName('w'));
      byWorker[workerOf(s.connectedData.sid)].push(s);
    }
    ok(byWorker[0].length && byWorker[1].length, 'clients on both workers', [byWorker[0].length, byWorker[1].length]);
    const a = byWorker[0][0];
    const b = byWorker[1][0];
    await h.expectAnswer(a, 'join_room', { room }, 'joined_room');
    await h.expectAnswer(b, 'join_room', { room }, 'joined_room');
    const texts = [];
    for (let i = 0; i < 10; i++) {
      for (const [s, name] of [[a, 'a'], [b, 'b']]) {
        await h.expectAnswer(s, 'send_message', { room, text: `${name} ${i}` }, 'message_sent');
        texts.push(`${name} ${i}`);
      }
    }
    // Each worker sees its own messages at once and the other's once written (at most a batch later).
    for (const s of [a, b]) {
      let seen = [];
      const page = await waitFor(async () => {
        const r = await h.expectAnswer(s, 'get_history', { room, limit: 200 }, 'room_history');
        seen = r.messages.map((m) => m.text);
        return r.messages.length >= texts.length ? r : null;
      }, T(10000), `${s.label}: every message in the history`, 100)
        .catch((e) => { throw new Error(`${e.message}; seen ${JSON.stringify(seen)}\n${srv.stderr.slice(-2000)}`); });
      eq(page.messages.map((m) => m.text).sort(), [...texts].sort(), `${s.label}: each message once`);
      const offsets = page.messages.map((m) => m.offset);
      eq(offsets, [...offsets].sort(), `${s.label}: in offset order`);
      eq(new Set(offsets).size, offsets.length, `${s.label}: offsets distinct across workers`);
    }
    const r = await h.httpRaw(srv.port, `GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, T(5000));
    const m = /^space_history_write_errors_total (\S+)$/m.exec(r.body);
    ok(m && Number(m[1]) === 0, 'no history write failed (on the worker that answered /metrics)', m && m[0]);
  });
});
