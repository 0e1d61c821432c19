#!/usr/bin/env node
'use strict';
// Reload benchmark for space-server (not part of the test suite).
//   (a) the time to reload scripts/ + plugins/: 100 POST /api/reload one after the other, the
//       server's own last_load_ms from each answer and the wall time of each request;
//   (b) send_message rate and latency of a steady load (C clients x W unanswered messages each,
//       all in one room, so every message also fans out to the C-1 others) for D seconds without
//       reloads, then D seconds with a POST /api/reload every R ms; printed as Markdown tables.
//
//   node bench/reload/bench.js [--clients 4] [--window 16] [--seconds 5] [--reload-every 100] [--reloads 100]
//
// The server is $SPACE_SERVER (default build/space-server), started on a temp copy of scripts/ and
// plugins/ whose rules.lua lifts the rate limit (per_second and burst 1000000): the load is the point.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');

const REPO = path.resolve(__dirname, '..', '..');
const { io } = require(path.join(REPO, 'spec', 'node_modules', 'socket.io-client'));
const SERVER = process.env.SPACE_SERVER || path.join(REPO, 'build', 'space-server');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const CLIENTS = arg('clients', 4);
const WINDOW = arg('window', 16);
const SECONDS = arg('seconds', 5);
const RELOAD_EVERY = arg('reload-every', 100);
const RELOADS = arg('reloads', 100);

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms); })])
    .finally(() => clearTimeout(t));
}

async function startServer() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'space-bench-reload-'));
  fs.cpSync(path.join(REPO, 'scripts'), path.join(root, 'scripts'), { recursive: true });
  fs.cpSync(path.join(REPO, 'plugins'), path.join(root, 'plugins'), { recursive: true });
  const rulesPath = path.join(root, 'scripts', 'rules.lua');
  const rules = fs.readFileSync(rulesPath, 'utf8')
    .replace(/per_second = \d+(\.\d+)?,/, 'per_second = 1000000,')
    .replace(/burst = \d+,/, 'burst = 1000000,');
  if (!/per_second = 1000000,/.test(rules) || !/burst = 1000000,/.test(rules)) throw new Error('could not lift the rate limit in rules.lua');
  fs.writeFileSync(rulesPath, rules);
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SPACE_')) env[k] = v;
  env.SPACE_DATA_DIR = path.join(root, 'data'); // the history of this run only (an older binary ignores it)
  const proc = spawn(SERVER, ['--scripts', path.join(root, 'scripts'), '--plugins', path.join(root, 'plugins'),
    '--host', '127.0.0.1', '--port', '0'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const port = await withTimeout(new Promise((resolve, reject) => {
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-20000); // one info line per reload: keep the tail only
      const m = /listening address=[^ :]+:(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
  }), 10000, 'the server to listen');
  return { proc, port, root, stderr: () => stderr };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function post(port, p, method = 'POST') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, agent, headers: { 'content-length': 0 } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function benchReloadTime(port) {
  const load = [];
  const wall = [];
  for (let i = 0; i < RELOADS; i++) {
    const t0 = process.hrtime.bigint();
    const r = await post(port, '/api/reload');
    wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.status !== 200) throw new Error(`POST /api/reload: ${r.status} ${JSON.stringify(r.body)}`);
    load.push(r.body.scripts.last_load_ms);
  }
  load.sort((a, b) => a - b);
  wall.sort((a, b) => a - b);
  return { load, wall };
}

async function connect(port, name) {
  const s = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { name } });
  await withTimeout(new Promise((resolve, reject) => {
    s.once('connected', resolve);
    s.once('connect_error', reject);
  }), 5000, `${name} to connect`);
  await withTimeout(s.emitWithAck('join_room', { room: 'bench' }), 5000, 'join_room');
  return s;
}

