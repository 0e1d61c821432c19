'use strict';
// Cross-origin requests (PROTOCOL.md §1 "Cross-origin", socketio-wire.md §1.10): with --cors-origin
// (repeatable, `*` = any, env SPACE_CORS_ORIGIN comma-separated) the polling responses carry the CORS
// headers of Node's `cors` middleware and OPTIONS preflights are answered 204; a browser Origin that
// is neither the server's own (its authority = the Host header) nor allowed gets 403 on polling, on
// the Socket.IO WebSocket upgrade and on /ws; requests without Origin pass.
// Last, a real browser: headless chromium loads a page from another loopback port that uses
// socket.io-client's browser bundle (default transports) against the server, with and without
// --cors-origin for the page's origin.

const { test, describe, before, after } = require('node:test');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const h = require('./harness');

const { show, T, eq, ok } = h;
const POLL = '/socket.io/?EIO=4&transport=polling';
const ALLOWED = 'http://allowed.example';
const OTHER = 'http://other.example:8080';


// Every header of a response head, repeated ones joined with ", " (as HTTP allows), names lower-cased.
function headersOf(r) {
  const out = {};
  for (const line of r.raw.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    out[k] = out[k] === undefined ? v : `${out[k]}, ${v}`;
  }
  return out;
}
const tokens = (v) => (v || '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);

// One raw request; extra headers as ['Name: value']. host: the Host header (default 127.0.0.1:<port>).
function request(server, method, target, { headers = [], body, host, connection = 'close' } = {}) {
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${host || `127.0.0.1:${server.port}`}`, `Connection: ${connection}`, ...headers];
  let data = lines.join('\r\n');
  if (body !== undefined) data += `\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(body)}`;
  data += '\r\n\r\n' + (body || '');
  return h.httpRaw(server.port, data).then((r) => ({ ...r, all: headersOf(r) }));
}
const wsUpgrade = (server, target, headers = [], host) => request(server, 'GET', target, {
  host,
  connection: 'Upgrade',
  headers: ['Upgrade: websocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13', ...headers],
});
const SIO_WS = '/socket.io/?EIO=4&transport=websocket';

async function handshake(server, origin, host) {
  const r = await request(server, 'GET', POLL, { headers: origin ? [`Origin: ${origin}`] : [], host });
  return r;
}

function assertEchoed(r, origin, what) {
  eq(r.all['access-control-allow-origin'], origin, `${what}: Access-Control-Allow-Origin (echo of the Origin)`);
  ok(tokens(r.all.vary).includes('origin'), `${what}: Vary must include Origin`, r.all.vary);
  eq(r.all['access-control-allow-credentials'], 'true', `${what}: Access-Control-Allow-Credentials`);
}

function describeResponse(r) {
  return `HTTP ${r.status} ${show(r.all || r.headers)} body ${show(r.body)}`;
}

const servers = [];
async function start(args = [], env = {}) {
  const s = await h.startServer({ args, env });
  servers.push(s);
  return s;
}
after(async () => {
  const errors = [];
  for (const s of servers) await s.stopClean().catch((e) => errors.push(e.message));
  if (errors.length) throw new Error(errors.join('\n'));
});

// ---------------------------------------------------------------------------------------------

describe('without --cors-origin', () => {
  let srv;
  before(async () => { srv = await start(); });

  test('no Origin passes everywhere: polling handshake 200, Socket.IO WebSocket 101, /ws 101', async () => {
    eq((await handshake(srv)).status, 200, 'polling handshake without Origin');
    eq((await wsUpgrade(srv, SIO_WS)).status, 101, 'Socket.IO WebSocket without Origin');
    eq((await wsUpgrade(srv, '/ws?name=x')).status, 101, '/ws without Origin');
  });

  test('same origin (Origin = http://<Host header>) passes, without CORS headers', async () => {
    const origin = `http://127.0.0.1:${srv.port}`;
    const r = await handshake(srv, origin);
    eq(r.status, 200, `polling handshake with Origin ${origin} (${describeResponse(r)})`);
    eq(r.all['access-control-allow-origin'], undefined, 'no Access-Control-Allow-Origin without --cors-origin (Node default)');
    eq((await wsUpgrade(srv, SIO_WS, [`Origin: ${origin}`])).status, 101, 'Socket.IO WebSocket, same origin');
    eq((await wsUpgrade(srv, '/ws?name=x', [`Origin: ${origin}`])).status, 101, '/ws, same origin');
    const host = `localhost:${srv.port}`;
    eq((await handshake(srv, `http://${host}`, host)).status, 200, 'Origin http://localhost:<port> with Host localhost:<port>');
  });

  for (const [label, origin, host] of [
    ['a foreign site', 'http://evil.example', undefined],
    ['the same host on another port', 'http://127.0.0.1:1', undefined],
    ['127.0.0.1 while the Host header says localhost', 'ORIGIN_127', 'localhost'],
    ['"null" (sandboxed page, file://)', 'null', undefined],
  ]) {
    test(`Origin of ${label} → 403 on polling, on the Socket.IO WebSocket and on /ws`, async () => {
      const o = origin === 'ORIGIN_127' ? `http://127.0.0.1:${srv.port}` : origin;
      const hh = host ? `${host}:${srv.port}` : undefined;
      const r = await handshake(srv, o, hh);
      eq(r.status, 403, `polling handshake with Origin ${o} (${describeResponse(r)})`);
      eq(r.body, '{"code":4,"message":"Forbidden"}', 'polling 403 body');
      const w = await wsUpgrade(srv, SIO_WS, [`Origin: ${o}`], hh);
      eq(w.status, 403, `Socket.IO WebSocket upgrade with Origin ${o} (${describeResponse(w)})`);
      const p = await wsUpgrade(srv, '/ws?name=x', [`Origin: ${o}`], hh);
      eq(p.status, 403, `/ws upgrade with Origin ${o} (${describeResponse(p)})`);
    });
  }

  test('OPTIONS without --cors-origin falls through to Engine.IO: 400 {"code":2,"message":"Bad handshake method"}, no CORS headers', async () => {
    const r = await request(srv, 'OPTIONS', POLL, { headers: [`Origin: http://127.0.0.1:${srv.port}`, 'Access-Control-Request-Method: POST'] });
    eq(r.status, 400, `status (${describeResponse(r)})`);
    eq(r.body, '{"code":2,"message":"Bad handshake method"}', 'body');
    eq(r.all['access-control-allow-origin'], undefined, 'Access-Control-Allow-Origin');
  });
});

