'use strict';
// A Node socket.io 4.8 server in a Redis cluster (@socket.io/redis-adapter 8, classic pub/sub), the
// reference peer of the cluster tests. It speaks enough of the app's protocol for them (connected,
// join_room, leave_room, send_message, get_room_users; presence is this node's only) and relays
// every room broadcast through the adapter (io.to / socket.to), so they cross Redis in the
// adapter's own format.
//
// Usage: node peer.js --redis redis://127.0.0.1:PORT [--port 0] [--name NAME]
// Prints `listening address=127.0.0.1:PORT` on stderr once it serves, like space-server, and
// logs the Redis link state once per change. Test hooks on the same HTTP port, JSON in and out:
//   POST /peer/fetch-sockets   {rooms?}                  -> {ms, sockets: [{id, rooms, data}]} | {error}
//   POST /peer/all-rooms       {}                        -> {rooms}
//   POST /peer/server-side-emit {event, args, ack?}  -> {} | {ms, err, responses}
//   POST /peer/emit            {rooms?, except?, event, args}   (io.to(rooms).except(except).emit)
//   POST /peer/sockets-join    {rooms?, join}        POST /peer/sockets-leave {rooms?, leave}
//   POST /peer/disconnect-sockets {rooms?, close?}
//   GET  /peer/received        -> [{event, args}] server-side events this node was sent
//   GET  /metrics              -> space_redis_link_up, space_redis_publish_failed_total (as ours)
//   POST /api/rooms/{room}/emit {event, data} with Bearer $SPACE_ADMIN_TOKEN (as ours)
// Binary values travel in these JSON bodies as {"$bin": "<base64>"}.

const http = require('node:http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const REDIS = arg('redis', process.env.SPACE_REDIS);
const PORT = Number(arg('port', '0'));
const NAME = arg('name', `peer-${process.pid}`);
if (!REDIS) {
  process.stderr.write('peer: --redis URL is required\n');
  process.exit(2);
}

function log(msg) { process.stderr.write(`${new Date().toISOString()} ${NAME} ${msg}\n`); }

// JSON <-> values with Buffers
function revive(v) {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === 'object') {
    if (typeof v.$bin === 'string' && Object.keys(v).length === 1) return Buffer.from(v.$bin, 'base64');
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = revive(x);
    return o;
  }
  return v;
}
function plain(v) {
  if (Buffer.isBuffer(v)) return { $bin: v.toString('base64') };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = plain(x);
    return o;
  }
  return v;
}

// --- Redis link: state logged once per change, failed publishes counted (not queued: a message
// that cannot be published while Redis is away is lost to the other nodes, as on our nodes).
const retry = { reconnectStrategy: (n) => Math.min(50 * (n + 1), 500) };
const pub = createClient({ url: REDIS, socket: retry, disableOfflineQueue: true });
const sub = createClient({ url: REDIS, socket: retry });
let linkUp = false;
let publishFailed = 0;
function relink() {
  const up = pub.isReady && sub.isReady;
  if (up !== linkUp) {
    linkUp = up;
    log(up ? 'redis link up' : 'redis link down');
  }
}
for (const c of [pub, sub]) {
  for (const ev of ['ready', 'end', 'reconnecting']) c.on(ev, () => setImmediate(relink));
  c.on('error', () => setImmediate(relink)); // reported through the link state, not per attempt
}
const publish = pub.publish.bind(pub);
pub.publish = (...a) => {
  let p;
  try { p = publish(...a); } catch (e) { publishFailed++; return Promise.resolve(0); }
  return p.catch(() => { publishFailed++; return 0; });
};

const received = [];
const userOf = new Map(); // socket id -> user

function user(socket) { return userOf.get(socket.id); }

// The users of a room on this node, each once.
function roomUsers(room) {
  const ids = io.of('/').adapter.rooms.get(room) || new Set();
  const seen = new Map();
  for (const sid of ids) {
    const u = userOf.get(sid);
    if (u && !seen.has(u.id)) seen.set(u.id, u);
  }
  return [...seen.values()];
}

function userInRoom(room, userId, exceptSid) {
  const ids = io.of('/').adapter.rooms.get(room) || new Set();
  for (const sid of ids) if (sid !== exceptSid && userOf.get(sid)?.id === userId) return true;
  return false;
}

const ROOM_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
let msgSeq = 0;

let io;

function onConnection(socket) {
  const name = socket.handshake.auth && typeof socket.handshake.auth.name === 'string'
    ? socket.handshake.auth.name : null;
  const u = name ? { id: `dev:${name}`, name } : { id: `guest:${socket.id}`, name: `guest-${socket.id.slice(0, 6)}` };
  userOf.set(socket.id, u);
  socket.data.user = u;
  socket.emit('connected', { sid: socket.id, user: u, server_time: Date.now() });

  // answer: the answering event, and the ack with the same data when one was asked for
  const handle = (event, fn) => socket.on(event, (data, ack) => {
    if (typeof data === 'function') { ack = data; data = undefined; }
    let name_;
    let out;
    const err = (code, message) => { name_ = 'error'; out = { code, message, event }; };
    if (!data || typeof data !== 'object' || typeof data.room !== 'string') err('invalid_payload', 'room is required');
    else if (!ROOM_RE.test(data.room)) err('invalid_room', 'bad room name');
    else {
      const r = fn(data, err);
      if (r) [name_, out] = r;
    }
    socket.emit(name_, out);
    if (typeof ack === 'function') ack(out);
  });

  handle('join_room', ({ room }) => {
    if (!socket.rooms.has(room)) {
      const isNew = !userInRoom(room, u.id, socket.id);
      socket.join(room);
      if (isNew) socket.to(room).emit('user_joined_room', { room, user: u });
    }
    const users = roomUsers(room);
    return ['joined_room', { room, users, count: users.length }];
  });
  handle('leave_room', ({ room }, err) => {
    if (!socket.rooms.has(room)) return err('not_in_room', 'not in room');
    socket.leave(room);
    if (!userInRoom(room, u.id)) io.to(room).emit('user_left_room', { room, user: u });
    return ['left_room', { room }];
  });
  handle('send_message', (data, err) => {
    const { room } = data;
    if (typeof data.text !== 'string') return err('invalid_payload', 'text is required');
    if (!socket.rooms.has(room)) return err('not_in_room', 'not in room');
    const text = data.text.trim();
    if (!text) return err('empty_message', 'empty');
    const id = `${NAME}-${Date.now()}-${++msgSeq}`;
    const timestamp = Date.now();
    socket.to(room).emit('new_message', { id, room, user: u, text, timestamp });
    return ['message_sent', { id, room, timestamp, client_msg_id: data.client_msg_id ?? null }];
  });
  handle('get_room_users', ({ room }) => {
    const users = roomUsers(room);
    return ['room_users', { room, users, count: users.length }];
  });

  socket.on('disconnecting', () => {
    for (const room of socket.rooms) {
      if (room !== socket.id && !userInRoom(room, u.id, socket.id)) {
        socket.to(room).emit('user_left_room', { room, user: u });
      }
    }
  });
  socket.on('disconnect', () => userOf.delete(socket.id));
}

