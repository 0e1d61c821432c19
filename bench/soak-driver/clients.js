'use strict';
// The soak's clients behind one interface, so that the churn can treat the
// three protocols alike:
//   connect()                   -> the `connected` data (rejects on refusal or timeout)
//   request(event, data, ms)    -> {ok, data}: the answer (the ack on Socket.IO, the frame with
//                                  the request's id on /ws); ok is false for an `error` answer
//   onPush(fn)                  -> fn(event, data) for every event the server sends on its own
//   close('clean' | 'abrupt')   -> the client's own close; abrupt drops the TCP connection (where
//                                  there is one: not on polling); returns the one done
//   unexpectedClose             -> null, or why the connection ended without close() being called
const crypto = require('node:crypto');
const path = require('node:path');
const { io } = require(path.join(__dirname, '..', '..', 'spec', 'node_modules', 'socket.io-client'));
const WebSocket = require(path.join(__dirname, '..', '..', 'spec', 'node_modules', 'ws'));

const isError = (d) => d !== null && typeof d === 'object' && typeof d.code === 'string' &&
  typeof d.message === 'string' && 'event' in d;

function timeoutError(what, ms) { return new Error(`no answer to ${what} within ${ms} ms`); }

// Socket.IO over websocket only, polling only, or polling upgraded to websocket.
// cred: {name} in development mode, {token} with a JWT key.
class SioClient {
  constructor(kind, port, cred) {
    this.kind = kind;
    this.unexpectedClose = null;
    this.closing = false;
    this.pushFns = [];
    const transports = { 'sio-ws': ['websocket'], 'sio-polling': ['polling'], 'sio-upgrade': ['polling', 'websocket'] }[kind];
    this.socket = io(`http://127.0.0.1:${port}`, {
      transports, upgrade: kind === 'sio-upgrade', reconnection: false, forceNew: true, autoConnect: false,
      timeout: 15000, auth: cred,
    });
    this.socket.onAny((event, data) => { for (const fn of this.pushFns) fn(event, data); });
    this.socket.on('disconnect', (reason) => {
      if (!this.closing && !this.unexpectedClose) this.unexpectedClose = `disconnect: ${reason}`;
    });
  }

  connect(ms = 15000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(timeoutError('connect', ms)), ms);
      this.socket.once('connected', (d) => { clearTimeout(timer); resolve(d); });
      this.socket.once('connect_error', (e) => { clearTimeout(timer); reject(new Error(`connect_error: ${e.message}`)); });
      this.socket.connect();
    });
  }

  async request(event, data, ms = 15000) {
    let d;
    try {
      d = await this.socket.timeout(ms).emitWithAck(event, data);
    } catch (_) {
      throw timeoutError(event, ms);
    }
    return { ok: !isError(d), data: d };
  }

  onPush(fn) { this.pushFns.push(fn); }

  close(mode) {
    this.closing = true;
    const t = this.socket.io.engine && this.socket.io.engine.transport;
    if (mode === 'abrupt' && t && t.name === 'websocket' && t.ws) {
      t.ws.terminate();
      this.socket.disconnect(); // the client's own state; nothing more reaches the wire
      return 'abrupt';
    }
    this.socket.disconnect(); // polling has no connection of its own to drop
    return 'clean';
  }
}

// The plain /ws JSON protocol.
class PlainClient {
  constructor(kind, port, cred) {
    this.kind = kind;
    this.port = port;
    this.query = cred.token ? `token=${encodeURIComponent(cred.token)}` : `name=${encodeURIComponent(cred.name)}`;
    this.unexpectedClose = null;
    this.closing = false;
    this.pushFns = [];
    this.pending = new Map(); // id -> {resolve, reject, timer}
    this.nextId = 1;
  }

  connect(ms = 15000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(timeoutError('connect', ms)); this.ws.terminate(); }, ms);
      this.ws = new WebSocket(`ws://127.0.0.1:${this.port}/ws?${this.query}`,
        { perMessageDeflate: false });
      this.ws.on('error', (e) => { clearTimeout(timer); reject(e); });
      this.ws.on('close', (code, reason) => {
        clearTimeout(timer);
        if (!this.closing && !this.unexpectedClose) this.unexpectedClose = `close ${code} ${reason}`;
        for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(new Error(`closed (${code})`)); }
        this.pending.clear();
        reject(new Error(`closed before connected (${code})`));
      });
      this.ws.on('message', (raw, isBinary) => {
        if (isBinary) { this.unexpectedClose = this.unexpectedClose || 'binary frame on /ws'; return; }
        let f;
        try { f = JSON.parse(raw.toString('utf8')); } catch (_) { this.unexpectedClose = 'a frame that is not JSON'; return; }
        if (f.event === 'connected') { clearTimeout(timer); resolve(f.data); return; }
        if (f.id !== undefined && this.pending.has(f.id)) {
          const p = this.pending.get(f.id);
          this.pending.delete(f.id);
          clearTimeout(p.timer);
          p.resolve({ ok: f.event !== 'error', data: f.data });
          return;
        }
        for (const fn of this.pushFns) fn(f.event, f.data);
      });
    });
  }

  request(event, data, ms = 15000) {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState !== WebSocket.OPEN) { reject(new Error(`${event}: the connection is closed`)); return; }
      const id = this.nextId++;
      const timer = setTimeout(() => { this.pending.delete(id); reject(timeoutError(event, ms)); }, ms);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ event, data, id }));
    });
  }

  onPush(fn) { this.pushFns.push(fn); }

  close(mode) {
    this.closing = true;
    if (mode === 'abrupt') this.ws.terminate();
    else this.ws.close(1000, 'bye');
    return mode;
  }
}

const b64u = (b) => Buffer.from(b).toString('base64url');
// A JWT for `claims` (exp a day ahead unless given), signed HS256 with secret,
// or with header.alg "none" and no signature when secret is null.
function signJwt(secret, claims, header = { alg: 'HS256', typ: 'JWT' }) {
  const t = Math.floor(Date.now() / 1000);
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify({ iat: t, exp: t + 86400, ...claims }))}`;
  return `${input}.${secret === null ? '' : b64u(crypto.createHmac('sha256', secret).update(input).digest())}`;
}

function makeClient(kind, port, cred) {
  return kind === 'plain' ? new PlainClient(kind, port, cred) : new SioClient(kind, port, cred);
}

module.exports = { makeClient, signJwt, isError, WebSocket };
