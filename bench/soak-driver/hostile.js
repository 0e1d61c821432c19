'use strict';
// Refused inputs that end or never start a session, each on a connection of
// its own: every one must get a clear answer (an HTTP status, a close code,
// an `error` event or a CONNECT_ERROR) within a bound. Each returns
// {answer}: what came back; it throws when nothing did, or when the answer is
// not one of the refusals the protocol allows. `o` is the soak's options:
// with o.jwtSecret set, the sessions log in with a token, and the jwt_*
// actions (run only then) bring bad ones.
const crypto = require('node:crypto');
const net = require('node:net');
const { request, rawExchange } = require('./probe');
const { WebSocket, signJwt } = require('./clients');

const BOUND = 10000;

function wsSession(url, onOpen, settle) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let done = false;
    const finish = (err, v) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { ws.terminate(); } catch (_) { /* gone */ }
      if (err) reject(err); else resolve(v);
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${BOUND} ms`)), BOUND);
    ws.on('error', (e) => finish(e));
    ws.on('unexpected-response', (_req, res) => finish(null, `HTTP ${res.statusCode}`));
    ws.on('close', (code) => finish(null, `close ${code}`));
    ws.on('message', (raw, isBinary) => {
      const text = isBinary ? null : raw.toString('utf8');
      const v = settle(text, ws);
      if (v) finish(null, v);
    });
    ws.on('open', () => onOpen && onOpen(ws));
  });
}

const goodToken = (o) => signJwt(o.jwtSecret, { sub: 'hostile' });

// /ws: waits for `connected`, then sends `send(ws)`; an `error` frame or a close answers.
// query: the login (default: a good one).
function plainWs(port, o, send, query) {
  const q = query || (o.jwtSecret ? `token=${goodToken(o)}` : 'name=hostile');
  return wsSession(`ws://127.0.0.1:${port}/ws?${q}`, null, (text, ws) => {
    let f = null;
    try { f = JSON.parse(text); } catch (_) { return null; }
    if (f.event === 'connected') { send(ws); return null; }
    if (f.event === 'error') return `error ${f.data && f.data.code}`;
    return null;
  });
}

// Raw Engine.IO over WebSocket: after the open packet and the namespace CONNECT, sends `text`.
// auth: the CONNECT auth object (default: a good login).
function rawSio(port, o, text, auth) {
  let connected = false;
  const a = auth || (o.jwtSecret ? { token: goodToken(o) } : { name: 'hostile' });
  return wsSession(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, null, (t, ws) => {
    if (t === null) return null;
    if (t.startsWith('0{')) { ws.send(`40${JSON.stringify(a)}`); return null; }
    if (!connected && t.startsWith('40')) { connected = true; if (text !== null) ws.send(text); return null; }
    if (t.startsWith('44')) return `connect_error ${t.slice(2, 80)}`;
    if (t.startsWith('42["error"')) return `error ${(/"code":"([a-z_]+)"/.exec(t) || [])[1]}`;
    return null;
  });
}

// /ws over a bare TCP socket, for frames no WebSocket library sends: after
// the 101 and the `connected` frame, writes `frame`; resolves "close CODE"
// from the server's close frame, or "tcp close" when the socket ended without one.
function rawWsFrame(port, o, frame) {
  return new Promise((resolve, reject) => {
    const q = o.jwtSecret ? `token=${goodToken(o)}` : 'name=hostile';
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let sent = false;
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no answer within ${BOUND} ms`)); }, BOUND);
    const finish = (v) => { clearTimeout(timer); s.destroy(); resolve(v); };
    s.on('connect', () => s.write(`GET /ws?${q} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!/^HTTP\/1\.1 101/.test(buf.toString('latin1', 0, 12))) { finish(`HTTP ${buf.toString('latin1', 9, 12)}`); return; }
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      // Server frames are unmasked; short ones (< 126 bytes) carry their length in byte 1.
      while (buf.length >= 2) {
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        if (buf.length < off + len) return;
        const op = buf[0] & 0x0f;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (op === 8) { finish(`close ${payload.length >= 2 ? payload.readUInt16BE(0) : 'without code'}`); return; }
        if (op === 1 && !sent) { sent = true; s.write(frame); }
      }
    });
    s.on('end', () => finish('tcp close'));
    s.on('error', () => finish('tcp close'));
  });
}

function expect(answer, allowed) {
  if (!allowed.some((a) => (a instanceof RegExp ? a.test(answer) : a === answer))) {
    throw new Error(`answered "${answer}", expected one of ${allowed.join(' | ')}`);
  }
  return { answer };
}

