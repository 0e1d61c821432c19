'use strict';
// The cluster harness: a real redis-server on a free loopback port (stoppable and restartable on
// that port), our nodes (space-server --redis) and Node socket.io peers (peer.js), all on it.
//
// SPACE_CLUSTER_NODE_ONLY=1 replaces our nodes by Node peers: the tests must pass on such a
// cluster, which checks the tests and the harness against the reference implementation.

const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');
const net = require('node:net');
const crypto = require('node:crypto');
const { createClient } = require('redis');
const h = require('../e2e/harness');

const { T, show, withTimeout, waitFor } = h;
const NODE_ONLY = process.env.SPACE_CLUSTER_NODE_ONLY === '1';
const REDIS_BIN = process.env.REDIS_SERVER || 'redis-server';
const PEER_JS = path.join(__dirname, 'peer.js');

function redisAvailable() {
  const r = spawnSync(REDIS_BIN, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

// A free loopback port: bind 0, read it, close.
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const children = new Set();
process.on('exit', () => {
  for (const p of children) { try { p.kill('SIGKILL'); } catch (_) { /* gone */ } }
});

// Spawns `cmd args`, waits (bounded) until `ready(text so far)` is true on its output.
async function spawnReady(cmd, args, ready, what, env) {
  // stdin is a pipe the child may watch to exit with us (peer.js does).
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env || process.env });
  children.add(proc);
  const out = { text: '' };
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    children.delete(proc);
    resolve({ code, signal });
  }));
  proc.on('error', (e) => { out.text += `\n[spawn error] ${e.message}`; });
  const isReady = new Promise((resolve) => {
    const on = (d) => {
      out.text = (out.text + d).slice(-300000);
      if (ready(out.text)) resolve(true);
    };
    proc.stdout.setEncoding('utf8').on('data', on);
    proc.stderr.setEncoding('utf8').on('data', on);
  });
  const first = await withTimeout(Promise.race([isReady, exited.then(() => 'exited')]), T(10000))
    .catch(() => 'timeout');
  if (first !== true) {
    proc.kill('SIGKILL');
    throw new Error(`${what} did not start (${first})\n${out.text.slice(-3000)}`);
  }
  return { proc, out, exited };
}

class Redis {
  constructor() { this.port = null; this.run = null; this.starts = 0; }
  get url() { return `redis://127.0.0.1:${this.port}`; }

  // redis-server is ready when it logs so (it may also retry the port briefly after a restart).
  async start() {
    if (this.port === null) this.port = await freePort();
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no'];
    // The shell becomes redis-server and a subshell stops it when our end of its stdin closes
    // (through fd 3: a background job's own stdin is /dev/null):
    // a test run that is killed (ctest's timeout) leaves no redis-server behind.
    const proc = spawn('bash', ['-c', 'exec 3<&0; ( read -r _ <&3; kill $$ ) & exec "$0" "$@" 3<&-', REDIS_BIN, ...args],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(proc);
    const out = { text: '' };
    let exit = null;
    const exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
      children.delete(proc);
      exit = { code, signal };
      resolve(exit);
    }));
    const keep = (d) => { out.text = (out.text + d).slice(-20000); };
    proc.stdout.setEncoding('utf8').on('data', keep);
    proc.stderr.setEncoding('utf8').on('data', keep);
    this.run = { proc, out, exited };
    await waitFor(() => {
      if (exit) throw new Error(`redis-server exited ${show(exit)}: ${out.text.slice(-1000)}`);
      return /Ready to accept connections/.test(out.text);
    }, T(10000), `redis-server on port ${this.port} to be ready`, 20);
    this.starts++;
    return this;
  }

  async stop() {
    if (!this.run) return;
    const { proc, exited } = this.run;
    this.run = null;
    proc.stdin.end();
    await withTimeout(exited, T(5000), 'redis-server to exit').catch(() => { proc.kill('SIGKILL'); return exited; });
  }

  async restart() { await this.stop(); await this.start(); }

  // A connected client of this Redis (for PUBSUB queries and the emitter); closed by the caller.
  async client() {
    const c = createClient({ url: this.url, socket: { reconnectStrategy: (n) => Math.min(50 * (n + 1), 500) } });
    c.on('error', () => {});
    await c.connect();
    return c;
  }
}

// One node of the cluster, ours or a Node peer: {kind, name, port, url, stderr, metrics(), stop()}.
class OurNode {
  constructor(name, srv) { this.kind = 'space'; this.name = name; this.srv = srv; }
  get port() { return this.srv.port; }
  get url() { return this.srv.url; }
  get stderr() { return this.srv.stderr; }
  get exit() { return this.srv.exit; }
  describe() { return `${this.name}: ${this.srv.describe()}`; }
  async stop() { return this.srv.stopClean(); }
}

