#!/usr/bin/env node
'use strict';
// The soak: a steady mix of everything a day of traffic brings, run against
// one server process for a given time, then the checks that catch what
// builds up slowly. See bench/README.md ("Soak") and `bench/soak --help`.
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { makeClient, signJwt } = require('./clients');
const { Ledger } = require('./ledger');
const probe = require('./probe');
const { ACTIONS } = require('./hostile');
const { section, writeSection } = require('./results');

const REPO = path.resolve(__dirname, '..', '..');

// {================================================================== options
const HELP = `bench/soak [options]
  --duration D       how long the mix runs: 90s, 10m, 1h (default 10m)
  --smoke            20 s, 40 clients, reloads every 5 s; checks nothing lost and no fd leaked
                     (RSS flatness needs duration), writes no results
  --clients N        concurrent clients (default 200)
  --rooms N          rooms they join 1 or 2 of (default 20)
  --msg-rate R       chat messages per second, all clients together (default 200)
  --upload-rate R    send_file per second (default 2)
  --refused-rate R   refused requests on live sessions per second (default 2)
  --hostile-rate R   refused connections (malformed HTTP, frames, packets) per second (default 1)
  --reload-every S   seconds between reloads, alternately POST /api/reload and a touched script (default 60)
  --life A-B         a client's life in seconds, uniform (default 10-60)
  --seed N           the seed of every random choice (default 11)
  --warmup F         the part of the run RSS is not judged on (default 0.2)
  --rss-tolerance P  RSS may grow by P % from the first window after warm-up to the last (default 5)
  --out FILE         the results file whose "Soak" section is written (default bench/RESULTS.md)
  --no-results       write no results file
  --scripts DIR      the app to run (default scripts/; copied, the copy is touched for reloads)
  --plugins DIR      its plugins (default plugins/)
  --jwt              authentication on (an HS256 key the soak makes): clients log in with tokens,
                     and bad tokens join the refused inputs
  --heap-stats       glibc's malloc_stats() at idle before and after, through gdb (default: on
                     when gdb is installed, off in --smoke); tells live memory from RSS
  --no-heap-stats
  --keep             keep the temporary directory (server log, files)
Environment: SERVER_BIN (the server binary; default build-bench/server/space-server).`;