const ACTIONS = {
  async http_malformed(port) {
    return expect(await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost localhost\r\n\r\n', BOUND), [/^HTTP\/1\.1 400/]);
  },
  async http_bad_admin_token(port) {
    const r = await request(port, { path: '/api/status', headers: { Authorization: 'Bearer not-the-token' }, timeoutMs: BOUND });
    return expect(`HTTP ${r.status}`, ['HTTP 401']);
  },
  async http_unknown_file(port) {
    const r = await request(port, { path: '/files/00000000000000000000/nothing.png', timeoutMs: BOUND });
    return expect(`HTTP ${r.status}`, ['HTTP 404']);
  },
  async polling_unknown_sid(port) {
    const r = await request(port, { path: '/socket.io/?EIO=4&transport=polling&sid=nosuchsession', timeoutMs: BOUND });
    return expect(`HTTP ${r.status}`, ['HTTP 400']);
  },
  async polling_bad_body(port) {
    // A session, then a POST that is not Engine.IO packets.
    const open = await request(port, { path: '/socket.io/?EIO=4&transport=polling', timeoutMs: BOUND });
    const sid = JSON.parse(open.body.toString('utf8').slice(1)).sid;
    const r = await request(port, { method: 'POST', path: `/socket.io/?EIO=4&transport=polling&sid=${sid}`,
      body: '9nonsense\x1e42[', headers: { 'Content-Type': 'text/plain' }, timeoutMs: BOUND });
    // Refused (400), or taken and the session closed: either way the session must go.
    if (r.status !== 400) {
      const after = await request(port, { path: `/socket.io/?EIO=4&transport=polling&sid=${sid}`, timeoutMs: BOUND });
      return expect(`HTTP ${r.status}, then ${after.status} ${after.body.toString('utf8').slice(0, 20)}`, [/then 400/, /then 200 1/]);
    }
    return { answer: 'HTTP 400' };
  },
  async ws_binary_on_plain(port, o) {
    return expect(await plainWs(port, o, (ws) => ws.send(Buffer.from([1, 2, 3]), { binary: true })), ['close 1003']);
  },
  async ws_not_json_on_plain(port, o) {
    return expect(await plainWs(port, o, (ws) => ws.send('{"event": "send_message", "data": ')),
      ['error invalid_payload', 'close 1002', 'close 1007']);
  },
  async ws_invalid_utf8(port, o) {
    return expect(await plainWs(port, o, (ws) => ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })), ['close 1007']);
  },
  async ws_unmasked_frame(port, o) {
    // A client frame without its mask (RFC 6455 §5.1: the server must close).
    return expect(await rawWsFrame(port, o, Buffer.from([0x81, 0x02, 0x68, 0x69])), ['close 1002']);
  },
  async ws_reserved_opcode(port, o) {
    const mask = crypto.randomBytes(4);
    return expect(await rawWsFrame(port, o, Buffer.concat([Buffer.from([0x83, 0x80]), mask])), ['close 1002']);
  },
  async sio_malformed_packet(port, o) {
    return expect(await rawSio(port, o, '42["send_message",{"room":'), ['close 1002', /^error invalid_payload/]);
  },
  async sio_unknown_namespace(port, o) {
    return expect(await rawSio(port, o, '40/nowhere,'), [/^connect_error \/nowhere,/]);
  },
  async eio_garbage(port, o) {
    return expect(await rawSio(port, o, 'Z'), ['close 1002']);
  },
  // With a JWT key: tokens that must be refused, each with its code.
  async jwt_sio_bad_signature(port, o) {
    return expect(await rawSio(port, o, null, { token: signJwt('another key of 32 bytes or more!!', { sub: 'x' }) }),
      [/"unauthorized".*"invalid_token"/]);
  },
  async jwt_sio_expired(port, o) {
    const t = Math.floor(Date.now() / 1000);
    return expect(await rawSio(port, o, null, { token: signJwt(o.jwtSecret, { sub: 'x', iat: t - 7200, exp: t - 3600 }) }),
      [/"unauthorized".*"token_expired"/]);
  },
  async jwt_sio_alg_none(port, o) {
    return expect(await rawSio(port, o, null, { token: signJwt(null, { sub: 'x' }, { alg: 'none', typ: 'JWT' }) }),
      [/"unauthorized".*"invalid_token"/]);
  },
  async jwt_sio_missing(port, o) {
    return expect(await rawSio(port, o, null, {}), [/"unauthorized".*"missing_token"/]);
  },
  async jwt_ws_garbage_token(port, o) {
    return expect(await plainWs(port, o, () => {}, 'token=not.a.token'), ['error unauthorized', 'close 4401']);
  },
};

module.exports = { ACTIONS };