class PeerNode {
  constructor(name, run, port) {
    this.kind = 'peer'; this.name = name; this.run = run; this.port = port; this.exit = null;
    run.exited.then((e) => { this.exit = e; });
  }
  get url() { return `http://127.0.0.1:${this.port}`; }
  get stderr() { return this.run.out.text; }
  describe() {
    return `${this.name} (Node peer${this.exit ? `, exited ${show(this.exit)}` : ''})\n--- stderr (tail) ---\n${this.stderr.slice(-3000)}\n---`;
  }
  async stop() {
    if (this.exit) throw new Error(`peer exited during the tests\n${this.describe()}`);
    this.run.proc.kill('SIGTERM');
    const r = await withTimeout(this.run.exited, T(5000)).catch(() => null);
    if (!r) { this.run.proc.kill('SIGKILL'); throw new Error(`peer did not stop on SIGTERM\n${this.describe()}`); }
    if (r.code !== 0) throw new Error(`peer exited ${show(r)}\n${this.describe()}`);
  }

  // A test hook (peer.js's /peer/... routes).
  async call(route, body = {}) {
    const res = await withTimeout(fetch(`${this.url}/peer/${route}`, {
      method: route === 'received' ? 'GET' : 'POST',
      body: route === 'received' ? undefined : JSON.stringify(body),
    }), T(10000), `peer ${route}`);
    if (res.status !== 200) throw new Error(`peer ${route}: HTTP ${res.status}`);
    return res.json();
  }
}

// Every node of a test run takes this admin token (the tests make their own).
const ADMIN_TOKEN = crypto.randomBytes(24).toString('base64url');

async function startPeer(name, redis) {
  const run = await spawnReady(process.execPath, [PEER_JS, '--redis', redis.url, '--port', '0', '--name', name],
    (t) => /listening address=[^ :]+:\d+/.test(t), `Node peer ${name}`,
    { ...process.env, SPACE_ADMIN_TOKEN: ADMIN_TOKEN });
  const port = Number(/listening address=[^ :]+:(\d+)/.exec(run.out.text)[1]);
  return new PeerNode(name, run, port);
}

async function startOurNode(name, redis, args = []) {
  const srv = await h.startServer({ args: ['--redis', redis.url, ...args], env: { SPACE_ADMIN_TOKEN: ADMIN_TOKEN } });
  return new OurNode(name, srv);
}

// The metric `name` (no labels) from a node's /metrics, as a number; null when absent.
async function metric(node, name) {
  const res = await fetch(`${node.url}/metrics`);
  const text = await res.text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

// POST /api/rooms/{room}/emit on a node (the backend's emit through the admin API).
async function adminEmit(node, room, event, data) {
  const res = await fetch(`${node.url}/api/rooms/${encodeURIComponent(room)}/emit`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ event, data }),
  });
  return res.status;
}

// Any admin API call on a node: {status, body}.
async function adminCall(node, method, path, body) {
  const res = await fetch(`${node.url}${path}`, {
    method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

// The cluster of one test file: `ours` of our nodes (Node peers under SPACE_CLUSTER_NODE_ONLY=1)
// and `peers` Node peers, all on one fresh Redis.
class Cluster {
  constructor({ ours = 2, peers = 1, args = [] } = {}) {
    this.nOurs = ours; this.nPeers = peers; this.args = args; this.ours = []; this.peers = [];
  }
  get nodes() { return [...this.ours, ...this.peers]; }

  // On failure, stops what did start (a running child would keep the test file alive) and throws.
  async start() {
    try {
      this.redis = new Redis();
      await this.redis.start();
      this.admin = await this.redis.client();
      for (let i = 0; i < this.nOurs; i++) {
        this.ours.push(NODE_ONLY ? await startPeer(`ours${i}`, this.redis) : await startOurNode(`ours${i}`, this.redis, this.args));
      }
      for (let i = 0; i < this.nPeers; i++) this.peers.push(await startPeer(`peer${i}`, this.redis));
      await this.ready();
    } catch (e) {
      await this.stop().catch(() => {});
      throw e;
    }
    return this;
  }

  // Every node has subscribed the request channel and the broadcast pattern of `/`.
  async ready(timeoutMs = T(15000)) {
    const n = this.nodes.length;
    await waitFor(async () => {
      const numsub = await this.admin.sendCommand(['PUBSUB', 'NUMSUB', 'socket.io-request#/#']);
      const numpat = await this.admin.sendCommand(['PUBSUB', 'NUMPAT']);
      return Number(numsub[1]) === n && Number(numpat) >= n ? true : { numsub, numpat };
    }, timeoutMs, `all ${n} nodes to subscribe on Redis`, 50);
  }

  // Fails with the logs of any node that died.
  check() {
    const dead = this.nodes.filter((x) => x.exit);
    if (dead.length) throw new Error(`node(s) died:\n${dead.map((x) => x.describe()).join('\n')}`);
  }

  async stop() {
    h.closeAllClients();
    const errors = [];
    for (const node of this.nodes) await node.stop().catch((e) => errors.push(e.message));
    this.ours = [];
    this.peers = [];
    if (this.admin) await this.admin.quit().catch(() => {});
    this.admin = null;
    if (this.redis) await this.redis.stop();
    if (errors.length) throw new Error(errors.join('\n'));
  }
}

module.exports = { NODE_ONLY, redisAvailable, freePort, Redis, Cluster, startPeer, startOurNode, metric, adminEmit, adminCall };
