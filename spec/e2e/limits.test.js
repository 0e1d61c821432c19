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
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('./harness');

const { show, T } = h;

function eq(actual, expected, what) {
  assert.deepStrictEqual(actual, expected, `${what}: expected ${show(expected)}, got ${show(actual)}`);
}
function ok(cond, what, got) {
  assert.ok(cond, `${what}; got ${show(got)}`);
}

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
