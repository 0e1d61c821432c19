'use strict';
// --workers 2: two processes on one port (SO_REUSEPORT) with a real redis-server. Stock
// socket.io-clients over long-polling (and with the upgrade) work without a sticky balancer: a
// request for the other worker's session is handed to it. SIGHUP and a changed script reach both
// workers, a worker killed with -9 is restarted by the parent, SIGTERM stops all with exit 0.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../e2e/harness');

const { T, eq, ok, waitFor } = h;
const { Redis, redisAvailable } = require('./harness');

const haveRedis = redisAvailable();

// A redis-server of our own on a free loopback port, no persistence (the cluster tests' harness).
async function startRedis() {
  const redis = new Redis();
  await redis.start();
  return redis;
}

// pid of each worker index, from "worker running worker=N pid=P" (the last one: a restart logs again).
function workerPids(srv) {
  const pids = {};
  for (const m of srv.stderr.matchAll(/worker running worker=(\d+) pid=(\d+)/g)) pids[m[1]] = Number(m[2]);
  return pids;
}

function count(text, re) { return (text.match(re) || []).length; }

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch (_) { return false; }
}

// The worker index a sid names (its 17th character, base64url).
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const workerOf = (sid) => B64.indexOf(sid[16]);

// A client's round trips through its transport: join a room, send in it, list it.
async function chat(sock, room, text) {
  const joined = await h.expectAnswer(sock, 'join_room', { room }, 'joined_room');
  eq(joined.room, room, `${sock.label}: joined_room.room`);
  const sent = await h.expectAnswer(sock, 'send_message', { room, text }, 'message_sent');
  ok(sent && typeof sent === 'object', `${sock.label}: message_sent is an object`, sent);
  const users = await h.expectAnswer(sock, 'get_room_users', { room }, 'room_users');
  ok(users.users.some((u) => u.id === sock.connectedData.user.id), `${sock.label}: lists itself in ${room}`, users);
}

async function startWorkers(redis, extra = []) {
  const srv = await h.startServer({ args: ['--workers', '2', '--redis', redis.url, '--log-level', 'debug', ...extra] });
  await waitFor(() => count(srv.stderr, /listening address=/g) >= 2, T(10000), 'both workers listening');
  return srv;
}