describe(`--cors-origin ${ALLOWED} (a specific origin)`, () => {
  let srv;
  before(async () => { srv = await start(['--cors-origin', ALLOWED]); });

  test('preflight OPTIONS → 204 with Allow-Origin (echo), Allow-Credentials, Allow-Methods, Allow-Headers (echo), Vary', async () => {
    const r = await request(srv, 'OPTIONS', POLL, {
      headers: [`Origin: ${ALLOWED}`, 'Access-Control-Request-Method: POST', 'Access-Control-Request-Headers: content-type,x-custom-header'],
    });
    eq(r.status, 204, `status (${describeResponse(r)})`);
    assertEchoed(r, ALLOWED, 'preflight');
    eq(r.all['access-control-allow-methods'], 'GET,HEAD,PUT,PATCH,POST,DELETE', 'Access-Control-Allow-Methods');
    eq(r.all['access-control-allow-headers'], 'content-type,x-custom-header', 'Access-Control-Allow-Headers (the request\'s list)');
    ok(tokens(r.all.vary).includes('access-control-request-headers'), 'Vary must include Access-Control-Request-Headers', r.all.vary);
    eq(r.body, '', 'preflight body');
  });

  test('preflight of a session request (sid in the query) is answered the same way', async () => {
    const s = await handshake(srv, ALLOWED);
    const sid = JSON.parse(s.body.slice(1)).sid;
    const r = await request(srv, 'OPTIONS', `${POLL}&sid=${sid}`, { headers: [`Origin: ${ALLOWED}`, 'Access-Control-Request-Method: POST'] });
    eq(r.status, 204, `status (${describeResponse(r)})`);
    assertEchoed(r, ALLOWED, 'preflight with sid');
  });

  test('polling handshake, POST, GET and an error answer from the allowed origin carry the echoed origin with credentials', async () => {
    const hs = await handshake(srv, ALLOWED);
    eq(hs.status, 200, `handshake (${describeResponse(hs)})`);
    assertEchoed(hs, ALLOWED, 'handshake');
    const sid = JSON.parse(hs.body.slice(1)).sid;
    const post = await request(srv, 'POST', `${POLL}&sid=${sid}`, { headers: [`Origin: ${ALLOWED}`], body: '40{"name":"corsy"}' });
    eq([post.status, post.body], [200, 'ok'], 'POST');
    assertEchoed(post, ALLOWED, 'POST');
    const get = await request(srv, 'GET', `${POLL}&sid=${sid}`, { headers: [`Origin: ${ALLOWED}`] });
    eq(get.status, 200, 'GET');
    ok(get.body.startsWith('40{"sid"'), 'GET carries the CONNECT reply', get.body);
    assertEchoed(get, ALLOWED, 'GET');
    const bad = await request(srv, 'GET', `${POLL}&sid=AAAAAAAAAAAAAAAAAAAA`, { headers: [`Origin: ${ALLOWED}`] });
    eq(bad.status, 400, 'unknown sid');
    assertEchoed(bad, ALLOWED, 'an error answer (Node runs the CORS middleware first)');
  });

  test('the allowed origin may open the Socket.IO WebSocket and /ws', async () => {
    eq((await wsUpgrade(srv, SIO_WS, [`Origin: ${ALLOWED}`])).status, 101, 'Socket.IO WebSocket from the allowed origin');
    eq((await wsUpgrade(srv, '/ws?name=x', [`Origin: ${ALLOWED}`])).status, 101, '/ws from the allowed origin');
  });

  test('another origin → 403 on polling, Socket.IO WebSocket and /ws; its preflight gets no Allow-Origin', async () => {
    const r = await handshake(srv, OTHER);
    eq(r.status, 403, `polling from ${OTHER} (${describeResponse(r)})`);
    eq(r.all['access-control-allow-origin'], undefined, 'no Access-Control-Allow-Origin for a refused origin');
    eq((await wsUpgrade(srv, SIO_WS, [`Origin: ${OTHER}`])).status, 403, 'Socket.IO WebSocket from another origin');
    eq((await wsUpgrade(srv, '/ws?name=x', [`Origin: ${OTHER}`])).status, 403, '/ws from another origin');
    const pre = await request(srv, 'OPTIONS', POLL, { headers: [`Origin: ${OTHER}`, 'Access-Control-Request-Method: POST'] });
    ok(pre.status === 403 || pre.all['access-control-allow-origin'] === undefined,
      `the preflight of another origin must not be allowed (403, or no Access-Control-Allow-Origin) (${describeResponse(pre)})`, pre.all);
  });

  test('the origin must match exactly: scheme, host and port (https://allowed.example, http://allowed.example:80, a suffix)', async () => {
    for (const o of ['https://allowed.example', 'http://allowed.example:80', 'http://allowed.example.evil.example', 'http://xallowed.example']) {
      const r = await handshake(srv, o);
      eq(r.status, 403, `polling from ${o} (${describeResponse(r)})`);
    }
  });

  test('no Origin and the server\'s own origin still pass', async () => {
    eq((await handshake(srv)).status, 200, 'no Origin');
    eq((await handshake(srv, `http://127.0.0.1:${srv.port}`)).status, 200, 'own origin');
  });
});