function parseDuration(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(s));
  if (!m) throw new Error(`not a duration: ${s}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] || 's'];
}

function parseArgs(argv) {
  const o = {
    duration: 600, smoke: false, clients: 200, rooms: 20, msgRate: 200, uploadRate: 2, refusedRate: 2,
    hostileRate: 1, reloadEvery: 60, life: [10, 60], seed: 11, warmup: 0.2, rssTolerance: 5,
    out: path.join(REPO, 'bench', 'RESULTS.md'), results: true, keep: false,
    scripts: path.join(REPO, 'scripts'), plugins: path.join(REPO, 'plugins'), jwt: false,
  };
  const set = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    switch (a) {
      case '--duration': set.duration = parseDuration(val()); break;
      case '--smoke': o.smoke = true; break;
      case '--clients': set.clients = Number(val()); break;
      case '--rooms': set.rooms = Number(val()); break;
      case '--msg-rate': set.msgRate = Number(val()); break;
      case '--upload-rate': set.uploadRate = Number(val()); break;
      case '--refused-rate': set.refusedRate = Number(val()); break;
      case '--hostile-rate': set.hostileRate = Number(val()); break;
      case '--reload-every': set.reloadEvery = parseDuration(val()); break;
      case '--life': set.life = val().split('-').map(Number); break;
      case '--seed': set.seed = Number(val()); break;
      case '--warmup': set.warmup = Number(val()); break;
      case '--rss-tolerance': set.rssTolerance = Number(val()); break;
      case '--out': o.out = path.resolve(val()); break;
      case '--no-results': o.results = false; break;
      case '--keep': o.keep = true; break;
      case '--jwt': o.jwt = true; break;
      case '--heap-stats': set.heapStats = true; break;
      case '--no-heap-stats': set.heapStats = false; break;
      case '--scripts': o.scripts = path.resolve(val()); break;
      case '--plugins': o.plugins = path.resolve(val()); break;
      case '-h': case '--help': console.log(HELP); process.exit(0); break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  if (o.smoke) {
    Object.assign(o, { duration: 20, clients: 40, rooms: 6, msgRate: 60, uploadRate: 2, refusedRate: 3,
      hostileRate: 2, reloadEvery: 5, life: [2, 8], results: false });
  }
  Object.assign(o, set);
  for (const k of ['duration', 'clients', 'rooms', 'msgRate', 'reloadEvery', 'seed']) {
    if (!Number.isFinite(o[k]) || o[k] <= 0) throw new Error(`--${k}: a positive number, please`);
  }
  if (!(o.life.length === 2 && o.life[0] > 0 && o.life[1] >= o.life[0])) throw new Error('--life A-B: 0 < A <= B');
  o.judgeRss = !o.smoke;
  o.argv = argv;
  if (o.heapStats === undefined) {
    o.heapStats = !o.smoke && require('node:child_process').spawnSync('gdb', ['--version'], { stdio: 'ignore' }).status === 0;
  }
  return o;
}

// {================================================================== small things
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...a);

// mulberry32: a small seeded generator, one per client slot and one per loop,
// so that each makes the same choices in every run whatever the timing.
function rng32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const expo = (rng, mean) => -Math.log(1 - rng()) * mean;
function pick(rng, weights) {
  const total = Object.values(weights).reduce((a, b) => a + b, 0);
  let x = rng() * total;
  for (const [k, w] of Object.entries(weights)) { if ((x -= w) < 0) return k; }
  return Object.keys(weights)[0];
}
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

// {================================================================== the server
async function startServer(o, bin, tmp, adminToken) {
  fs.cpSync(o.scripts, path.join(tmp, 'scripts'), { recursive: true });
  fs.cpSync(o.plugins, path.join(tmp, 'plugins'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'admin.token'), adminToken, { mode: 0o600 });
  const logPath = path.join(tmp, 'server.log');
  const logFd = fs.openSync(logPath, 'w');
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SPACE_')) env[k] = v;
  // Heartbeat 10 s + 5 s: a client that vanishes is noticed in 15 s, and a
  // dropped connection is kept 5 s for recovery (these clients never recover
  // it), so the gauges come back to idle soon after the run.
  const argv = ['--scripts', path.join(tmp, 'scripts'), '--plugins', path.join(tmp, 'plugins'),
    '--data-dir', path.join(tmp, 'data'), '--files-dir', path.join(tmp, 'files'),
    '--admin-token-file', path.join(tmp, 'admin.token'),
    '--host', '127.0.0.1', '--port', '0', '--ping-interval', '10000', '--ping-timeout', '5000',
    '--recovery-window', '5000'];
  if (o.jwtSecret) {
    fs.writeFileSync(path.join(tmp, 'jwt.secret'), o.jwtSecret, { mode: 0o600 });
    argv.push('--jwt-secret-file', path.join(tmp, 'jwt.secret'));
  }
  const proc = spawn(bin, argv, { env, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  const srv = { proc, argv, logPath, port: null, exit: null };
  srv.exited = new Promise((r) => proc.on('exit', (code, signal) => { srv.exit = { code, signal }; r(srv.exit); }));
  for (let i = 0; i < 100 && !srv.exit; i++) {
    const m = /listening address=[^ :]+:(\d+)/.exec(fs.readFileSync(logPath, 'utf8'));
    if (m) { srv.port = Number(m[1]); return srv; }
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error(`the server did not start:\n${fs.readFileSync(logPath, 'utf8').slice(-2000)}`);
}

async function stopServer(srv) {
  if (srv.exit) return { ...srv.exit, ms: 0 };
  const t0 = now();
  srv.proc.kill('SIGTERM');
  const r = await Promise.race([srv.exited, sleep(5000).then(() => null)]);
  if (r) return { ...r, ms: Math.round(now() - t0) };
  srv.proc.kill('SIGKILL');
  return { ...(await srv.exited), ms: Math.round(now() - t0), killed: true };
}

// {================================================================== the run
class Soak {
  constructor(o, srv, tmp, adminToken) {
    this.o = o;
    this.srv = srv;
    this.port = srv.port;
    this.pid = srv.proc.pid;
    this.tmp = tmp;
    this.adminToken = adminToken;
    this.ledger = new Ledger();
    this.stopping = false;
    this.stopWaiters = new Set();
    this.count = {};          // action -> n
    this.failures = {};       // what -> n
    this.failureExamples = [];
    this.refused = {};        // name -> {n, answered}
    this.rss = [];            // {t (s since the run began), kib}
    this.fdMax = 0;
    this.connectionsMax = 0;
    this.uploads = { sent: 0, acked: 0, bytes: 0, downloads: 0, downloadMismatch: 0 };
    this.reloads = { api: 0, touch: 0, failed: 0 };
    this.concurrent = 0;
    this.concurrentMax = 0;
  }

  cred(name) { return this.o.jwtSecret ? { token: signJwt(this.o.jwtSecret, { sub: name, name }) } : { name }; }

  bump(k, n = 1) { this.count[k] = (this.count[k] || 0) + n; }
  fail(what, detail) {
    this.failures[what] = (this.failures[what] || 0) + 1;
    if (this.failureExamples.length < 25) this.failureExamples.push(`${what}: ${detail}`);
  }

  // Sleeps ms, or less when the run stops.
  pause(ms) {
    if (this.stopping) return Promise.resolve();
    return new Promise((r) => {
      const done = () => { clearTimeout(t); this.stopWaiters.delete(done); r(); };
      const t = setTimeout(done, ms);
      this.stopWaiters.add(done);
    });
  }
  stop() { this.stopping = true; for (const w of [...this.stopWaiters]) w(); }

  // {------------------------------------------------------------ clients
  async slot(i) {
    const rng = rng32(this.o.seed * 1000003 + i);
    await sleep((i / this.o.clients) * Math.min(10000, this.o.duration * 100)); // ramp up over 10 % of the run (≤ 10 s)
    for (let gen = 0; !this.stopping; gen++) await this.life(i, gen, rng);
  }

  async life(i, gen, rng) {
    const o = this.o;
    const kind = pick(rng, { 'sio-ws': 35, 'sio-polling': 15, 'sio-upgrade': 10, plain: 40 });
    const name = `soak${i}x${gen}`;
    const lifeMs = (o.life[0] + rng() * (o.life[1] - o.life[0])) * 1000;
    const roomsWanted = rng() < 0.4 ? 2 : 1;
    const rooms = [];
    while (rooms.length < Math.min(roomsWanted, o.rooms)) {
      const r = `soak-r${Math.floor(rng() * o.rooms)}`;
      if (!rooms.includes(r)) rooms.push(r);
    }
    const endMode = pick(rng, { leave: 40, barrier: 40, abrupt: 20 });
    const c = makeClient(kind, this.port, this.cred(name));
    c.name = name;
    c.memberships = new Map();
    c.rng = rng;
    c.inflight = new Set();
    c.seq = 0;
    this.bump(`connect ${kind}`);
    try {
      await c.connect();
    } catch (e) {
      this.fail('connect', `${kind} ${name}: ${e.message}`);
      c.close('abrupt');
      await this.pause(1000);
      return;
    }
    this.concurrent++;
    this.concurrentMax = Math.max(this.concurrentMax, this.concurrent);
    c.onPush((event, data) => {
      if (event !== 'new_message' && event !== 'new_file') return;
      const m = data && c.memberships.get(data.room);
      if (m) this.ledger.delivered(m, data.id);
      else { this.ledger.totals.stray++; this.ledger.note(`stray: ${event} ${data && data.id} to ${name}, not in ${data && data.room}`); }
    });

    for (const room of rooms) {
      const m = this.ledger.joinEmitted(c, room, now());
      c.memberships.set(room, m);
      this.bump('join');
      try {
        const r = await c.request('join_room', { room });
        if (!r.ok) throw new Error(JSON.stringify(r.data));
        this.ledger.joined(m, now());
      } catch (e) {
        this.fail('join_room', `${name}: ${e.message}`);
        this.ledger.abandoned(m);
      }
    }

    // Each client's share of the rates; one tick per action.
    const perClient = (o.msgRate + o.uploadRate + o.refusedRate) / o.clients;
    const weights = { chat: o.msgRate, upload: o.uploadRate, refuse: o.refusedRate };
    const until = now() + lifeMs;
    while (!this.stopping && now() < until && !c.unexpectedClose) {
      await this.pause(Math.min(expo(rng, 1000 / perClient), until - now()));
      if (this.stopping || now() >= until || c.unexpectedClose) break;
      const action = pick(rng, weights);
      if (c.inflight.size >= 4) { this.bump('skipped (4 unanswered)'); continue; }
      const p = this[action](c).catch((e) => this.fail(action, `${name}: ${e.message}`));
      c.inflight.add(p);
      p.finally(() => c.inflight.delete(p));
    }
    await Promise.allSettled([...c.inflight]);

    if (c.unexpectedClose) {
      this.fail('closed by the server', `${kind} ${name}: ${c.unexpectedClose}`);
      for (const m of c.memberships.values()) this.ledger.abandoned(m);
      c.close('abrupt');
      this.concurrent--;
      return;
    }
    // The end of each membership: leave_room, or get_room_users as a barrier.
    for (const [room, m] of c.memberships) {
      if (m.joinedAt === Infinity) continue;
      const leave = endMode === 'leave';
      this.ledger.endEmitted(m, now());
      this.bump(leave ? 'leave' : 'barrier');
      try {
        const r = await c.request(leave ? 'leave_room' : 'get_room_users', { room });
        if (!r.ok) throw new Error(JSON.stringify(r.data));
        this.ledger.ended(m, now(), leave);
      } catch (e) {
        this.fail(leave ? 'leave_room' : 'get_room_users', `${name}: ${e.message}`);
        this.ledger.abandoned(m);
      }
    }
    this.bump(`disconnect ${c.close(endMode === 'abrupt' ? 'abrupt' : 'clean')}`);
    for (const m of c.memberships.values()) this.ledger.finished(m);
    this.concurrent--;
  }

  room(c) {
    const rooms = [...c.memberships.values()].filter((m) => m.joinedAt !== Infinity && m.endEmitAt === Infinity);
    return rooms.length ? rooms[Math.floor(c.rng() * rooms.length)].room : null;
  }

  async chat(c) {
    const room = this.room(c);
    if (!room) return;
    const seq = ++c.seq;
    const text = `${c.name} #${seq} ` + 'lorem ipsum '.repeat(1 + Math.floor(c.rng() * 20));
    const msg = this.ledger.sendEmitted(c, room, now());
    this.bump('send_message');
    let r;
    try {
      r = await c.request('send_message', { room, text, client_msg_id: `${c.name}:${seq}` });
    } catch (e) { this.ledger.sendFailed(msg); throw e; }
    if (!r.ok || r.data.client_msg_id !== `${c.name}:${seq}`) {
      this.ledger.sendFailed(msg);
      throw new Error(`send_message answered ${JSON.stringify(r.data)}`);
    }
    this.ledger.acked(msg, r.data.id, now());
  }

  async upload(c) {
    const room = this.room(c);
    if (!room) return;
    const seq = ++c.seq;
    const size = 200 + Math.floor(c.rng() * 8000);
    const png = c.rng() < 0.5;
    let bytes;
    if (png) {
      bytes = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), crypto.randomBytes(size)]);
    } else {
      bytes = Buffer.from(crypto.randomBytes(size).toString('base64').replace(/[+/=]/g, ' '), 'ascii');
    }
    // Socket.IO sends half of its uploads as binary attachments; /ws has only base64.
    const binary = c.kind !== 'plain' && c.rng() < 0.5;
    const data = binary ? bytes : bytes.toString('base64');
    const name = `soak-${c.name}-${seq}.${png ? 'png' : 'txt'}`;
    const type = png ? 'image/png' : 'text/plain';
    const msg = this.ledger.sendEmitted(c, room, now());
    this.uploads.sent++;
    this.uploads.bytes += bytes.length;
    this.bump(binary ? 'send_file binary' : 'send_file base64');
    let r;
    try {
      r = await c.request('send_file', { room, name, type, data });
    } catch (e) { this.ledger.sendFailed(msg); throw e; }
    if (!r.ok || r.data.size !== bytes.length) {
      this.ledger.sendFailed(msg);
      throw new Error(`send_file answered ${JSON.stringify(r.data)}`);
    }
    this.ledger.acked(msg, r.data.id, now());
    this.uploads.acked++;
    if (c.rng() < 0.5) {
      this.uploads.downloads++;
      const d = await probe.request(this.port, { path: r.data.url });
      if (d.status !== 200 || !d.body.equals(bytes) || String(d.headers['content-type']).split(';')[0] !== type) {
        this.uploads.downloadMismatch++;
        throw new Error(`GET ${r.data.url}: ${d.status}, ${d.body.length} bytes of ${bytes.length}, ${d.headers['content-type']}`);
      }
    }
  }

  // A refused request on a live session: must answer the protocol's code, and the session stays.
  async refuse(c) {
    const room = this.room(c);
    const kinds = {
      invalid_payload: ['send_message', 'just text', 'invalid_payload'],
      unknown_event: ['soak_no_such_event', { room }, 'unknown_event'],
      too_long: ['send_message', { room, text: 'y'.repeat(4001) }, 'message_too_long'],
      empty: ['send_message', { room, text: ' \t\n ' }, 'empty_message'],
      not_in_room: ['send_message', { room: 'soak-nobody-here', text: 'hello?' }, 'not_in_room'],
      invalid_room: ['join_room', { room: 'no spaces/allowed' }, 'invalid_room'],
      file_wrong_type: ['send_file', { room, name: 'fake.png', type: 'image/png', data: Buffer.from('not a png').toString('base64') }, 'file_type_not_allowed'],
      file_bad_base64: ['send_file', { room, name: 'a.txt', type: 'text/plain', data: '!!!not base64' }, 'invalid_file'],
      file_bad_name: ['send_file', { room, name: '../../etc/passwd', type: 'text/plain', data: Buffer.from('hi').toString('base64') }, 'invalid_file'],
      file_type_not_allowed: ['send_file', { room, name: 'a.sh', type: 'application/x-sh', data: Buffer.from('#!/bin/sh').toString('base64') }, 'file_type_not_allowed'],
    };
    const which = Object.keys(kinds)[Math.floor(c.rng() * Object.keys(kinds).length)];
    if (!room && kinds[which][1] && kinds[which][1].room === null) return;
    const [event, data, code] = kinds[which];
    const rec = this.refused[which] || (this.refused[which] = { n: 0, answered: 0 });
    rec.n++;
    this.bump('refused request');
    const r = await c.request(event, data);
    if (r.ok || r.data.code !== code) throw new Error(`${which}: expected error ${code}, got ${JSON.stringify(r.data).slice(0, 200)}`);
    rec.answered++;
  }

  // {------------------------------------------------------------ hostile connections
  async hostileLoop() {
    const rng = rng32(this.o.seed * 7919 + 1);
    const names = Object.keys(ACTIONS).filter((k) => this.o.jwtSecret || !k.startsWith('jwt_'));
    const inflight = new Set();
    while (!this.stopping) {
      await this.pause(expo(rng, 1000 / this.o.hostileRate));
      if (this.stopping) break;
      const which = names[Math.floor(rng() * names.length)];
      const rec = this.refused[which] || (this.refused[which] = { n: 0, answered: 0 });
      rec.n++;
      this.bump('refused connection');
      const p = ACTIONS[which](this.port, this.o).then(() => { rec.answered++; }, (e) => this.fail(`refused ${which}`, e.message));
      inflight.add(p);
      p.finally(() => inflight.delete(p));
    }
    await Promise.allSettled([...inflight]);
  }

  // {------------------------------------------------------------ reloads
  async generation() { return (await probe.metrics(this.port)).space_scripts_generation.value; }

  async reload(how) {
    const before = await this.generation();
    if (how === 'api') {
      const r = await probe.request(this.port, { method: 'POST', path: '/api/reload',
        headers: { Authorization: `Bearer ${this.adminToken}` } });
      if (r.status !== 200) throw new Error(`POST /api/reload: ${r.status} ${r.body.toString('utf8').slice(0, 200)}`);
    } else {
      // Saving a handler file: the watcher reloads 100 ms after the last change.
      const f = path.join(this.tmp, 'scripts', 'events', 'get_room_users.lua');
      fs.appendFileSync(f, `-- touched by the soak at ${new Date().toISOString()}\n`);
    }
    const t0 = now();
    while ((await this.generation()) <= before) {
      if (now() - t0 > 10000) throw new Error(`${how}: the generation stayed ${before} for 10 s`);
      await sleep(50);
    }
    this.reloads[how]++;
  }

  async reloadLoop() {
    for (let k = 0; ; k++) {
      await this.pause(this.o.reloadEvery * 1000);
      if (this.stopping) return;
      const how = k % 2 === 0 ? 'api' : 'touch';
      this.bump(`reload ${how}`);
      await this.reload(how).catch((e) => { this.reloads.failed++; this.fail('reload', e.message); });
    }
  }

  // {------------------------------------------------------------ sampling
  async sampleLoop(t0) {
    const every = this.o.smoke ? 500 : 2000;
    let k = 0;
    while (!this.stopping) {
      try {
        this.rss.push({ t: (now() - t0) / 1000, kib: probe.rssKiB(this.pid) });
        this.fdMax = Math.max(this.fdMax, Object.keys(probe.fds(this.pid)).length);
        if (k++ % 5 === 0) {
          const m = await probe.metrics(this.port);
          this.connectionsMax = Math.max(this.connectionsMax, m.space_connections.value);
        }
      } catch (e) { this.fail('sample', e.message); }
      if (!this.o.smoke && k % 15 === 0) {
        const s = this.ledger.totals;
        log(`t=${Math.round((now() - t0) / 1000)}s clients=${this.concurrent} rss=${this.rss[this.rss.length - 1].kib} KiB ` +
          `sent=${s.sent} lost=${s.lost} failures=${Object.values(this.failures).reduce((a, b) => a + b, 0)}`);
        this.ledger.settle(now());
      }
      await this.pause(every);
    }
  }

  async run() {
    const t0 = now();
    const slots = [];
    for (let i = 0; i < this.o.clients; i++) slots.push(this.slot(i));
    const loops = [this.hostileLoop(), this.reloadLoop(), this.sampleLoop(t0)];
    await sleep(this.o.duration * 1000);
    log(`${this.o.duration} s passed: every client ends its life`);
    this.stop();
    const all = Promise.allSettled([...slots, ...loops]);
    if (!(await Promise.race([all.then(() => true), sleep(60000).then(() => false)]))) {
      this.fail('shutdown', 'clients still busy 60 s after the end of the run');
    }
    this.ranFor = (now() - t0) / 1000;
    this.ledger.settle(now(), true);
  }
}

