'use strict';
// Limits that keep one client from reaching past its own requests (issue 11):
//   - request smuggling: a body's framing that two readers could read two ways (two different
//     Content-Length values, Transfer-Encoding with Content-Length, a Content-Length that is not
//     digits) answers 400 and closes, and nothing after it is read as a request (RFC 9112 §6.3);
//   - the connection limit: past --max-connections a new connection is refused at once, counted in
//     /metrics and logged once per burst, while /healthz, uploads and reloads keep working; the same
//     under a real file-descriptor limit (ulimit -n 64).
// Raw TCP (node `net`) throughout: the point is what the server does with each byte.

const { test, describe, before, after } = require('node:test');
const net = require('node:net');
const h = require('./harness');

const { show, T, eq, ok } = h;


// Sends `data` on a fresh connection and collects every byte until the server closes it (or the
// bound passes). Returns {text, closed, statuses: [every response status seen, in order]}.
function exchange(port, data, timeoutMs = T(3000)) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const text = buf.toString('latin1');
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      resolve({ text, closed, statuses });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('connect', () => sock.write(data));
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
  });
}

// ---------------------------------------------------------------------------------------------

describe('request smuggling (RFC 9112 §6.3)', () => {
  let main;
  let srv;
  before(async () => { main = new h.ManagedServer(); srv = await main.start(); });
  after(async () => { await main.finish(); });

  // A second request hidden where one reader sees a body and another sees the next request.
  const SMUGGLED = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n';

  async function expectRefused(head, status, what) {
    const r = await exchange(srv.port, `POST /healthz HTTP/1.1\r\nHost: x\r\n${head}\r\n${SMUGGLED}`);
    eq(r.statuses, [status], `${what}: the responses on the connection (only the refusal; the smuggled GET /metrics must not be answered)`);
    ok(/\r\nConnection: close\r\n/.test(r.text), `${what}: the refusal says Connection: close`, r.text);
    ok(r.closed, `${what}: the server must close the connection after the refusal`, r.text);
    ok(!/space_connections/.test(r.text), `${what}: no /metrics body may come back`, r.text);
    await h.assertAlive(srv);
  }

  test('two different Content-Length fields: 400 and close; the request in the "body" is not answered', async () => {
    await expectRefused('Content-Length: 0\r\nContent-Length: 35\r\n', 400, 'Content-Length 0 then 35');
    await expectRefused('Content-Length: 35\r\nContent-Length: 0\r\n', 400, 'Content-Length 35 then 0');
    await expectRefused('Content-Length: 0, 35\r\n', 400, 'Content-Length: 0, 35');
  });

  test('Transfer-Encoding with Content-Length: 400 and close', async () => {
    await expectRefused('Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', 400, 'Transfer-Encoding then Content-Length');
    await expectRefused('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', 400, 'Content-Length then Transfer-Encoding');
  });

  test('Content-Length with a sign, inner spaces or non-digits: 400 and close', async () => {
    for (const v of ['+0', '-0', '0 0', '0x0', '0.0', '0;', '']) {
      await expectRefused(`Content-Length: ${v}\r\n`, 400, `Content-Length: "${v}"`);
    }
  });

  test('Transfer-Encoding: chunked alone: 501 (no chunked request bodies here) and close', async () => {
    await expectRefused('Transfer-Encoding: chunked\r\n', 501, 'Transfer-Encoding: chunked');
    await expectRefused('Transfer-Encoding: gzip\r\n', 400, 'Transfer-Encoding: gzip (chunked not last)');
  });

  test('identical duplicate Content-Length values collapse into one (RFC 9110 §8.6): the next request is answered', async () => {
    const r = await exchange(srv.port, 'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab' +
      'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    eq(r.statuses, [405, 200], 'the POST (405: /healthz takes GET) and the pipelined GET after its 2-byte body');
  });
});

// ---------------------------------------------------------------------------------------------
// The connection limit

const crypto = require('node:crypto');
const SERVICE_SLOTS = 4; // core/net/admit.h: connections past the limit that may ask /healthz, /metrics, /api/

// A connection that made one keep-alive request and got its 200: the server has admitted it and
// holds it (with --http-timeout 60000 it stays). Resolves to the socket, or null when refused.
function holdConn(port, timeoutMs = T(3000)) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (v) => { clearTimeout(timer); if (!v) sock.destroy(); resolve(v); };
    const timer = setTimeout(() => done(null), timeoutMs);
    sock.on('connect', () => sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    sock.on('data', (d) => { buf += d.toString('latin1'); if (/^HTTP\/1\.1 200 [^]*\r\n\r\nok\n$/.test(buf)) done(sock); });
    sock.on('close', () => done(null));
    sock.on('error', () => {});
  });
}