describe('--cors-origin * (any origin)', () => {
  let srv;
  before(async () => { srv = await start(['--cors-origin', '*']); });

  test('any origin: polling answers Access-Control-Allow-Origin: * without credentials; WebSocket and /ws open', async () => {
    const r = await handshake(srv, OTHER);
    eq(r.status, 200, `handshake (${describeResponse(r)})`);
    eq(r.all['access-control-allow-origin'], '*', 'Access-Control-Allow-Origin');
    ok(r.all['access-control-allow-credentials'] === undefined, 'no Access-Control-Allow-Credentials with *', r.all);
    eq((await wsUpgrade(srv, SIO_WS, [`Origin: ${OTHER}`])).status, 101, 'Socket.IO WebSocket');
    eq((await wsUpgrade(srv, '/ws?name=x', [`Origin: ${OTHER}`])).status, 101, '/ws');
  });

  test('preflight → 204, Allow-Origin *, Allow-Methods, Allow-Headers echoed, Vary: Access-Control-Request-Headers', async () => {
    const r = await request(srv, 'OPTIONS', POLL, { headers: [`Origin: ${OTHER}`, 'Access-Control-Request-Method: POST', 'Access-Control-Request-Headers: x-a, x-b'] });
    eq(r.status, 204, `status (${describeResponse(r)})`);
    eq(r.all['access-control-allow-origin'], '*', 'Access-Control-Allow-Origin');
    eq(r.all['access-control-allow-methods'], 'GET,HEAD,PUT,PATCH,POST,DELETE', 'Access-Control-Allow-Methods');
    eq(r.all['access-control-allow-headers'], 'x-a, x-b', 'Access-Control-Allow-Headers');
    ok(tokens(r.all.vary).includes('access-control-request-headers'), 'Vary', r.all.vary);
  });
});

