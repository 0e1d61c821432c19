'use strict';
// Test harness for the space-server end-to-end suites.
//
// - startServer(): spawns the binary named by $SPACE_SERVER on a free loopback port, waits (bounded)
//   for the `listening address=HOST:PORT` line on stderr, and keeps stderr for failure messages.
// - connectClient(): a socket.io-client socket (WebSocket transport only) whose every received event is
//   recorded in an Inbox, so a test can take the next event of a name without racing the network.
// - RawClient: a `ws` WebSocket speaking raw Engine.IO / Socket.IO text.
// - NetWs: a WebSocket over a plain TCP socket, for sending frames that `ws` refuses to build.
// - httpRaw(): one raw HTTP exchange over `net`.
// Everything waits for a condition with a bound; nothing sleeps for synchronisation.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const crypto = require('node:crypto');
const util = require('node:util');
const { io } = require('socket.io-client');
const WebSocket = require('ws');

const REPO = path.resolve(__dirname, '..', '..');
const SERVER_BIN = process.env.SPACE_SERVER || path.join(REPO, 'build', 'space-server');
const SCRIPTS_DIR = process.env.SPACE_SCRIPTS || path.join(REPO, 'scripts');
// Sanitizer builds start and answer more slowly: every bound can be scaled with SPACE_TEST_SLOW=2 etc.
const SLOW = Math.max(1, Number(process.env.SPACE_TEST_SLOW || 1));
const T = (ms) => Math.round(ms * SLOW);
const DEFAULT_WAIT = T(3000);
// the text line, or the JSON one of --log-format json
const LISTEN_RE = /listening address=[^ :]+:(\d+)|"msg":"listening","address":"[^"]*:(\d+)"/;

function show(v) {
  return util.inspect(v, { depth: 6, breakLength: Infinity, maxStringLength: 300, maxArrayLength: 30 });
}

// deepStrictEqual / ok with both values in the message, so a failure says what came instead.
function eq(actual, expected, what) {
  assert.deepStrictEqual(actual, expected, `${what}: expected ${show(expected)}, got ${show(actual)}`);
}
function ok(cond, what, got) {
  assert.ok(cond, `${what}; got ${show(got)}`);
}

function tail(s, n = 3000) {
  return s.length > n ? '...' + s.slice(-n) : s;
}

// ---------------------------------------------------------------------------------------------
// Server process

const running = new Set();
process.on('exit', () => {
  for (const srv of running) {
    try { srv.proc.kill('SIGKILL'); } catch (_) { /* already gone */ }
  }
});

class Server {
  constructor(proc, argv) {
    this.proc = proc;
    this.argv = argv;
    this.stderr = '';
    this.stdout = '';
    this.port = null;
    this.exit = null; // {code, signal, at}
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exit = { code, signal, at: Date.now() };
        running.delete(this);
        resolve(this.exit);
      });
    });
  }

  get url() { return `http://127.0.0.1:${this.port}`; }
  get wsUrl() { return `ws://127.0.0.1:${this.port}/socket.io/?EIO=4&transport=websocket`; }

  describe() {
    return `server ${path.basename(SERVER_BIN)} ${this.argv.join(' ')}` +
      (this.exit ? ` (exited code=${this.exit.code} signal=${this.exit.signal})` : '') +
      `\n--- server stderr (tail) ---\n${tail(this.stderr)}\n---`;
  }

  // SIGTERM, then wait up to `timeoutMs` for the exit; SIGKILL after that.
  // Returns {code, signal, ms, killed}.
  async stop(timeoutMs = T(5000)) {
    if (this.exit) return { ...this.exit, ms: 0, killed: false };
    const t0 = Date.now();
    this.proc.kill('SIGTERM');
    const res = await withTimeout(this.exited, timeoutMs).catch(() => null);
    if (res) return { code: res.code, signal: res.signal, ms: Date.now() - t0, killed: false };
    this.proc.kill('SIGKILL');
    const r2 = await withTimeout(this.exited, T(3000)).catch(() => ({ code: null, signal: 'SIGKILL' }));
    return { code: r2.code, signal: r2.signal, ms: Date.now() - t0, killed: true };
  }

  // For after() hooks: stop and fail loudly unless the exit was clean (also catches sanitizer reports).
  async stopClean(timeoutMs = T(5000)) {
    const r = await this.stop(timeoutMs);
    if (r.killed || r.code !== 0) {
      throw new Error(`expected the server to exit 0 after SIGTERM, got ${show(r)}\n${this.describe()}`);
    }
    if (/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(this.stderr)) {
      throw new Error(`sanitizer report in server stderr\n${this.describe()}`);
    }
    return r;
  }
}

function serverEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('SPACE_')) env[k] = v; // the server reads SPACE_* as flags: keep ours out
  }
  return { ...env, ...extra };
}

// opts: {args: [...extra flags], scripts: dir, env: {...}, startTimeoutMs, nofile}
async function startServer(opts = {}) {
  if (!fs.existsSync(SERVER_BIN)) {
    throw new Error(`server binary not found at ${SERVER_BIN} (set SPACE_SERVER)`);
  }
  const filesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'space-files-'));
  // The history database: a fresh --data-dir per server, so that runs never share ./data; a
  // test that restarts on the same data passes opts.dataDir (and removes it itself).
  const dataDir = opts.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'space-data-'));
  const argv = ['--scripts', opts.scripts || SCRIPTS_DIR, '--host', '127.0.0.1', '--port', '0'];
  if (process.env.SPACE_TEST_LOG_LEVEL) argv.push('--log-level', process.env.SPACE_TEST_LOG_LEVEL);
  argv.push(...(opts.args || []));
  // A sanitizer build runs the scripts (and the collector under them) several times slower: the
  // CPU-time limit of a call scales like every other bound, unless a test sets it.
  if (SLOW > 1 && !argv.includes('--lua-cpu-ms')) argv.push('--lua-cpu-ms', String(50 * SLOW));
  // opts.nofile: run under that open-file limit (soft and hard, so the server cannot raise it);
  // opts.fsizeKiB: under that file-size limit (RLIMIT_FSIZE: a write past it fails, as on a full disk).
  const limits = [];
  if (opts.nofile) limits.push(`ulimit -n ${Number(opts.nofile)}`);
  if (opts.fsizeKiB) limits.push(`ulimit -f ${Number(opts.fsizeKiB)}`);
  const [cmd, cmdArgs] = limits.length
    ? ['bash', ['-c', `${limits.join(' && ')} && exec "$0" "$@"`, SERVER_BIN, ...argv]]
    : [SERVER_BIN, argv];
  const proc = spawn(cmd, cmdArgs, {
    cwd: REPO,
    env: serverEnv({ SPACE_FILES_DIR: filesDir, SPACE_DATA_DIR: dataDir, ...(opts.env || {}) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const srv = new Server(proc, argv);
  running.add(srv);
  srv.exited.then(() => {
    fs.rmSync(filesDir, { recursive: true, force: true });
    if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => { srv.stdout = (srv.stdout + d).slice(-200000); });
  const listening = new Promise((resolve) => {
    proc.stderr.on('data', (d) => {
      srv.stderr = (srv.stderr + d).slice(-500000);
      if (srv.port === null) {
        const m = LISTEN_RE.exec(srv.stderr);
        if (m) { srv.port = Number(m[1] || m[2]); resolve(srv.port); }
      }
    });
  });
  proc.on('error', (e) => { srv.stderr += `\n[spawn error] ${e.message}`; });
  const limit = opts.startTimeoutMs || T(10000);
  const first = await withTimeout(Promise.race([listening, srv.exited.then(() => 'exited')]), limit)
    .catch(() => 'timeout');
  if (first === 'exited' || first === 'timeout') {
    if (first === 'timeout') proc.kill('SIGKILL');
    throw new Error(`server did not print "listening address=HOST:PORT" (${first} after ${limit} ms)\n${srv.describe()}`);
  }
  return srv;
}

// Fails (with the server's stderr) unless the server process is alive and accepts a TCP connection.
async function assertAlive(srv) {
  const accepting = await new Promise((resolve) => {
    const s = net.connect(srv.port, '127.0.0.1');
    const timer = setTimeout(() => { s.destroy(); resolve(false); }, T(1000));
    s.on('connect', () => { clearTimeout(timer); s.destroy(); resolve(true); });
    s.on('error', () => { clearTimeout(timer); resolve(false); });
  });
  if (!accepting || srv.exit) {
    await withTimeout(srv.exited, T(1000)).catch(() => {});
    throw new Error(`the server died or stopped accepting connections during this test\n${srv.describe()}`);
  }
}

// Keeps one server running for a test file: restarts it before a test when an earlier test crashed it,
// and remembers every crash so that the file's after() hook can report them all.
class ManagedServer {
  constructor(opts = {}) { this.opts = opts; this.srv = null; this.crashes = []; }
  async start() { this.srv = await startServer(this.opts); return this.srv; }
  async ensure() {
    if (this.srv && this.srv.exit) {
      this.crashes.push(this.srv.describe());
      this.srv = await startServer(this.opts);
    }
    return this.srv;
  }
  async check() { if (this.srv) await assertAlive(this.srv); }
  async finish() {
    if (!this.srv) return;
    if (this.srv.exit && !this.crashes.includes(this.srv.describe())) this.crashes.push(this.srv.describe());
    else await this.srv.stopClean();
    if (this.crashes.length) {
      throw new Error(`the server crashed ${this.crashes.length} time(s) during this file:\n${this.crashes.join('\n')}`);
    }
  }
}

// Runs the binary with exactly `argv` and waits (bounded) for it to exit by itself.
// Returns {code, signal, stderr, stdout, timedOut}.
async function runServerToExit(argv, timeoutMs = T(5000)) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'space-data-'));
  const proc = spawn(SERVER_BIN, argv, {
    cwd: REPO, env: serverEnv({ SPACE_DATA_DIR: dataDir }), stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
  proc.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  proc.on('error', (e) => { stderr += `[spawn error] ${e.message}`; });
  const r = await withTimeout(exited, timeoutMs).catch(() => null);
  if (!r) proc.kill('SIGKILL');
  const r2 = r || await exited;
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { ...r2, stderr, stdout, timedOut: !r };
}

// Copy a scripts dir to a temp dir and apply edit(filename, text) -> text to each file.
function copyScripts(edit, from = SCRIPTS_DIR) {
  const dst = fs.mkdtempSync(path.join(os.tmpdir(), 'space-scripts-'));
  fs.cpSync(from, dst, { recursive: true });
  if (edit) {
    const walk = (dir) => {
      for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, ent.name);
        if (ent.isDirectory()) walk(p);
        else {
          const rel = path.relative(dst, p);
          const text = fs.readFileSync(p, 'utf8');
          const out = edit(rel, text);
          if (out !== text) fs.writeFileSync(p, out);
        }
      }
    };
    walk(dst);
  }
  return dst;
}

// ---------------------------------------------------------------------------------------------
// Generic waiting

function withTimeout(promise, ms, what = 'operation') {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Poll `condition` (sync or async) every `intervalMs` until it returns truthy; throw after `timeoutMs`.
async function waitFor(condition, timeoutMs = DEFAULT_WAIT, what = 'condition', intervalMs = 10) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await condition();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${show(last)}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---------------------------------------------------------------------------------------------
// Inbox: every received item, each taken at most once, in arrival order.

class Inbox {
  constructor(label) {
    this.label = label;
    this.items = [];
    this.waiters = new Set();
  }

  push(name, data, extra = {}) {
    this.items.push({ name, data, at: Date.now(), taken: false, ...extra });
    for (const w of [...this.waiters]) w();
  }

  find(names, pred) {
    const set = Array.isArray(names) ? names : [names];
    return this.items.find((it) => !it.taken && set.includes(it.name) && (!pred || pred(it.data, it)));
  }

  // Next untaken item whose name is in `names` (and pred(data) holds); marks it taken.
  take(names, pred, timeoutMs = DEFAULT_WAIT) {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const it = this.find(names, pred);
        if (!it) return false;
        it.taken = true;
        this.waiters.delete(attempt);
        clearTimeout(timer);
        resolve(it);
        return true;
      };
      let timer = null;
      if (attempt()) return;
      timer = setTimeout(() => {
        this.waiters.delete(attempt);
        reject(new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${show(names)}` +
          `${pred ? ' (matching a condition)' : ''}; received so far: ${this.summary()}`));
      }, timeoutMs);
      this.waiters.add(attempt);
    });
  }

  all(name, pred) {
    return this.items.filter((it) => it.name === name && (!pred || pred(it.data, it))).map((it) => it.data);
  }

  count(name, pred) { return this.all(name, pred).length; }

  summary() {
    if (!this.items.length) return '(nothing)';
    return this.items.slice(-25).map((it) => `${it.taken ? '' : '*'}${it.name}${it.data === undefined ? '' : ' ' + show(it.data)}`).join(' | ');
  }
}

// ---------------------------------------------------------------------------------------------
// socket.io-client helpers

const openSockets = new Set();
let clientSeq = 0;

// Connects to `/`; resolves {socket, connected} once the server's `connected` event arrives, or
// {socket, error: {message, data}} on CONNECT_ERROR, or {socket, closed: reason}. The socket records
// every received event in socket.inbox. Transports: WebSocket only unless opts.transports says
// otherwise; `transports: null` leaves the client's default (polling first, then the upgrade).
// opts.label names the socket in failure messages; the rest are socket.io-client options.
async function tryConnect(srvOrPort, opts = {}) {
  const port = typeof srvOrPort === 'number' ? srvOrPort : srvOrPort.port;
  const label = opts.label || `client#${++clientSeq}`;
  const options = {
    transports: ['websocket'], reconnection: false, forceNew: true, autoConnect: false, timeout: T(5000), ...opts,
  };
  delete options.label;
  if (options.transports === null || options.transports === undefined) delete options.transports;
  const socket = io(`http://127.0.0.1:${port}`, options);
  socket.label = label;
  socket.inbox = new Inbox(label);
  socket.onAny((event, ...args) => socket.inbox.push(event, args[0], { args }));
  socket.on('connect_error', (err) => socket.inbox.push('$connect_error', { message: err.message, data: err.data }));
  socket.on('disconnect', (reason) => socket.inbox.push('$disconnect', reason));
  openSockets.add(socket);
  socket.connect();
  const it = await socket.inbox.take(['connected', '$connect_error', '$disconnect'], null, T(5000));
  if (it.name === 'connected') return { socket, connected: it.data };
  if (it.name === '$connect_error') return { socket, error: it.data };
  return { socket, closed: it.data };
}

// Connects to `/` as `name` (dev mode; undefined: a guest) and waits for the server's `connected`
// event; fails on anything else. Returns the socket, with socket.inbox, socket.connectedData and
// socket.label. opts as for tryConnect.
async function connectClient(srvOrPort, name, opts = {}) {
  const label = `${name === undefined ? 'guest' : name}#${++clientSeq}`;
  const r = await tryConnect(srvOrPort, { ...(name === undefined ? {} : { auth: { name } }), ...opts, label });
  if (!r.connected) {
    const got = r.error ? `$connect_error ${show(r.error)}` : `$disconnect ${show(r.closed)}`;
    throw new Error(`${label}: expected the "connected" event after connecting, got ${got}`);
  }
  r.socket.connectedData = r.connected;
  return r.socket;
}

function closeAllClients() {
  for (const s of openSockets) {
    try { s.disconnect(); } catch (_) { /* ignore */ }
  }
  openSockets.clear();
}

// The next event `name` on a socket (recorded since connect, not yet taken).
async function nextEvent(socket, name, timeoutMs = DEFAULT_WAIT, pred) {
  const it = await socket.inbox.take(name, pred, timeoutMs);
  return it.data;
}

// Emit and wait for the answering event or an `error`. Returns {name, data}.
async function request(socket, event, ...rest) {
  const answers = rest.pop();
  socket.emit(event, ...rest);
  const names = Array.isArray(answers) ? answers : [answers, 'error'];
  const it = await socket.inbox.take(names, null, DEFAULT_WAIT);
  return { name: it.name, data: it.data };
}

// Emit, expect `answer` (fails with the error object otherwise); returns its data.
async function expectAnswer(socket, event, data, answer) {
  const r = await request(socket, event, data, answer);
  if (r.name !== answer) {
    throw new Error(`${socket.label}: ${event} ${show(data)}: expected "${answer}", got "${r.name}" ${show(r.data)}`);
  }
  return r.data;
}

// A request/answer round trip on a socket.io-client socket: once it is answered, any event the server
// sent the socket before has arrived (one ordered connection).
let settleSeq = 0;
async function settle(socket) {
  const room = `settle-${++settleSeq}`;
  socket.emit('get_room_users', { room });
  await socket.inbox.take('room_users', (d) => d && d.room === room, DEFAULT_WAIT).catch((e) => {
    throw new Error(`follow-up get_room_users on ${socket.label} was not answered: ${e.message}`);
  });
}

// Emit, expect an `error` event; returns its data.
async function expectError(socket, event, ...args) {
  socket.emit(event, ...args);
  const it = await socket.inbox.take('error', null, DEFAULT_WAIT).catch((e) => {
    throw new Error(`${socket.label}: ${event} ${show(args)}: expected an "error" event: ${e.message}`);
  });
  return it.data;
}

// Emit with an acknowledgement; also takes the answering event (`answer` or `error`) that the server
// sends as well. Returns {ack, name, data}.
async function ackRequest(socket, event, data, answer) {
  const ackP = socket.timeout(DEFAULT_WAIT).emitWithAck(event, data);
  const ack = await ackP.catch((e) => { throw new Error(`${socket.label}: no ack for ${event} ${show(data)}: ${e.message}`); });
  const it = await socket.inbox.take([answer, 'error'], null, DEFAULT_WAIT);
  return { ack, name: it.name, data: it.data };
}

// Client-side disconnect (sends the Socket.IO DISCONNECT, then closes the transport).
async function disconnectClient(socket) {
  socket.disconnect();
  openSockets.delete(socket);
}

// ---------------------------------------------------------------------------------------------
// Raw Engine.IO over `ws`

class RawClient {
  // opts: {autoPong: true, query: '...', headers}
  static async open(srv, opts = {}) {
    const c = new RawClient(srv, opts);
    await c.opened;
    return c;
  }

  constructor(srv, opts = {}) {
    this.autoPong = opts.autoPong !== false;
    this.label = opts.label || 'raw';
    const url = opts.url || srv.wsUrl;
    this.inbox = new Inbox(this.label);
    this.pings = [];
    this.closeInfo = null;
    this.ws = new WebSocket(url, { perMessageDeflate: false, headers: opts.headers || {} });
    this.openedAt = null;
    this.opened = new Promise((resolve, reject) => {
      this.ws.on('open', () => { this.openedAt = Date.now(); resolve(); });
      this.ws.on('unexpected-response', (req, res) => reject(new Error(`${this.label}: upgrade refused with HTTP ${res.statusCode}`)));
      this.ws.on('error', (e) => { this.inbox.push('$error', e.message); reject(e); });
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), at: Date.now() };
        this.inbox.push('$close', this.closeInfo);
        resolve(this.closeInfo);
      });
    });
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) { this.inbox.push('binary', Buffer.from(data)); return; }
      const text = data.toString('utf8');
      if (text === '2') {
        this.pings.push(Date.now());
        if (this.autoPong && this.ws.readyState === WebSocket.OPEN) this.ws.send('3');
      }
      this.inbox.push('text', text);
    });
    this.ws.on('ping', () => this.inbox.push('$wsping', null));
  }

  get isOpen() { return this.ws.readyState === WebSocket.OPEN; }

  send(text) { this.ws.send(text); }
  sendBinary(buf) { this.ws.send(buf, { binary: true }); }
  // Raw bytes in a text frame (may be invalid UTF-8).
  sendTextBytes(buf, fin = true) { this.ws.send(buf, { binary: false, fin }); }

  // Next text frame satisfying pred(text) (pings are skipped unless pred asks for them).
  async nextText(pred = (t) => t !== '2', timeoutMs = DEFAULT_WAIT) {
    const p = typeof pred === 'string' ? ((t) => t.startsWith(pred)) : pred;
    const it = await this.inbox.take('text', p, timeoutMs);
    return it.data;
  }

  // Next Socket.IO EVENT on `/` with this name: returns its data (the first argument).
  async nextEvent(name, timeoutMs = DEFAULT_WAIT) {
    const text = await this.nextText((t) => {
      if (!t.startsWith('42[')) return false;
      try { return JSON.parse(t.slice(2))[0] === name; } catch (_) { return false; }
    }, timeoutMs);
    return JSON.parse(text.slice(2))[1];
  }

  async openPacket(timeoutMs = DEFAULT_WAIT) {
    const t = await this.nextText((x) => x.startsWith('0'), timeoutMs);
    return JSON.parse(t.slice(1));
  }

  // Socket.IO CONNECT to `/`; returns {sid, connected}.
  async connectNs(auth, timeoutMs = DEFAULT_WAIT) {
    await this.openPacket(timeoutMs);
    this.send(auth === undefined ? '40' : '40' + JSON.stringify(auth));
    const reply = await this.nextText((t) => t.startsWith('40') || t.startsWith('44'), timeoutMs);
    if (!reply.startsWith('40{')) throw new Error(`${this.label}: CONNECT refused: ${reply}`);
    const sid = JSON.parse(reply.slice(2)).sid;
    const connected = await this.nextEvent('connected', timeoutMs);
    return { sid, connected, reply };
  }

  // Wait for the close; returns {code, reason, at}.
  async waitClose(timeoutMs = DEFAULT_WAIT) {
    return withTimeout(this.closed, timeoutMs, `${this.label} to be closed by the server (received: ${this.inbox.summary()})`);
  }

  // Proves the connection still works: an ack'd get_room_users must be answered.
  async ping(ackId = 77) {
    const id = ackId + Math.floor(Math.random() * 1000);
    this.send(`42${id}["get_room_users",{"room":"health"}]`);
    return this.nextText((t) => t.startsWith(`43${id}[`));
  }

  close() {
    try { this.ws.terminate(); } catch (_) { /* ignore */ }
  }
}