// {================================================================== idle state and checks
// A primer before the baseline: one of each kind of work, so that what the
// server opens once (the files directory, the thread pool) is not counted as
// a leak.
async function primer(o, port, adminToken) {
  const c = makeClient('sio-ws', port, o.jwtSecret ? { token: signJwt(o.jwtSecret, { sub: 'primer' }) } : { name: 'primer' });
  await c.connect();
  await c.request('join_room', { room: 'soak-primer' });
  await c.request('send_message', { room: 'soak-primer', text: 'hello' });
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), crypto.randomBytes(100)]);
  const r = await c.request('send_file', { room: 'soak-primer', name: 'p.png', type: 'image/png', data: png });
  if (!r.ok) throw new Error(`primer send_file: ${JSON.stringify(r.data)}`);
  await probe.request(port, { path: r.data.url });
  await c.request('leave_room', { room: 'soak-primer' });
  c.close('clean');
  const rl = await probe.request(port, { method: 'POST', path: '/api/reload', headers: { Authorization: `Bearer ${adminToken}` } });
  if (rl.status !== 200) throw new Error(`primer reload: ${rl.status}`);
}

// Gauges with no idle value to come back to: time, the generation (checked against the reloads),
// Lua memory (it follows the collector) and resident memory (judged by the RSS check instead).
const NOT_IDLE_GAUGES = new Set(['space_uptime_seconds', 'space_scripts_generation', 'space_lua_memory_bytes',
  'process_resident_memory_bytes']);