describe('--workers 2', { skip: !haveRedis && 'redis-server is not installed' }, () => {
  let redis;
  let srv;
  before(async () => {
    redis = await startRedis();
    srv = await startWorkers(redis);
  });
  after(async () => {
    h.closeAllClients();
    if (srv) await srv.stop();
    if (redis) await redis.stop();
  });

  test('without --redis: refused with a message saying so (exit 2)', async () => {
    const r = await h.runServerToExit(['--workers', '2', '--port', '0']);
    eq(r.code, 2, 'exit code');
    ok(/--workers 2 needs --redis/.test(r.stderr), 'stderr says --workers needs --redis', r.stderr);
  });

  test('a polling client (transports [polling]) completes its handshake and chats', { timeout: T(30000) }, async () => {
    const sock = await h.connectClient(srv, 'Polly', { transports: ['polling'] });
    eq(sock.io.engine.transport.name, 'polling', 'transport');
    for (let i = 0; i < 5; i++) await chat(sock, h.uniqueRoom('poll'), `hello ${i}`);
    sock.disconnect();
  });

  test('clients with the default upgrade complete the handshake, upgrade and chat (upgrades handed over too)', { timeout: T(60000) }, async () => {
    // 20 of them: the WebSocket of some lands on the worker that does not own the session.
    const socks = await Promise.all(Array.from({ length: 20 }, (_, i) => h.connectClient(srv, `Up${i}`, { transports: null })));
    await Promise.all(socks.map((s) => waitFor(() => s.io.engine.transport.name === 'websocket', T(10000), `${s.label} upgraded`)));
    await Promise.all(socks.map((s, i) => chat(s, h.uniqueRoom(`up${i}`), 'upgraded')));
    ok(count(srv.stderr, /handed over conn=\d+ sid=\S+ worker=\d websocket=1/g) > 0, 'some WebSocket upgrades were handed over',
      srv.stderr.slice(-2000));
    for (const s of socks) s.disconnect();
  });

  test('20 polling clients, spread over both workers, all work; requests are handed to the owner', { timeout: T(60000) }, async () => {
    const socks = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      h.connectClient(srv, `P${i}`, { transports: ['polling'] })));
    const owners = new Set(socks.map((s) => workerOf(s.io.engine.id)));
    eq([...owners].sort(), [0, 1], 'sessions made by both workers');
    await Promise.all(socks.map(async (s, i) => {
      for (let k = 0; k < 3; k++) await chat(s, h.uniqueRoom(`many${i}`), `m${k}`);
    }));
    ok(count(srv.stderr, /handed over conn=/g) > 0, 'some requests reached the other worker and were handed over',
      srv.stderr.slice(-2000));
    for (const s of socks) s.disconnect();
  });

  test('SIGHUP reloads the scripts in both workers', { timeout: T(20000) }, async () => {
    const pids = workerPids(srv);
    const before = count(srv.stderr, /trigger=SIGHUP/g);
    srv.proc.kill('SIGHUP');
    await waitFor(() => count(srv.stderr, /trigger=SIGHUP/g) >= before + 2, T(10000), 'two reloads');
    for (const [i, pid] of Object.entries(pids)) {
      ok(new RegExp(`reload signal=SIGHUP worker=${i} pid=${pid}\\b`).test(srv.stderr), `worker ${i} (pid ${pid}) got SIGHUP`,
        srv.stderr.slice(-2000));
    }
  });

  test('kill -9 of a worker: the parent logs it and restarts it; clients keep working', { timeout: T(30000) }, async () => {
    const pids = workerPids(srv);
    // Sessions of worker 0, made before: they live on, and their requests that reach the new
    // worker 1 are handed over on the pipes it took over from the parent.
    const before = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      h.connectClient(srv, `K${i}`, { transports: ['polling'] })));
    const survivors = before.filter((s) => workerOf(s.io.engine.id) === 0);
    ok(survivors.length > 0, 'some sessions on worker 0', before.map((s) => s.io.engine.id));
    // A worker killed mid-request loses that request (and the connections in its accept queue), as
    // any process would: kill it when every GET is parked at its owner (no log line for a while).
    let last = -1;
    let since = Date.now();
    await waitFor(() => {
      if (srv.stderr.length !== last) { last = srv.stderr.length; since = Date.now(); }
      return Date.now() - since >= T(300);
    }, T(10000), 'the server quiet');
    process.kill(pids[1], 'SIGKILL');
    await waitFor(() => workerPids(srv)[1] !== pids[1], T(10000), 'worker 1 restarted');
    ok(new RegExp(`worker died worker=1 pid=${pids[1]} signal=9: restarting`).test(srv.stderr), 'the death is logged',
      srv.stderr.slice(-2000));
    await waitFor(() => count(srv.stderr, /listening address=/g) >= 3, T(10000), 'the new worker listening');
    ok(alive(pids[0]), 'worker 0 still runs', pids);
    const socks = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      h.connectClient(srv, `R${i}`, { transports: ['polling'] })));
    eq([...new Set(socks.map((s) => workerOf(s.io.engine.id)))].sort(), [0, 1], 'both workers make sessions again');
    await Promise.all(socks.map((s, i) => chat(s, h.uniqueRoom(`r${i}`), 'again')));
    await Promise.all(survivors.map(async (s, i) => {
      for (let k = 0; k < 3; k++) await chat(s, h.uniqueRoom(`k${i}`), `still ${k}`);
    })).catch((e) => { throw new Error(`${e.message}\n${srv.describe()}`); });
    for (const s of [...socks, ...before]) s.disconnect();
  });

  test('SIGTERM stops every worker, and the parent exits 0', { timeout: T(20000) }, async () => {
    const pids = Object.values(workerPids(srv));
    eq(pids.length, 2, 'two workers');
    const r = await srv.stop(T(10000));
    eq([r.code, r.killed], [0, false], 'parent exit');
    for (const pid of pids) ok(!alive(pid), `worker pid ${pid} stopped`, pids);
    ok(!/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(srv.stderr), 'no sanitizer report',
      srv.stderr.slice(-3000));
    srv = null;
  });
});