describe(`--cors-origin ${ALLOWED} --cors-origin * (a listed origin and any)`, () => {
  let srv;
  before(async () => { srv = await start(['--cors-origin', ALLOWED, '--cors-origin', '*']); });

  test('the listed origin is echoed with credentials; any other gets *', async () => {
    assertEchoed(await handshake(srv, ALLOWED), ALLOWED, 'listed origin');
    const r = await handshake(srv, OTHER);
    eq([r.status, r.all['access-control-allow-origin']], [200, '*'], 'another origin: status and Access-Control-Allow-Origin');
  });
});

describe('SPACE_CORS_ORIGIN=http://a.example,http://b.example:3000 (environment)', () => {
  let srv;
  before(async () => { srv = await start([], { SPACE_CORS_ORIGIN: 'http://a.example,http://b.example:3000' }); });

  test('each listed origin is allowed and echoed; another is refused', async () => {
    assertEchoed(await handshake(srv, 'http://a.example'), 'http://a.example', 'first listed origin');
    assertEchoed(await handshake(srv, 'http://b.example:3000'), 'http://b.example:3000', 'second listed origin');
    eq((await handshake(srv, 'http://c.example')).status, 403, 'an unlisted origin');
    eq((await wsUpgrade(srv, SIO_WS, ['Origin: http://b.example:3000'])).status, 101, 'WebSocket from a listed origin');
  });
});

// ---------------------------------------------------------------------------------------------
// A real browser