function gaugeDiff(idle, after) {
  const diff = [];
  for (const [k, v] of Object.entries(idle)) {
    if (v.type !== 'gauge' || NOT_IDLE_GAUGES.has(k)) continue;
    if (!after[k] || after[k].value !== v.value) diff.push(`${k} ${v.value} -> ${after[k] ? after[k].value : 'gone'}`);
  }
  return diff;
}

// Waits (bounded) until every gauge is back to its idle value.
async function waitIdle(port, idle, ms) {
  const t0 = now();
  let m;
  for (;;) {
    m = await probe.metrics(port);
    const diff = gaugeDiff(idle, m);
    if (!diff.length || now() - t0 > ms) return { metrics: m, diff, ms: Math.round(now() - t0) };
    await sleep(250);
  }
}

// The idle gauges: once the primer's session is gone (no sessions, users,
// rooms) and two readings 250 ms apart agree.
async function idleBaseline(port) {
  const t0 = now();
  let prev = null;
  for (;;) {
    const m = await probe.metrics(port);
    const quiet = ['space_sessions', 'space_users', 'space_rooms'].every((k) => !m[k] || m[k].value === 0);
    if (quiet && prev && !gaugeDiff(prev, m).length) return m;
    if (now() - t0 > 10000) throw new Error(`the server did not come to rest after the primer: ${JSON.stringify(m)}`);
    prev = quiet ? m : null;
    await sleep(250);
  }
}

