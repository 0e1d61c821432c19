'use strict';
// The behaviour of the Socket.IO v5 protocol suite's reference server, checked with raw
// Engine.IO / Socket.IO frames over a WebSocket against space-server running
// examples/protocol-suite.
//
//   node --test spec/protocol-suite/
//
// SPACE_SERVER     the binary (default: <repo>/build/space-server)
// SPACE_TEST_SLOW  scales every wait bound by N (sanitizer builds)
//
// Every frame a client receives is recorded as it arrives, and a test takes the next one from
// that record, so frames that arrive together (one TCP segment) are never lost. Waits are
// bounded; nothing sleeps for synchronisation.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const fs = require('node:fs');
const WebSocket = require('ws');

const REPO = path.resolve(__dirname, '..', '..');
const SERVER_BIN = process.env.SPACE_SERVER || path.join(REPO, 'build', 'space-server');
const SCRIPTS_DIR = path.join(REPO, 'examples', 'protocol-suite');
const SLOW = Math.max(1, Number(process.env.SPACE_TEST_SLOW || 1));
const T = (ms) => Math.round(ms * SLOW);

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const CONNECT_TIMEOUT = 1000;
const MAX_PAYLOAD = 1000000;
const SERVER_ARGS = [
  '--scripts', SCRIPTS_DIR, '--host', '127.0.0.1', '--port', '0',
  '--ping-interval', String(PING_INTERVAL), '--ping-timeout', String(PING_TIMEOUT),
  '--connect-timeout', String(CONNECT_TIMEOUT), '--max-payload', String(MAX_PAYLOAD),
  '--recovery-window', '0', // the reference server has no connection state recovery: no pid, no offsets
];
const WAIT = T(2000); // default bound for a frame that should come at once

// ---------------------------------------------------------------------------------------------
// Server

let server = null; // {proc, port, stderr, exited}

function withTimeout(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function serverTail() {
  if (!server) return '';
  const s = server.stderr;
  return `\n--- server stderr (tail) ---\n${s.length > 3000 ? '...' + s.slice(-3000) : s}\n---`;
}

async function startServer() {
  if (!fs.existsSync(SERVER_BIN)) throw new Error(`server binary not found: ${SERVER_BIN} (set SPACE_SERVER)`);
  // The server reads SPACE_* variables as flags: keep the test's own out of its environment.
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SPACE_')) env[k] = v;
  const proc = spawn(SERVER_BIN, SERVER_ARGS, { cwd: REPO, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const srv = { proc, port: null, stderr: '' };
  srv.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    srv.exit = { code, signal };
    resolve(srv.exit);
  }));
  proc.on('error', (e) => { srv.stderr += `[spawn error] ${e.message}\n`; });
  proc.stderr.setEncoding('utf8');
  const listening = new Promise((resolve) => {
    proc.stderr.on('data', (d) => {
      srv.stderr = (srv.stderr + d).slice(-200000);
      const m = srv.port === null && /listening address=127\.0\.0\.1:(\d+)/.exec(srv.stderr);
      if (m) { srv.port = Number(m[1]); resolve(); }
    });
  });
  server = srv;
  const first = await withTimeout(Promise.race([listening, srv.exited.then(() => 'exited')]), T(10000),
    'the server\'s "listening address=" line').catch(() => 'timeout');
  if (first === 'exited' || first === 'timeout') {
    if (first === 'timeout') proc.kill('SIGKILL');
    throw new Error(`the server did not start (${first})${serverTail()}`);
  }
}

before(startServer);