// ---------------------------------------------------------------------------------------------
// WebSocket over a raw TCP socket (handcrafted frames)

function encodeFrame({ fin = true, rsv = 0, opcode, payload = Buffer.alloc(0), mask = true }) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode)];
  const m = mask ? 0x80 : 0;
  if (p.length < 126) head.push(m | p.length);
  else if (p.length < 65536) head.push(m | 126, p.length >> 8, p.length & 255);
  else {
    head.push(m | 127, 0, 0, 0, 0);
    head.push((p.length >>> 24) & 255, (p.length >>> 16) & 255, (p.length >>> 8) & 255, p.length & 255);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), p]);
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(p.length);
  for (let i = 0; i < p.length; i++) body[i] = p[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), key, body]);
}

class NetWs {
  static async open(srv, path_ = '/socket.io/?EIO=4&transport=websocket') {
    const c = new NetWs(srv.port, path_);
    await c.ready;
    return c;
  }

  constructor(port, path_) {
    this.inbox = new Inbox('netws');
    this.buf = Buffer.alloc(0);
    this.upgraded = false;
    this.closeCode = undefined; // from the server's close frame; null = close frame without code
    this.sock = net.connect(port, '127.0.0.1');
    this.ended = new Promise((resolve) => this.sock.on('close', () => { this.inbox.push('$end', null); resolve(); }));
    this.sock.on('error', () => { /* reported as close */ });
    const key = crypto.randomBytes(16).toString('base64');
    this.ready = new Promise((resolve, reject) => {
      this.sock.on('connect', () => {
        this.sock.write(`GET ${path_} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      this.sock.on('data', (d) => {
        this.buf = Buffer.concat([this.buf, d]);
        if (!this.upgraded) {
          const end = this.buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = this.buf.subarray(0, end).toString('latin1');
          this.buf = this.buf.subarray(end + 4);
          if (!/^HTTP\/1\.1 101/.test(head)) { reject(new Error(`upgrade failed: ${head}`)); return; }
          this.upgraded = true;
          resolve();
        }
        this.parse();
      });
      this.sock.on('close', () => reject(new Error('connection closed before the upgrade')));
    });
  }

  parse() {
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      let len = b1 & 127;
      let off = 2;
      if (len === 126) { if (this.buf.length < 4) return; len = this.buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (this.buf.length < 10) return; len = Number(this.buf.readBigUInt64BE(2)); off = 10; }
      if (b1 & 0x80) off += 4; // servers must not mask, but skip the key if they do
      if (this.buf.length < off + len) return;
      const payload = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      const opcode = b0 & 15;
      if (opcode === 8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : null;
        this.closeReason = payload.length > 2 ? payload.subarray(2).toString('utf8') : '';
        this.inbox.push('close', this.closeCode);
      } else if (opcode === 1) {
        const text = payload.toString('utf8');
        if (text === '2') this.sock.write(encodeFrame({ opcode: 1, payload: Buffer.from('3') }));
        this.inbox.push('text', text);
      } else {
        this.inbox.push(`op${opcode}`, Buffer.from(payload));
      }
    }
  }

  write(frameOpts) { this.sock.write(encodeFrame(frameOpts)); }
  writeRaw(buf) { this.sock.write(buf); }
  sendText(s) { this.write({ opcode: 1, payload: Buffer.from(s) }); }

  // Waits for the server's close frame (or the TCP close). Returns the close code
  // (undefined = TCP closed without a close frame, null = close frame without a code).
  async waitClose(timeoutMs = DEFAULT_WAIT) {
    await this.inbox.take(['close', '$end'], null, timeoutMs).catch((e) => {
      throw new Error(`expected the server to close the connection: ${e.message}`);
    });
    return this.closeCode;
  }

  destroy() { this.sock.destroy(); }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP over `net`

// Sends `data` (string or Buffer) and collects the answer until the server closes or a full response
// (headers + Content-Length body) has arrived. Returns {status, headers, body, raw, closed}.
function httpRaw(port, data, timeoutMs = DEFAULT_WAIT) {
  return httpStart(port, data, timeoutMs).response;
}

// Like httpRaw, but also hands out the TCP socket, for requests that stay pending (a parked
// long-polling GET) and that a test may abort. Returns {response: Promise, socket, written: Promise}
// where `written` resolves once the request bytes have been handed to the kernel.
function httpStart(port, data, timeoutMs = DEFAULT_WAIT) {
  const sock = net.connect(port, '127.0.0.1');
  let writtenResolve;
  const written = new Promise((resolve) => { writtenResolve = resolve; });
  const response = new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (closed) => {
      if (done) return;
      const r = parseResponse(buf, closed);
      if (!r && !closed) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (!r) reject(new Error(`no complete HTTP response; got ${show(buf.toString('latin1'))}`));
      else resolve({ ...r, closed });
    };
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      sock.destroy();
      reject(new Error(`no complete HTTP response within ${timeoutMs} ms; got ${show(buf.toString('latin1'))}`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(data, () => writtenResolve()));
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); finish(false); });
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
  });
  response.catch(() => {}); // a test that aborts the request need not await its failure
  return { response, socket: sock, written };
}

function parseResponse(buf, closed = false) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) return null;
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const status = Number(m[1]);
  const rest = buf.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (rest.length < n) return null;
    return { status, headers, body: rest.subarray(0, n).toString('utf8'), raw: head };
  }
  if (/chunked/i.test(headers['transfer-encoding'] || '')) {
    let out = '';
    let off = 0;
    for (;;) {
      const nl = rest.indexOf('\r\n', off);
      if (nl < 0) return null;
      const size = parseInt(rest.subarray(off, nl).toString('latin1'), 16);
      if (size === 0) return { status, headers, body: out, raw: head };
      if (rest.length < nl + 2 + size + 2) return null;
      out += rest.subarray(nl + 2, nl + 2 + size).toString('utf8');
      off = nl + 2 + size + 2;
    }
  }
  if (status === 101 || status === 204 || status === 304) return { status, headers, body: '', raw: head };
  if (closed) return { status, headers, body: rest.toString('utf8'), raw: head }; // body ran until close
  return null;
}

// ---------------------------------------------------------------------------------------------
// Small utilities

let roomSeq = 0;
function uniqueRoom(prefix = 'room') {
  return `${prefix}-${process.pid}-${++roomSeq}-${crypto.randomBytes(3).toString('hex')}`;
}
let nameSeq = 0;
function uniqueName(prefix = 'user') {
  return `${prefix}${++nameSeq}_${crypto.randomBytes(2).toString('hex')}`;
}

// A JWT signed with HMAC-SHA256 (the tests make their own keys).
function signHS256(secret, payload, header = { alg: 'HS256', typ: 'JWT' }) {
  const b64u = (b) => Buffer.from(b).toString('base64url');
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  return `${input}.${b64u(crypto.createHmac('sha256', secret).update(input).digest())}`;
}

// History (issue 14): new_message and new_file data carry an offset (16 lowercase hex digits). Checks
// it and returns the data without it, for comparison with an exact object.
function dropOffset(d, what = 'data') {
  ok(d !== null && typeof d === 'object' && /^[0-9a-f]{16}$/.test(d.offset),
    `${what}: expected an offset of 16 lowercase hex digits`, d);
  const { offset, ...rest } = d; // eslint-disable-line no-unused-vars
  return rest;
}

function isUser(u) {
  return u !== null && typeof u === 'object' && typeof u.id === 'string' && u.id.length > 0 &&
    typeof u.name === 'string';
}

module.exports = {
  REPO, SERVER_BIN, SCRIPTS_DIR, T, DEFAULT_WAIT, show, eq, ok,
  startServer, assertAlive, ManagedServer, runServerToExit, copyScripts, withTimeout, waitFor, Inbox,
  tryConnect, connectClient, closeAllClients, nextEvent, request, expectAnswer, settle, expectError, ackRequest, disconnectClient,
  RawClient, NetWs, encodeFrame, httpRaw, httpStart, parseResponse,
  uniqueRoom, uniqueName, isUser, signHS256, dropOffset,
};