async function stableFds(pid) {
  let prev = probe.fds(pid);
  for (let i = 0; i < 20; i++) {
    await sleep(250);
    const cur = probe.fds(pid);
    if (Object.keys(cur).length === Object.keys(prev).length) return cur;
    prev = cur;
  }
  return prev;
}

function rssVerdict(o, samples, ranFor) {
  const warm = o.warmup * ranFor;
  const win = Math.max(0.1 * ranFor, 1);
  const first = samples.filter((s) => s.t >= warm && s.t < warm + win).map((s) => s.kib);
  const last = samples.filter((s) => s.t >= ranFor - win).map((s) => s.kib);
  const all = samples.map((s) => s.kib);
  const v = {
    start: all[0], end: all[all.length - 1], max: Math.max(...all),
    firstWindow: first.length ? mean(first) : NaN, lastWindow: last.length ? mean(last) : NaN,
    warm, win,
  };
  v.growthPct = (v.lastWindow - v.firstWindow) / v.firstWindow * 100;
  v.ok = Number.isFinite(v.growthPct) && v.growthPct <= o.rssTolerance;
  return v;
}

// {================================================================== main
async function main() {
  let o;
  try { o = parseArgs(process.argv.slice(2)); } catch (e) { console.error(`soak: ${e.message}`); process.exit(2); }
  const bin = process.env.SERVER_BIN || path.join(REPO, 'build-bench', 'server', 'space-server');
  if (!fs.existsSync(bin)) { console.error(`soak: no server binary at ${bin} (set SERVER_BIN)`); process.exit(2); }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'space-soak-'));
  if (o.jwt) o.jwtSecret = crypto.randomBytes(32).toString('hex');
  const adminToken = crypto.randomBytes(24).toString('hex');
  const srv = await startServer(o, bin, tmp, adminToken);
  const cleanup = () => { if (!srv.exit) srv.proc.kill('SIGKILL'); if (!o.keep) fs.rmSync(tmp, { recursive: true, force: true }); };
  process.on('exit', () => { if (!srv.exit) srv.proc.kill('SIGKILL'); }); // even after an uncaught error
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  process.on('SIGTERM', () => { cleanup(); process.exit(143); });
  let code = 1;
  try {
    code = await soak(o, srv, tmp, adminToken, bin);
  } catch (e) {
    console.error(`soak: ${e.stack || e.message}`);
    console.error(fs.readFileSync(srv.logPath, 'utf8').slice(-3000));
  } finally {
    if (o.keep) log(`kept ${tmp}`);
    cleanup();
  }
  process.exit(code);
}