function target(rooms, except) {
  let op = io;
  if (rooms && rooms.length) op = op.to(rooms);
  if (except && except.length) op = op.except(except);
  return op;
}

async function control(req, body) {
  const b = body ? revive(JSON.parse(body)) : {};
  switch (req.url) {
    case '/peer/fetch-sockets': {
      const t0 = Date.now();
      try {
        const socks = await target(b.rooms).fetchSockets();
        return { ms: Date.now() - t0, sockets: socks.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data })) };
      } catch (e) {
        return { ms: Date.now() - t0, error: String(e && e.message || e) };
      }
    }
    case '/peer/all-rooms':
      return { rooms: [...await io.of('/').adapter.allRooms()] };
    case '/peer/server-side-emit':
      if (!b.ack) { io.serverSideEmit(b.event, ...(b.args || [])); return {}; }
      return new Promise((resolve) => {
        // socket.io 4.8 has no io.timeout().serverSideEmit: the adapter's requestsTimeout (5 s) bounds it.
        const t0 = Date.now();
        io.serverSideEmit(b.event, ...(b.args || []), (err, responses) => {
          resolve({ ms: Date.now() - t0, err: err ? String(err.message || err) : null, responses: plain(responses || []) });
        });
      });
    case '/peer/emit':
      target(b.rooms, b.except).emit(b.event, ...(b.args || []));
      return {};
    case '/peer/sockets-join':
      target(b.rooms).socketsJoin(b.join);
      return {};
    case '/peer/sockets-leave':
      target(b.rooms).socketsLeave(b.leave);
      return {};
    case '/peer/disconnect-sockets':
      target(b.rooms).disconnectSockets(b.close !== false);
      return {};
    case '/peer/received':
      return plain(received);
    default:
      return null;
  }
}

// The admin API's backend emit, as our nodes have it (Bearer $SPACE_ADMIN_TOKEN).
function adminEmit(req, res, room) {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    const token = process.env.SPACE_ADMIN_TOKEN;
    if (!token || req.headers.authorization !== `Bearer ${token}`) { res.writeHead(401); res.end(); return; }
    let b;
    try { b = JSON.parse(body); } catch (_) { b = null; }
    if (!b || typeof b.event !== 'string') { res.writeHead(400); res.end(); return; }
    io.to(room).emit(b.event, b.data === undefined ? {} : b.data);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true }));
  });
}

const httpServer = http.createServer((req, res) => {
  if (req.url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(`space_redis_link_up ${linkUp ? 1 : 0}\nspace_redis_publish_failed_total ${publishFailed}\n`);
    return;
  }
  const emit = /^\/api\/rooms\/([^/?]+)\/emit$/.exec(req.url);
  if (emit && req.method === 'POST') { adminEmit(req, res, decodeURIComponent(emit[1])); return; }
  if (!req.url.startsWith('/peer/')) return; // socket.io's own paths, or its 400
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => { body += d; });
  req.on('end', async () => {
    let out;
    try { out = await control(req, body); } catch (e) { out = { error: String(e && e.stack || e) }; }
    if (out === null) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out));
  });
});

async function main() {
  await Promise.all([pub.connect(), sub.connect()]);
  relink();
  io = new Server(httpServer, { pingInterval: 10000, pingTimeout: 5000 });
  io.adapter(createAdapter(pub, sub));
  io.on('connection', onConnection);
  // Server-side events from the other nodes: recorded, and acknowledged with who answered.
  for (const ev of ['x', 'hello']) {
    io.on(ev, (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      received.push({ event: ev, args });
      if (ack) ack({ server: NAME, event: ev, args });
    });
  }
  httpServer.listen(PORT, '127.0.0.1', () => {
    log(`listening address=127.0.0.1:${httpServer.address().port} uid=${io.of('/').adapter.uid}`);
  });
}

function shutdown() {
  io.close();
  Promise.allSettled([pub.quit(), sub.quit()]).then(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
// The harness holds our stdin: when it is gone (a killed test run), so are we.
process.stdin.on('end', () => process.exit(0)).on('error', () => process.exit(0)).resume();
process.on('SIGINT', shutdown);
process.on('unhandledRejection', (e) => { log(`unhandled rejection: ${e && e.stack || e}`); process.exit(70); });

main().catch((e) => { log(`cannot start: ${e && e.stack || e}`); process.exit(1); });