// A request that may be refused while the slots are busy: retried (bounded) until it is answered
// `status`. Returns {r, refused: how many attempts were refused on the way}.
async function untilAnswered(port, data, status, what) {
  let refused = 0;
  const r = await h.waitFor(async () => {
    const x = await exchange(port, data);
    if (x.statuses[0] === status) return x;
    refused++;
    return null;
  }, T(5000), what, 50);
  return { r, refused };
}

function metricValue(text, name) {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

const GET_METRICS = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n';
const GET_HEALTHZ = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
const POLL_OPEN = 'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n';

describe('connection limit (--max-connections 5)', () => {
  let main;
  let srv;
  const held = [];
  before(async () => {
    main = new h.ManagedServer({ args: ['--max-connections', '5', '--http-timeout', '60000'] });
    srv = await main.start();
  });
  after(async () => {
    for (const s of held) s.destroy();
    await main.finish();
  });

  test('past the limit a connection is refused at once, counted, logged once; /healthz and /metrics answer; accepted again after', async () => {
    ok(/max_connections=5 /.test(srv.stderr), 'the start line says max_connections=5', srv.stderr);
    for (let i = 0; i < 5; i++) {
      const s = await holdConn(srv.port);
      ok(s, `connection ${i + 1} of 5 is admitted`, srv.stderr);
      held.push(s);
    }
    // 12 more, each asking for an Engine.IO handshake: every one ends promptly, none is served.
    const EXTRA = 12;
    const extra = await Promise.all(Array.from({ length: EXTRA }, () => exchange(srv.port, POLL_OPEN)));
    extra.forEach((r, i) => {
      ok(r.closed, `extra connection ${i + 1}: the server closes it (no hanging in the backlog)`, r.text);
      ok(r.statuses.length === 0 || (r.statuses.length === 1 && r.statuses[0] === 503),
        `extra connection ${i + 1}: closed unanswered or answered 503, never served`, r.text);
    });
    ok(extra.filter((r) => r.statuses[0] === 503).length <= SERVICE_SLOTS, 'at most the service slots answer 503', extra.map((r) => r.statuses));
    const answered503 = extra.find((r) => r.statuses[0] === 503);
    if (answered503) ok(/\r\nRetry-After: 1\r\n/.test(answered503.text), 'a 503 says Retry-After', answered503.text);

    // /metrics still answers (in a service slot) and counts every refusal.
    const m = await untilAnswered(srv.port, GET_METRICS, 200, '/metrics while full');
    eq(metricValue(m.r.text, 'space_connections_max'), 5, 'space_connections_max');
    eq(metricValue(m.r.text, 'space_connections_refused_total'), EXTRA + m.refused,
      'space_connections_refused_total (the extra connections and any retry of /metrics)');
    ok(/# TYPE space_connections_refused_total counter/.test(m.r.text), 'the refusal counter is a Prometheus counter', m.r.text);
    ok(/\r\nConnection: close\r\n/.test(m.r.text), 'a service slot serves one request', m.r.text);
    await untilAnswered(srv.port, GET_HEALTHZ, 200, '/healthz while full');
    eq((srv.stderr.match(/refusing connections/g) || []).length, 1, 'one log line for the burst');
    ok(/warn  server: refusing connections reason="connection limit" max_connections=5/.test(srv.stderr),
      'the burst line says why and the limit', srv.stderr);
    for (const s of held) eq(s.destroyed, false, 'the admitted connections stay open');

    // One admitted connection leaves: a new one is served again (an Engine.IO handshake), and the
    // end of the burst is logged with its count.
    held.shift().destroy();
    const again = await untilAnswered(srv.port, POLL_OPEN, 200, 'an Engine.IO handshake once a connection left');
    ok(/^0\{"sid"/m.test(again.r.text.split('\r\n\r\n')[1] || ''), 'the handshake is answered with the open packet', again.r.text);
    await h.waitFor(() => /info  server: accepting connections again refused=\d+/.test(srv.stderr), T(2000), 'the end-of-burst log line');
  });
});

describe('connection limit under a real open-file limit (ulimit -n 64)', () => {
  let main;
  let srv;
  const flood = [];
  const ADMIN = crypto.randomBytes(16).toString('hex');
  before(async () => {
    main = new h.ManagedServer({ nofile: 64, args: ['--http-timeout', '60000'], env: { SPACE_ADMIN_TOKEN: ADMIN } });
    srv = await main.start();
  });
  after(async () => {
    for (const s of flood) s.destroy();
    h.closeAllClients();
    await main.finish();
  });

  test('100 connections on 64 descriptors: the extra ones are refused at once; /healthz, send_file and a reload still work; accepted again after', async () => {
    const max = Number((/max_connections=(\d+) fd_limit=64 /.exec(srv.stderr) || [])[1]);
    ok(max > 0 && max < 64 - SERVICE_SLOTS, 'the start line gives a limit below the 64 descriptors, leaving a reserve', srv.stderr);
    const room = h.uniqueRoom('fd');
    const a = await h.connectClient(srv, h.uniqueName('fd'));
    await h.expectAnswer(a, 'join_room', { room }, 'joined_room');

    // The flood: idle connections. `max - 1` are admitted (the client holds one), the rest end:
    // refused at once, or after a second in a service slot without a request.
    const N = 100;
    let closed = 0;
    for (let i = 0; i < N; i++) {
      const s = net.connect(srv.port, '127.0.0.1');
      s.on('close', () => { closed++; });
      s.on('error', () => {});
      flood.push(s);
    }
    const admitted = max - 1;
    await h.waitFor(() => closed >= N - admitted, T(5000), `${N - admitted} of the ${N} flood connections closed by the server (closed so far: ${closed})`);

    const hz = await untilAnswered(srv.port, GET_HEALTHZ, 200, '/healthz at the limit');
    eq(hz.r.text.split('\r\n\r\n')[1], 'ok\n', '/healthz body');

    const bytes = crypto.randomBytes(3000).toString('hex');
    const r = await h.request(a, 'send_file', { room, name: 'at-the-limit.txt', type: 'text/plain', data: Buffer.from(bytes).toString('base64') }, 'file_sent');
    eq(r.name, 'file_sent', `send_file at the limit (got ${show(r.data)})`);
    const dl = await untilAnswered(srv.port, `GET ${r.data.url} HTTP/1.1\r\nHost: x\r\n\r\n`, 503, 'a download at the limit (not a service request: 503)');
    ok(dl.r.closed, 'the 503 closes', dl.r.text);

    const rl = await untilAnswered(srv.port, `POST /api/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\nContent-Length: 0\r\n\r\n`, 200, 'POST /api/reload at the limit');
    const body = JSON.parse(rl.r.text.split('\r\n\r\n')[1]);
    eq([body.ok, body.scripts.last_error], [true, null], 'the reload succeeded');

    const m = await untilAnswered(srv.port, GET_METRICS, 200, '/metrics at the limit');
    eq(metricValue(m.r.text, 'space_connections'), max + 1, 'space_connections: the limit, and this /metrics request in its slot');
    ok(metricValue(m.r.text, 'space_connections_refused_total') >= N - admitted, 'every extra connection is counted', m.r.text);
    eq(closed, N - admitted, 'the admitted flood connections stay open');
    ok(!/Too many open files|EMFILE/.test(srv.stderr), 'nothing ran out of descriptors', srv.stderr);
    eq((srv.stderr.match(/refusing connections/g) || []).length, 1, 'one log line for the burst');

    // The flood leaves: a new client connects and chats.
    for (const s of flood) s.destroy();
    const b = await h.waitFor(async () => h.connectClient(srv, h.uniqueName('after')).catch(() => null), T(5000), 'a client connecting after the flood', 100);
    await h.expectAnswer(b, 'join_room', { room }, 'joined_room');
    ok(/accepting connections again refused=\d+/.test(srv.stderr), 'the end of the burst is logged', srv.stderr);
  });
});

test('--max-connections above what the open-file limit allows is lowered to it, with a warning', async () => {
  const s = await h.startServer({ nofile: 64, args: ['--max-connections', '1000'] });
  try {
    const max = Number((/max_connections=(\d+) fd_limit=64 /.exec(s.stderr) || [])[1]);
    ok(max > 0 && max < 64 - SERVICE_SLOTS, 'the limit in use stays below the 64 descriptors', s.stderr);
    ok(/warn  server: --max-connections 1000 is more than the open-file limit allows: using \d+/.test(s.stderr), 'a warning says so', s.stderr);
  } finally {
    await s.stopClean();
  }
});