// Should the runner stop before after() (a crash, ^C), the server goes with it.
process.on('exit', () => {
  if (server && !server.exit) try { server.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
});

after(async () => {
  if (!server) return;
  server.proc.kill('SIGTERM');
  const r = await withTimeout(server.exited, T(5000), 'server exit after SIGTERM').catch(() => null);
  if (!r) {
    server.proc.kill('SIGKILL');
    await withTimeout(server.exited, T(3000), 'server exit after SIGKILL').catch(() => {});
    throw new Error(`the server did not exit within ${T(5000)} ms of SIGTERM${serverTail()}`);
  }
  assert.equal(r.code, 0, `server exit after SIGTERM: ${JSON.stringify(r)}${serverTail()}`);
});

// ---------------------------------------------------------------------------------------------
// Client: a WebSocket whose every frame is recorded

class Peer {
  // opts.pong: answer each ping "2" with "3" (default true)
  constructor(opts = {}) {
    this.pong = opts.pong !== false;
    this.frames = []; // {text | bin, at}
    this.pings = []; // arrival times of "2"
    this.cursor = 0;
    this.waiters = [];
    this.closeInfo = null;
    this.ws = new WebSocket(`ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket`);
    this.ws.on('error', (e) => { this.error = e; });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), at: Date.now() };
        this.wake();
        resolve(this.closeInfo);
      });
    });
    this.ws.on('message', (data, isBinary) => {
      const at = Date.now();
      if (!isBinary && data.toString() === '2') {
        this.pings.push(at);
        if (this.pong && this.ws.readyState === WebSocket.OPEN) this.ws.send('3');
        this.wake();
        return;
      }
      this.frames.push(isBinary ? { bin: Buffer.from(data), at } : { text: data.toString(), at });
      this.wake();
    });
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  // Resolves when check() returns a value other than undefined; rejects after ms.
  waitFor(check, ms, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; frames so far: ` +
          `${JSON.stringify(this.frames.map(show))}; closed: ${JSON.stringify(this.closeInfo)}${serverTail()}`));
      }, ms);
      const poll = () => {
        let v;
        try { v = check(); } catch (e) { clearTimeout(timer); reject(e); return; }
        if (v !== undefined) { clearTimeout(timer); resolve(v); } else this.waiters.push(poll);
      };
      poll();
    });
  }

  // The next frame not taken yet (pings are not frames here).
  next(ms = WAIT) {
    return this.waitFor(() => {
      if (this.cursor < this.frames.length) return this.frames[this.cursor++];
      if (this.closeInfo) throw new Error(`connection closed (${JSON.stringify(this.closeInfo)}) ` +
        `while a frame was expected; frames: ${JSON.stringify(this.frames.map(show))}${serverTail()}`);
      return undefined;
    }, ms, 'the next frame');
  }

  async nextText(ms) {
    const f = await this.next(ms);
    assert.ok(f.text !== undefined, `expected a text frame, got ${show(f)}`);
    return f.text;
  }

  async nextBinary(ms) {
    const f = await this.next(ms);
    assert.ok(f.bin !== undefined, `expected a binary frame, got ${show(f)}`);
    return f.bin;
  }

  // Waits for the ping number n (1-based) to have arrived; returns its arrival time.
  ping(n, ms) {
    return this.waitFor(() => this.pings[n - 1], ms, `ping #${n}`);
  }

  send(data) { this.ws.send(data); }

  async closedWithin(ms, what) {
    return withTimeout(this.closed, ms, what).catch((e) => {
      throw new Error(`${e.message}; frames: ${JSON.stringify(this.frames.map(show))}${serverTail()}`);
    });
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}

function show(f) {
  return f.bin !== undefined ? `<binary ${f.bin.toString('hex')}>` : f.text;
}