// Runs the load for `seconds`; calls tick() every RELOAD_EVERY ms when given. Returns the stats.
async function phase(clients, seconds, tick) {
  const lat = [];
  let errors = 0;
  let stop = false;
  let inflight = 0;
  const t0 = Date.now();
  const sendLoop = (s) => {
    if (stop) return;
    inflight++;
    const at = process.hrtime.bigint();
    s.timeout(10000).emit('send_message', { room: 'bench', text: 'benchmark message' }, (err, ack) => {
      inflight--;
      if (err || !ack || ack.code) errors++;
      else lat.push(Number(process.hrtime.bigint() - at) / 1e6);
      sendLoop(s);
    });
  };
  for (const s of clients) for (let i = 0; i < WINDOW; i++) sendLoop(s);
  const reloads = { ok: 0, failed: 0, load: [] };
  let timer = null;
  if (tick) {
    let busy = false;
    timer = setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        const r = await tick();
        if (r.status === 200 && r.body.ok) { reloads.ok++; reloads.load.push(r.body.scripts.last_load_ms); } else if (r.status !== 200) reloads.failed++;
      } finally { busy = false; }
    }, RELOAD_EVERY);
  }
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stop = true;
  const elapsed = (Date.now() - t0) / 1000;
  if (timer) clearInterval(timer);
  await withTimeout(new Promise((resolve) => {
    const check = () => (inflight === 0 ? resolve() : setTimeout(check, 5));
    check();
  }), 15000, 'the last messages to be answered');
  lat.sort((a, b) => a - b);
  return { rate: lat.length / elapsed, lat, errors, reloads };
}

async function main() {
  const srv = await startServer();
  try {
    const rt = await benchReloadTime(srv.port);
    const clients = [];
    for (let i = 0; i < CLIENTS; i++) clients.push(await connect(srv.port, `bench${i}`));
    await phase(clients, 1); // warm-up
    const quiet = await phase(clients, SECONDS);
    // control: the same HTTP traffic to the admin API, without reloading
    const control = await phase(clients, SECONDS, () => post(srv.port, '/api/status', 'GET'));
    const busy = await phase(clients, SECONDS, () => post(srv.port, '/api/reload'));
    for (const s of clients) s.disconnect();

    const files = (await post(srv.port, '/api/reload')).body.scripts.files;
    console.log(`space-server reload benchmark: ${SERVER}`);
    console.log(`${os.cpus().length} CPUs (${os.cpus()[0].model}), node ${process.version}; scripts/ + plugins/: ${files} files\n`);
    console.log(`(a) ${RELOADS} reloads, one after the other (POST /api/reload on a keep-alive connection)\n`);
    console.log('| | median | p90 | min | max |');
    console.log('|---|---|---|---|---|');
    console.log(`| load time, server's last_load_ms | ${fmt(quantile(rt.load, 0.5))} ms | ${fmt(quantile(rt.load, 0.9))} ms | ${fmt(rt.load[0])} ms | ${fmt(rt.load[rt.load.length - 1])} ms |`);
    console.log(`| POST /api/reload, wall time | ${fmt(quantile(rt.wall, 0.5))} ms | ${fmt(quantile(rt.wall, 0.9))} ms | ${fmt(rt.wall[0])} ms | ${fmt(rt.wall[rt.wall.length - 1])} ms |`);
    console.log(`\n(b) send_message, ${CLIENTS} clients x ${WINDOW} unanswered each, one room (each message also goes to ${CLIENTS - 1} others), ${SECONDS} s each\n`);
    const cols = [quiet, control, busy];
    const row = (label, f) => console.log(`| ${label} | ${cols.map(f).join(' | ')} |`);
    console.log(`| | no reloads | GET /api/status every ${RELOAD_EVERY} ms (control) | POST /api/reload every ${RELOAD_EVERY} ms |`);
    console.log('|---|---|---|---|');
    row('messages/s (acked)', (c) => Math.round(c.rate));
    for (const [label, q] of [['p50', 0.5], ['p90', 0.9], ['p99', 0.99]]) {
      row(`${label} latency`, (c) => `${fmt(quantile(c.lat, q))} ms`);
    }
    row('max latency', (c) => `${fmt(c.lat[c.lat.length - 1])} ms`);
    row('errors / unanswered', (c) => c.errors);
    const bl = busy.reloads.load.sort((x, y) => x - y);
    console.log(`| reloads (ok / failed) | 0 / 0 | 0 / 0 | ${busy.reloads.ok} / ${busy.reloads.failed} (median load ${fmt(quantile(bl, 0.5))} ms) |`);
  } finally {
    srv.proc.kill('SIGTERM');
    agent.destroy();
    await withTimeout(new Promise((r) => srv.proc.once('exit', r)), 5000, 'the server to exit').catch(() => srv.proc.kill('SIGKILL'));
    fs.rmSync(srv.root, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