function findChromium() {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      const p = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
      if (p) return p;
    } catch (_) { /* not there */ }
  }
  return null;
}
const CHROMIUM = process.env.SPACE_TEST_CHROMIUM || findChromium();
const BUNDLE = path.join(h.REPO, 'spec', 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js');

// The page: loads the bundle, reports each step by POSTing JSON to /result on its own origin.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>space cors test</title><script src="/socket.io.min.js"></script></head>
<body><script>
const q = new URLSearchParams(location.search);
const server = q.get('server');
const report = (o) => fetch('/result', { method: 'POST', body: JSON.stringify(o) });
report({ stage: 'loaded', io: typeof io });
function attempt(label, opts) {
  return new Promise((resolve) => {
    const socket = io(server, { reconnection: false, timeout: 8000, auth: { name: q.get('name') }, ...opts });
    const engine = socket.io.engine;
    report({ stage: 'created', label, transport: engine && engine.transport && engine.transport.name });
    if (engine) engine.on('upgrade', (t) => report({ stage: 'upgrade', label, transport: t.name }));
    socket.on('connect_error', (e) => { report({ stage: 'connect_error', label, message: e.message }); resolve(); });
    socket.on('connected', async (d) => {
      report({ stage: 'connected', label, user: d.user, transport: socket.io.engine.transport.name });
      if (q.get('mode') !== 'chat') { socket.disconnect(); resolve(); return; }
      const room = q.get('room');
      socket.on('new_message', (m) => report({ stage: 'new_message', label, data: m, transport: socket.io.engine.transport.name }));
      const joined = await socket.timeout(8000).emitWithAck('join_room', { room }).catch((e) => ({ error: String(e) }));
      report({ stage: 'joined', label, data: joined });
      const sent = await socket.timeout(8000).emitWithAck('send_message', { room, text: 'hello from chromium' }).catch((e) => ({ error: String(e) }));
      report({ stage: 'sent', label, data: sent, transport: socket.io.engine.transport.name });
      resolve();
    });
  });
}
(async () => {
  if (q.get('mode') === 'chat') await attempt('default', {});
  else {
    await attempt('default', {});
    await attempt('websocket-only', { transports: ['websocket'] });
    report({ stage: 'done' });
  }
})();
</script></body></html>`;

// A tiny site on another loopback port: the page, the bundle, and /result collecting the reports.
async function startPageSite() {
  const results = new h.Inbox('page');
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url.startsWith('/?')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    } else if (req.method === 'GET' && req.url === '/socket.io.min.js') {
      res.writeHead(200, { 'Content-Type': 'application/javascript' });
      res.end(fs.readFileSync(BUNDLE));
    } else if (req.method === 'POST' && req.url === '/result') {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        let o;
        try { o = JSON.parse(body); } catch (_) { o = { stage: 'unparsable', body }; }
        results.push(o.stage, o);
        res.writeHead(204);
        res.end();
      });
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: server.address().port, results, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

function launchChromium(url) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'space-chromium-'));
  const proc = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
    `--user-data-dir=${profile}`, url], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d) => { stderr = (stderr + d).slice(-20000); });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  proc.on('error', (e) => { stderr += `[spawn error] ${e.message}`; });
  return {
    get stderr() { return stderr; },
    async stop() {
      try { process.kill(-proc.pid, 'SIGKILL'); } catch (_) { /* gone */ }
      await h.withTimeout(exited, T(5000), 'chromium to exit').catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

const skipBrowser = CHROMIUM ? false : 'chromium is not installed (apt-get install chromium; .ci/install lists it)';

describe('a real browser (headless chromium) on another origin, socket.io-client default transports', { skip: skipBrowser }, () => {
  test('with --cors-origin http://127.0.0.1:<page port>: the page connects, upgrades to websocket and chats with a node client', async () => {
    const site = await startPageSite();
    const pageOrigin = `http://127.0.0.1:${site.port}`;
    const srv = await start(['--cors-origin', pageOrigin]);
    const room = h.uniqueRoom('browser');
    const peer = await h.connectClient(srv, h.uniqueName('peer'));
    await h.expectAnswer(peer, 'join_room', { room }, 'joined_room');
    const name = h.uniqueName('chromium');
    const browser = launchChromium(`${pageOrigin}/?mode=chat&server=${encodeURIComponent(srv.url)}&name=${name}&room=${room}`);
    const why = () => `\npage reports: ${site.results.summary()}\n--- chromium stderr (tail) ---\n${browser.stderr.slice(-1500)}`;
    try {
      const stage = (s, ms = T(15000)) => site.results.take(s, null, ms).then((it) => it.data).catch((e) => {
        throw new Error(`${e.message}${why()}`);
      });
      eq((await stage('loaded')).io, 'function', 'the page loaded socket.io-client\'s browser bundle (typeof io)');
      eq((await stage('created')).transport, 'polling', 'the page\'s first transport (default transports)');
      const first = await site.results.take(['connected', 'connect_error'], null, T(15000)).catch((e) => { throw new Error(`${e.message}${why()}`); });
      eq(first.name, 'connected', `the page's connection from ${pageOrigin} (allowed) ${show(first.data)}`);
      eq(first.data.user.name, name, 'connected.user.name in the page');
      const joined = await stage('joined');
      eq(joined.data.room, room, `join_room ack in the page ${show(joined.data)}`);
      const sent = await stage('sent');
      ok(sent.data && typeof sent.data.id === 'string', 'send_message ack in the page', sent.data);
      const nm = await h.nextEvent(peer, 'new_message', T(5000));
      eq([nm.text, nm.user.name], ['hello from chromium', name], 'the node client got the page\'s message');
      const up = await stage('upgrade');
      eq(up.transport, 'websocket', 'the page upgraded to');
      await h.expectAnswer(peer, 'send_message', { room, text: 'hello chromium' }, 'message_sent');
      const got = await stage('new_message');
      eq([got.data.text, got.data.user.name], ['hello chromium', peer.connectedData.user.name], 'the page got the node client\'s message');
      eq(got.transport, 'websocket', 'the page\'s transport when the reply came');
    } finally {
      await browser.stop();
      h.closeAllClients();
      await site.close();
    }
  });

  test('without --cors-origin: the page on another origin is refused (polling and websocket-only attempts fail with connect_error)', async () => {
    const site = await startPageSite();
    const pageOrigin = `http://127.0.0.1:${site.port}`;
    const srv = await start();
    const browser = launchChromium(`${pageOrigin}/?mode=refused&server=${encodeURIComponent(srv.url)}&name=refused`);
    const why = () => `\npage reports: ${site.results.summary()}\n--- chromium stderr (tail) ---\n${browser.stderr.slice(-1500)}`;
    try {
      await site.results.take('done', null, T(20000)).catch((e) => { throw new Error(`${e.message}${why()}`); });
      const loaded = site.results.all('loaded');
      eq(loaded.map((x) => x.io), ['function'], `the page loaded socket.io-client's bundle${why()}`);
      eq(site.results.all('connected'), [], `no attempt may connect from ${pageOrigin}${why()}`);
      eq(site.results.all('connect_error').map((x) => x.label), ['default', 'websocket-only'], `attempts that failed with connect_error${why()}`);
      // the refusals were the server's: a request like the page's gets 403
      eq((await handshake(srv, pageOrigin)).status, 403, 'status of a polling handshake with the page\'s Origin');
    } finally {
      await browser.stop();
      await site.close();
    }
  });
});