describe('--workers 2: a changed script', { skip: !haveRedis && 'redis-server is not installed' }, () => {
  test('is reloaded by both workers (each watches the files itself)', { timeout: T(30000) }, async () => {
    const redis = await startRedis();
    const scripts = h.copyScripts();
    const srv = await h.startServer({ scripts, args: ['--workers', '2', '--redis', redis.url] });
    try {
      await waitFor(() => count(srv.stderr, /listening address=/g) >= 2, T(10000), 'both workers listening');
      const file = fs.readdirSync(scripts).find((f) => f.endsWith('.lua'));
      fs.appendFileSync(path.join(scripts, file), '\n-- touched\n');
      await waitFor(() => count(srv.stderr, /trigger=file change/g) >= 2, T(10000), 'two reloads on the file change');
      const r = await srv.stop(T(10000));
      eq(r.code, 0, 'exit code');
      ok(!/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(srv.stderr), 'no sanitizer report',
        srv.stderr.slice(-3000));
    } finally {
      await srv.stop();
      await redis.stop();
      fs.rmSync(scripts, { recursive: true, force: true });
    }
  });
});

describe('--workers 2: the parent gives up', { skip: !haveRedis && 'redis-server is not installed' }, () => {
  test('when a first start fails (scripts do not load): exit 1 with the reason, no restart loop', { timeout: T(20000) }, async () => {
    const scripts = h.copyScripts((rel, text) => (rel === 'init.lua' ? 'this is not Lua\n' : text));
    try {
      const r = await h.runServerToExit(['--workers', '2', '--redis', 'redis://127.0.0.1:1', '--port', '0', '--scripts', scripts],
        T(10000));
      eq([r.code, r.timedOut], [1, false], 'exit code');
      ok(/scripts did not load/.test(r.stderr) && /giving up/.test(r.stderr), 'says why and that it gave up', r.stderr);
      ok(!/restarting/.test(r.stderr), 'no restart', r.stderr);
    } finally {
      fs.rmSync(scripts, { recursive: true, force: true });
    }
  });

  test('after 5 quick deaths in a row of one worker: the others are stopped, exit non-zero', { timeout: T(60000) }, async () => {
    const redis = await startRedis();
    const srv = await h.startServer({ args: ['--workers', '2', '--redis', redis.url] });
    try {
      await waitFor(() => count(srv.stderr, /listening address=/g) >= 2, T(10000), 'both workers listening');
      const first0 = workerPids(srv)[0];
      for (let k = 0; k < 5 && !srv.exit; k++) {
        const pid = workerPids(srv)[1];
        process.kill(pid, 'SIGKILL');
        await waitFor(() => srv.exit || workerPids(srv)[1] !== pid, T(10000), `worker 1 restarted or the parent gave up (${k})`);
      }
      const r = await h.withTimeout(srv.exited, T(10000), 'the parent exits');
      ok(r.code !== 0, 'non-zero exit', r);
      ok(/worker died worker=1 .*quick_deaths=5: giving up/.test(srv.stderr), 'gave up, logged', srv.stderr.slice(-2000));
      ok(!alive(first0), 'worker 0 was stopped too', first0);
    } finally {
      await srv.stop();
      await redis.stop();
    }
  });
});