async function soak(o, srv, tmp, adminToken) {
  const pid = srv.proc.pid;
  log(`server pid ${pid} port ${srv.port}; ${o.smoke ? 'smoke, ' : ''}${o.jwt ? 'JWT, ' : ''}${o.duration} s, ${o.clients} clients, seed ${o.seed}`);
  await sleep(300);
  const fdFresh = Object.keys(await stableFds(pid)).length;
  await primer(o, srv.port, adminToken);
  await sleep(500);
  const idleMetrics = await idleBaseline(srv.port);
  const fdsIdle = await stableFds(pid);
  const heapBefore = o.heapStats ? probe.heapStats(pid, srv.logPath) : null;
  log(`idle: ${Object.keys(fdsIdle).length} open files, RSS ${probe.rssKiB(pid)} KiB` +
    (heapBefore ? `, heap ${heapBefore.inUse} bytes in use of ${heapBefore.system}` : ''));

  const s = new Soak(o, srv, tmp, adminToken);
  await s.run();
  log(`run over after ${s.ranFor.toFixed(0)} s; waiting for the gauges to come back to idle`);
  const after = await waitIdle(srv.port, idleMetrics, 30000);
  const fdsAfter = await stableFds(pid);
  const rssIdle = probe.rssKiB(pid);
  const heapAfter = o.heapStats ? probe.heapStats(pid, srv.logPath) : null;
  const heap = heapBefore && heapAfter ? { before: heapBefore, after: heapAfter } : null;
  const stopped = await stopServer(srv);
  const serverLog = fs.readFileSync(srv.logPath, 'utf8');

  // {------------------------------------------------------------ the checks
  const t = s.ledger.totals;
  const checks = [];
  const failures = Object.entries(s.failures);
  checks.push({ name: 'nothing lost', ok: t.lost === 0 && t.duplicated === 0 && t.stray === 0 && t.failed === 0 && t.sent > 0,
    detail: `${fmtInt(t.sent)} sends (messages and files) into rooms, ${fmtInt(t.sent - t.failed)} acked, ${fmtInt(t.failed)} unanswered or refused; ` +
      `${fmtInt(t.expected)} deliveries owed to members present throughout, ${t.lost} lost, ${t.duplicated} duplicated, ${t.stray} stray; ` +
      `${s.uploads.acked} of ${s.uploads.sent} uploads acked (${fmtInt(s.uploads.bytes / 1024)} KiB), ${s.uploads.downloadMismatch} downloads differing` });
  checks.push({ name: 'every request answered', ok: failures.length === 0,
    detail: failures.length ? failures.map(([k, v]) => `${k} ×${v}`).join(', ') : 'joins, sends, uploads, leaves, barriers, refused inputs, reloads: all answered as expected' });
  const fdDiff = [];
  const idleT = Object.values(fdsIdle);
  const afterT = Object.values(fdsAfter);
  const kinds = (l) => probe.fdKinds(Object.fromEntries(l.map((v, i) => [i, v])));
  const ki = kinds(idleT);
  const ka = kinds(afterT);
  for (const k of new Set([...Object.keys(ki), ...Object.keys(ka)])) if ((ki[k] || 0) !== (ka[k] || 0)) fdDiff.push(`${k} ${ki[k] || 0} -> ${ka[k] || 0}`);
  checks.push({ name: 'no fd leaked', ok: afterT.length <= idleT.length,
    detail: `${idleT.length} open at idle before, ${afterT.length} after${fdDiff.length ? ` (${fdDiff.join(', ')})` : ''}` });
  checks.push({ name: 'gauges back to idle', ok: after.diff.length === 0,
    detail: after.diff.length ? `still off after ${after.ms} ms: ${after.diff.join(', ')}` : `all back within ${after.ms} ms of the last client` });
  const reloadsOk = s.reloads.failed === 0 &&
    after.metrics.space_scripts_generation.value === idleMetrics.space_scripts_generation.value + s.reloads.api + s.reloads.touch;
  checks.push({ name: 'reloads', ok: reloadsOk,
    detail: `${s.reloads.api} POST /api/reload + ${s.reloads.touch} touched files, ${s.reloads.failed} failed; generation ` +
      `${idleMetrics.space_scripts_generation.value} -> ${after.metrics.space_scripts_generation.value}` });
  const sanitizer = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(serverLog);
  checks.push({ name: 'clean exit', ok: stopped.code === 0 && !stopped.killed && !sanitizer,
    detail: `SIGTERM -> exit ${stopped.code}${stopped.signal ? ` signal ${stopped.signal}` : ''} in ${stopped.ms} ms${sanitizer ? ', a sanitizer report in the log' : ''}` });
  const rss = rssVerdict(o, s.rss, s.ranFor);
  if (o.judgeRss) {
    checks.push({ name: 'RSS flat', ok: rss.ok,
      detail: `${fmtInt(rss.firstWindow)} KiB after warm-up -> ${fmtInt(rss.lastWindow)} KiB at the end ` +
        `(${rss.growthPct >= 0 ? '+' : ''}${rss.growthPct.toFixed(1)} %, at most +${o.rssTolerance} %)` });
  }
  const ok = checks.every((c) => c.ok);

  const counters = Object.entries(after.metrics).filter(([k, v]) => v.type === 'counter')
    .map(([k, v]) => `${k.replace(/^space_/, '')} +${v.value - (idleMetrics[k] ? idleMetrics[k].value : 0)}`).join(', ');
  const gauges = Object.entries(idleMetrics).filter(([k, v]) => v.type === 'gauge' && !NOT_IDLE_GAUGES.has(k))
    .map(([k, v]) => `${k.replace(/^space_/, '')} ${v.value} → ${after.metrics[k] ? after.metrics[k].value : 'gone'}`).join(', ');
  const logLevels = {};
  for (const m of serverLog.matchAll(/^\S+ (warn|error) +(\S+)/gm)) logLevels[`${m[1]} ${m[2]}`] = (logLevels[`${m[1]} ${m[2]}`] || 0) + 1;

  // {------------------------------------------------------------ the summary
  const out = [];
  out.push(`soak ${ok ? 'PASSED' : 'FAILED'}: ${s.ranFor.toFixed(0)} s, seed ${o.seed}, up to ${s.concurrentMax} clients at once`);
  for (const c of checks) out.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  out.push(`  actions: ${Object.entries(s.count).sort().map(([k, v]) => `${k}=${v}`).join(', ')}`);
  out.push(`  refused: ${Object.entries(s.refused).sort().map(([k, v]) => `${k}=${v.answered}/${v.n}`).join(', ')}`);
  out.push(`  rss KiB: start=${rss.start} max=${rss.max} end=${rss.end} idle-after=${rssIdle} after-warmup=${Math.round(rss.firstWindow)} last-window=${Math.round(rss.lastWindow)} (${rss.growthPct.toFixed(1)} %${o.judgeRss ? '' : ', not judged in a smoke'})`);
  if (heap) out.push(`  heap (malloc_stats at idle): in use ${heap.before.inUse} -> ${heap.after.inUse} bytes, held ${heap.before.system} -> ${heap.after.system}`);
  out.push(`  fds: fresh=${fdFresh} idle=${idleT.length} max=${s.fdMax} after=${afterT.length}; connections max=${s.connectionsMax}`);
  out.push(`  gauges: ${gauges}; lua bytes ${idleMetrics.space_lua_memory_bytes.value} -> ${after.metrics.space_lua_memory_bytes.value}`);
  out.push(`  counters: ${counters}`);
  out.push(`  server log: ${Object.entries(logLevels).map(([k, v]) => `${k}=${v}`).join(', ') || 'no warnings or errors'}`);
  for (const e of [...s.failureExamples, ...s.ledger.examples]) out.push(`  problem: ${e}`);
  console.log(out.join('\n'));

  if (o.results) {
    let commit = 'unknown commit';
    try {
      commit = require('node:child_process').execFileSync('git', ['-C', REPO, 'log', '-1', '--format=%h'], { encoding: 'utf8' }).trim();
      const dirty = require('node:child_process').execFileSync('git', ['-C', REPO, 'status', '--porcelain', '--', 'core', 'scripts', 'plugins'], { encoding: 'utf8' }).trim();
      commit = `commit ${commit}${dirty ? ' with local changes' : ''}`;
    } catch (_) { /* not a git checkout */ }
    writeSection(o.out, section(o, s, { ok, checks, rss, rssIdle, fdFresh, fdIdle: idleT.length, fdAfter: afterT.length,
      gauges, counters, heap, luaBefore: idleMetrics.space_lua_memory_bytes.value, luaAfter: after.metrics.space_lua_memory_bytes.value, commit }));
    log(`wrote the Soak section of ${o.out}`);
  }
  return ok ? 0 : 1;
}

main();