// Opens a peer and reads the Engine.IO open packet.
async function open(opts) {
  const p = new Peer(opts);
  await withTimeout(p.opened, WAIT, 'WebSocket open');
  const first = await p.nextText();
  assert.match(first, /^0\{/, 'the first frame is the Engine.IO open packet');
  p.handshake = JSON.parse(first.slice(1));
  return p;
}

// Joins namespace nsp ("/" or "/custom") and checks the CONNECT reply; returns the socket sid.
async function join(p, nsp = '/', auth) {
  const prefix = nsp === '/' ? '40' : `40${nsp},`;
  p.send(prefix + (auth === undefined ? '' : JSON.stringify(auth)));
  const reply = await p.nextText();
  assert.ok(reply.startsWith(prefix), `CONNECT reply ${reply} starts with ${prefix}`);
  const data = JSON.parse(reply.slice(prefix.length));
  assert.deepEqual(Object.keys(data), ['sid']);
  assert.equal(typeof data.sid, 'string');
  assert.ok(data.sid.length > 0);
  return data.sid;
}

// A connection joined to "/" whose "auth" event was read.
async function joined(opts) {
  const p = await open(opts);
  await join(p, '/');
  assert.equal(await p.nextText(), '42["auth",{}]');
  return p;
}

async function withPeer(p, fn) {
  try { return await fn(p); } finally { p.close(); }
}

// ---------------------------------------------------------------------------------------------
// Engine.IO

test('the open packet carries sid, upgrades [], pingInterval, pingTimeout and maxPayload', async () => {
  await withPeer(await open(), async (p) => {
    const h = p.handshake;
    assert.deepEqual(Object.keys(h).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
    assert.equal(typeof h.sid, 'string');
    assert.ok(h.sid.length > 0);
    assert.deepEqual(h.upgrades, []);
    assert.equal(h.pingInterval, PING_INTERVAL);
    assert.equal(h.pingTimeout, PING_TIMEOUT);
    assert.equal(h.maxPayload, MAX_PAYLOAD);
  });
});

test('the server pings every pingInterval and a client that answers stays connected', async () => {
  await withPeer(await joined(), async (p) => {
    const t0 = p.frames[0].at; // the open packet
    const times = [];
    for (let n = 1; n <= 4; n++) times.push(await p.ping(n, T(PING_INTERVAL * 3)));
    const gaps = [times[0] - t0, times[1] - times[0], times[2] - times[1], times[3] - times[2]];
    for (const g of gaps) {
      // about 300 ms apart: not much sooner, and not so late that the client would time out
      assert.ok(g >= PING_INTERVAL - 50 && g <= T(PING_INTERVAL * 2.5), `ping gaps ${JSON.stringify(gaps)} ms`);
    }
    // more than pingInterval + pingTimeout has passed: the pongs kept it open
    assert.equal(p.closeInfo, null, 'still open after 4 answered pings');
    p.send('42["message","still here"]');
    assert.equal(await p.nextText(), '42["message-back","still here"]');
  });
});

test('a client that does not answer a ping is closed after pingTimeout', async () => {
  await withPeer(await joined({ pong: false }), async (p) => {
    const pingAt = await p.ping(1, T(PING_INTERVAL * 3));
    const c = await p.closedWithin(T(PING_TIMEOUT * 10), 'close after an unanswered ping');
    const after = c.at - pingAt;
    assert.ok(after >= PING_TIMEOUT - 50, `closed ${after} ms after the ping (pingTimeout ${PING_TIMEOUT})`);
    assert.equal(p.pings.length, 1, 'no second ping before the close');
  });
});

test('an Engine.IO close packet closes the connection', async () => {
  await withPeer(await open(), async (p) => {
    p.send('1');
    await p.closedWithin(WAIT, 'close after the client sent "1"');
  });
});

// ---------------------------------------------------------------------------------------------
// Engine.IO: heartbeat and timeouts fire when Node's would
//
// The official suite's heartbeat tests answer three pings on a session that never joins a
// namespace: the third ping (at ~900 ms plus the pongs' round trips) must come before the
// connect timeout (1000 ms). Node schedules each ping pingInterval after the pong and the close
// pingTimeout after the ping, on time. A server that rounded its deadlines up to a 25 ms tick
// drifted up to a tick per cycle and sent the close ("1") first, in some phases of that tick
// only: so each check runs on several sessions opened a few milliseconds apart, which spreads
// them over every phase.

const PHASES = 8;      // sessions per check
const PHASE_STEP = 3;  // ms between their starts: together they span a 25 ms tick

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Runs fn(i) for each phase, the i-th started i * PHASE_STEP ms after the first.
function inEveryPhase(fn) {
  return Promise.all(Array.from({ length: PHASES }, (_, i) => pause(i * PHASE_STEP).then(() => fn(i))));
}

// The suite's check: the third ping came. A session that got the close instead reports when
// Node would have sent that ping, from what this client saw (its second pong + pingInterval,
// in ms from the open packet). When the client itself answered so late that Node too would have
// been left less than LATE_CLIENT_MS before the connect timeout, the machine ate the margin (a
// busy machine delays the client and the server alike): that batch is run again, at most three
// times in all. A server that drifts fails while the client is on time, at the first attempt.
const LATE_CLIENT_MS = T(40);
async function threePingsInEveryPhase(session) {
  const seen = [];
  for (let attempt = 1; ; attempt++) {
    const results = await inEveryPhase(() => session());
    const missed = results.filter((r) => !r.ok);
    if (!missed.length) return;
    seen.push(missed.map((r) => r.story).join('; '));
    const clientLate = missed.every((r) => r.nodeThirdPing > CONNECT_TIMEOUT - LATE_CLIENT_MS);
    if (!clientLate || attempt === 3) {
      assert.fail(`the connect timeout (${CONNECT_TIMEOUT} ms) came before the third ping, although ` +
        `Node would have sent it in time; attempt ${attempt}; ms from the open packet: ${seen.join(' | ')}`);
    }
  }
}

// One polling request on a keep-alive connection (as the official suite's node-fetch makes).
const pollAgent = new http.Agent({ keepAlive: true });
after(() => pollAgent.destroy());

function pollRequest(sid, method = 'GET', body = undefined) {
  const q = sid ? `&sid=${sid}` : '';
  const req = new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port: server.port, method, agent: pollAgent,
      path: `/socket.io/?EIO=4&transport=polling${q}` }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
  return withTimeout(req, T(3000), `polling ${method}${serverTail()}`);
}

// The official test "heartbeat / HTTP long-polling / should send ping/pong packets", as it runs.
async function pollingHeartbeat() {
  const open = await pollRequest();
  const t0 = Date.now();
  assert.equal(open.status, 200);
  assert.match(open.body, /^0\{/);
  const sid = JSON.parse(open.body.slice(1)).sid;
  const story = [];
  let pongAt = 0;
  for (let i = 0; i < 3; i++) {
    const poll = await pollRequest(sid);
    story.push(`${JSON.stringify(poll.body)}@${Date.now() - t0}`);
    assert.equal(poll.status, 200);
    if (poll.body === '1') return { ok: false, nodeThirdPing: pongAt + PING_INTERVAL, story: story.join(' ') };
    assert.equal(poll.body, '2', `poll ${i + 1} got ${JSON.stringify(poll.body)}: ${story.join(' ')}`);
    const push = await pollRequest(sid, 'POST', '3');
    assert.equal(push.status, 200);
    pongAt = Date.now() - t0;
    story.push(`pong@${pongAt}`);
  }
  await pollRequest(sid, 'POST', '1'); // done: close it
  return { ok: true };
}

// The official test "heartbeat / WebSocket / should send ping/pong packets" (each ping answered
// at once; no CONNECT).
async function websocketHeartbeat() {
  return withPeer(await open(), async (p) => {
    const t0 = p.frames[0].at;
    await p.waitFor(() => (p.pings.length >= 3 || p.closeInfo ? true : undefined), T(CONNECT_TIMEOUT * 3),
      'three pings or the close');
    if (p.pings.length >= 3) return { ok: true };
    const story = `${p.pings.map((at) => `"2"@${at - t0}`).join(' ')} close@${p.closeInfo.at - t0}`;
    return { ok: false, nodeThirdPing: p.pings.length === 2 ? p.pings[1] - t0 + PING_INTERVAL : 0, story };
  });
}

test('long-polling: three pings each answered in turn all come before the connect timeout', async () => {
  await threePingsInEveryPhase(pollingHeartbeat);
});

test('WebSocket: three pings each answered in turn all come before the connect timeout', async () => {
  await threePingsInEveryPhase(websocketHeartbeat);
});

test('pings and the ping timeout keep Node\'s schedule to the millisecond', async () => {
  // Each session joins "/", answers three pings and then none. Beside it run the timers Node would set:
  // a ping pingInterval after the open and after each pong, the close pingTimeout after the
  // fourth ping was due. Each ping and the close should come with its Node timer; a busy machine
  // delays a few of them (a burst, often a whole batch at once), so the median of all 40 is
  // what is checked. A server that rounded its deadlines up to a 25 ms tick was late by 0-50 ms
  // depending on the phase: 12 ms or more in the median.
  const late = (await inEveryPhase(async () => withPeer(await joined({ pong: false }), async (p) => {
    const node = (from, ms) => new Promise((resolve) => setTimeout(() => resolve(Date.now()), ms - (Date.now() - from)));
    const samples = [];
    let due = node(p.frames[0].at, PING_INTERVAL);
    for (let n = 1; n <= 4; n++) {
      const at = await p.ping(n, T(PING_INTERVAL * 4));
      samples.push(at - await due);
      if (n < 4) {
        p.send('3');
        due = node(Date.now(), PING_INTERVAL);
      } else {
        due = node(at - samples[samples.length - 1], PING_TIMEOUT); // from when the ping was due
      }
    }
    const c = await p.closedWithin(T(PING_TIMEOUT * 4), 'close after the unanswered fourth ping');
    samples.push(c.at - await due);
    assert.equal(p.pings.length, 4, 'four pings, then the close');
    return samples;
  }))).flat().sort((x, y) => x - y);
  const median = late[late.length >> 1];
  assert.ok(median <= T(5), `pings and closes came ${JSON.stringify(late)} ms after Node's timers (median ${median})`);
});

// ---------------------------------------------------------------------------------------------
// Socket.IO: connect

test('a client that joins no namespace within connectTimeout is closed', async () => {
  // Pings are answered, so only the connect timeout can close it.
  await withPeer(await open(), async (p) => {
    const openedAt = p.frames[0].at;
    const c = await p.closedWithin(T(CONNECT_TIMEOUT * 4), 'close for want of a CONNECT');
    const after = c.at - openedAt;
    assert.ok(after >= CONNECT_TIMEOUT - 100, `closed ${after} ms after the open packet (connectTimeout ${CONNECT_TIMEOUT})`);
    assert.ok(p.pings.length >= 1, 'pings were answered meanwhile');
    assert.equal(p.frames.length, 1, `nothing but the open packet: ${JSON.stringify(p.frames.map(show))}`);
  });
});

test('a client that joins in time is not closed by the connect timeout', async () => {
  await withPeer(await joined(), async (p) => {
    await p.ping(Math.ceil((CONNECT_TIMEOUT * 1.5) / PING_INTERVAL), T(CONNECT_TIMEOUT * 4));
    assert.equal(p.closeInfo, null);
  });
});

test('CONNECT to "/" answers 40{"sid"} then emits auth with {} when no auth was sent', async () => {
  await withPeer(await open(), async (p) => {
    const sid = await join(p, '/');
    assert.notEqual(sid, p.handshake.sid, 'the socket id is not the Engine.IO id');
    assert.equal(await p.nextText(), '42["auth",{}]');
  });
});

test('CONNECT to "/" with an auth payload emits it back in auth', async () => {
  await withPeer(await open(), async (p) => {
    await join(p, '/', { token: '123' });
    assert.equal(await p.nextText(), '42["auth",{"token":"123"}]');
  });
});

test('auth comes back with nested values and types intact', async () => {
  await withPeer(await open(), async (p) => {
    await join(p, '/', { user: { name: 'ann', tags: ['a', 1, 2.5, true, null] } });
    const text = await p.nextText();
    assert.ok(text.startsWith('42'), text);
    assert.deepEqual(JSON.parse(text.slice(2)), ['auth', { user: { name: 'ann', tags: ['a', 1, 2.5, true, null] } }]);
  });
});

test('the /custom namespace answers its CONNECT and emits its own auth', async () => {
  await withPeer(await open(), async (p) => {
    await join(p, '/custom');
    assert.equal(await p.nextText(), '42/custom,["auth",{}]');
  });
  await withPeer(await open(), async (p) => {
    await join(p, '/custom', { token: 'abc' });
    assert.equal(await p.nextText(), '42/custom,["auth",{"token":"abc"}]');
  });
});

test('"/" and "/custom" on one connection each get their own sid and auth', async () => {
  await withPeer(await open(), async (p) => {
    const main = await join(p, '/', { who: 'main' });
    assert.equal(await p.nextText(), '42["auth",{"who":"main"}]');
    const custom = await join(p, '/custom', { who: 'custom' });
    assert.equal(await p.nextText(), '42/custom,["auth",{"who":"custom"}]');
    assert.notEqual(main, custom);
  });
});

test('CONNECT to an unknown namespace is refused with Invalid namespace', async () => {
  await withPeer(await open(), async (p) => {
    p.send('40/random');
    assert.equal(await p.nextText(), '44/random,{"message":"Invalid namespace"}');
    // the connection itself stays usable
    await join(p, '/');
    assert.equal(await p.nextText(), '42["auth",{}]');
  });
  await withPeer(await open(), async (p) => {
    p.send('40/random,{"token":"x"}');
    assert.equal(await p.nextText(), '44/random,{"message":"Invalid namespace"}');
  });
});

// ---------------------------------------------------------------------------------------------
// Socket.IO: events and acks

test('message comes back as message-back with the same plain arguments', async () => {
  await withPeer(await joined(), async (p) => {
    p.send('42["message",1,"2",{"3":[true]}]');
    assert.equal(await p.nextText(), '42["message-back",1,"2",{"3":[true]}]');
    p.send('42["message"]');
    assert.equal(await p.nextText(), '42["message-back"]');
    p.send('42["message",null,[],{},-0.5,"é\\n"]');
    const text = await p.nextText();
    assert.deepEqual(JSON.parse(text.slice(2)), ['message-back', null, [], {}, -0.5, 'é\n']);
  });
});

test('message with one binary attachment comes back with the same attachment', async () => {
  await withPeer(await joined(), async (p) => {
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
    p.send('451-["message",{"_placeholder":true,"num":0}]');
    p.send(bytes);
    assert.equal(await p.nextText(), '451-["message-back",{"_placeholder":true,"num":0}]');
    assert.ok((await p.nextBinary()).equals(bytes));
  });
});

test('message with two attachments and plain arguments keeps their order', async () => {
  await withPeer(await joined(), async (p) => {
    p.send('452-["message","a",{"_placeholder":true,"num":0},{"k":{"_placeholder":true,"num":1}}]');
    p.send(Buffer.from([1, 2, 3]));
    p.send(Buffer.from([4, 5, 6]));
    assert.equal(await p.nextText(),
      '452-["message-back","a",{"_placeholder":true,"num":0},{"k":{"_placeholder":true,"num":1}}]');
    assert.ok((await p.nextBinary()).equals(Buffer.from([1, 2, 3])));
    assert.ok((await p.nextBinary()).equals(Buffer.from([4, 5, 6])));
  });
});

test('message-with-ack answers the ack with the same arguments and id', async () => {
  await withPeer(await joined(), async (p) => {
    p.send('42456["message-with-ack",1,"2",{"3":[false]}]');
    assert.equal(await p.nextText(), '43456[1,"2",{"3":[false]}]');
    p.send('420["message-with-ack"]');
    assert.equal(await p.nextText(), '430[]');
  });
});

test('message-with-ack with binary arguments answers with a binary ack', async () => {
  await withPeer(await joined(), async (p) => {
    p.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    p.send(Buffer.from([1, 2, 3]));
    p.send(Buffer.from([4, 5, 6]));
    assert.equal(await p.nextText(), '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    assert.ok((await p.nextBinary()).equals(Buffer.from([1, 2, 3])));
    assert.ok((await p.nextBinary()).equals(Buffer.from([4, 5, 6])));
  });
});

test('events and acks keep the order they were sent in', async () => {
  await withPeer(await joined(), async (p) => {
    p.send('42["message",1]');
    p.send('421["message-with-ack",2]');
    p.send('451-["message",{"_placeholder":true,"num":0}]');
    p.send(Buffer.from([3]));
    p.send('42["message",4]');
    assert.equal(await p.nextText(), '42["message-back",1]');
    assert.equal(await p.nextText(), '431[2]');
    assert.equal(await p.nextText(), '451-["message-back",{"_placeholder":true,"num":0}]');
    assert.ok((await p.nextBinary()).equals(Buffer.from([3])));
    assert.equal(await p.nextText(), '42["message-back",4]');
  });
});

// ---------------------------------------------------------------------------------------------
// Socket.IO: disconnect and malformed packets

test('after DISCONNECT from "/" the connection stays up, and an event to "/" then closes it', async () => {
  await withPeer(await joined(), async (p) => {
    p.send('41');
    // still alive: the next ping comes (and is answered)
    await p.ping(1, T(PING_INTERVAL * 3));
    assert.equal(p.closeInfo, null);
    p.send('42["message","to a namespace left"]');
    await p.closedWithin(WAIT, 'close after an event to a namespace the client left');
    assert.deepEqual(p.frames.slice(3).map(show), [], 'no message-back after DISCONNECT');
  });
});

test('after DISCONNECT from /custom, "/" still answers on the same connection', async () => {
  await withPeer(await joined(), async (p) => {
    await join(p, '/custom');
    assert.equal(await p.nextText(), '42/custom,["auth",{}]');
    p.send('41/custom,');
    p.send('42["message","message to main namespace"]');
    assert.equal(await p.nextText(), '42["message-back","message to main namespace"]');
    p.send('42/custom,["message","x"]');
    await p.closedWithin(WAIT, 'close after an event to /custom once it was left');
  });
});

for (const [name, packet] of [
  ['an unknown packet type', '4abc'],
  ['an event payload that is not an array', '42{}'],
  ['an ack id that is not a number', '42abc["message-with-ack",1]'],
]) {
  test(`a packet with ${name} closes the connection`, async () => {
    await withPeer(await joined(), async (p) => {
      p.send(packet);
      await p.closedWithin(WAIT, `close after ${packet}`);
    });
  });
}

test('a malformed first packet closes the connection before any namespace is joined', async () => {
  await withPeer(await open(), async (p) => {
    p.send('4abc');
    await p.closedWithin(WAIT, 'close after 4abc as the first packet');
  });
});
