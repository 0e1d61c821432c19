// The Node socket.io 4.8 peer of space-server, for the benchmarks: the same
// app as scripts/ (connected, join_room, leave_room, send_message,
// get_room_users, dev auth by name, the rules of rules.lua and the rate
// limit), on the same wire (PROTOCOL.md §2-§5).
//
//   node server.js [--host 127.0.0.1] [--port 0] [--rate-per-second 20] [--rate-burst 40] [--max-users 10000]
//
// Prints "listening port=P" on stderr once it accepts connections.
'use strict';

const http = require('http');
const { Server } = require('socket.io');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  const env = process.env['PEER_' + name.toUpperCase().replace(/-/g, '_')];
  return env !== undefined ? env : def;
}

const HOST = arg('host', '127.0.0.1');
const PORT = Number(arg('port', process.env.PORT || 0));
const RULES = {
  room: { max_length: 64, max_users: Number(arg('max-users', 10000)) },
  message: { max_length: 4000 },
  rate: { per_second: Number(arg('rate-per-second', 20)), burst: Number(arg('rate-burst', 40)) },
};
const MAX_NAME_BYTES = 64;
const ROOM_RE = /^[A-Za-z0-9_\-.:]+$/;

// Distinct users per room: room -> Map(user id -> connections of that user in the room).
const roomUsers = new Map();

let lastId = 0n;
function newId() {
  let id = BigInt(Date.now()) << 12n; // as space.new_id(): 16 hex digits, increasing
  if (id <= lastId) id = lastId + 1n;
  lastId = id;
  return id.toString(16).padStart(16, '0');
}

function fail(code, message) {
  return { error: { code, message } };
}

function checkObject(data) {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return fail('invalid_payload', 'data must be a JSON object');
  }
  return null;
}

function checkRoom(data) {
  const room = data.room;
  if (typeof room !== 'string') return [null, fail('invalid_payload', "'room' must be a string")];
  if (room.length === 0 || room.length > RULES.room.max_length || !ROOM_RE.test(room)) {
    return [null, fail('invalid_room',
      `room names have 1 to ${RULES.room.max_length} characters: letters, digits, _ - . :`)];
  }
  return [room, null];
}

function usersOf(room) {
  const m = roomUsers.get(room);
  return m ? m : new Map();
}

function roomUserList(io, room) {
  const users = [];
  const seen = new Set();
  const sids = io.of('/').adapter.rooms.get(room);
  if (sids) {
    for (const sid of sids) {
      const s = io.of('/').sockets.get(sid);
      if (s && !seen.has(s.data.user.id)) {
        seen.add(s.data.user.id);
        users.push(s.data.user);
      }
    }
  }
  return users;
}

function addUser(room, userId) {
  let m = roomUsers.get(room);
  if (!m) roomUsers.set(room, (m = new Map()));
  const n = m.get(userId) || 0;
  m.set(userId, n + 1);
  return n === 0;
}

function removeUser(room, userId) {
  const m = roomUsers.get(room);
  if (!m) return false;
  const n = (m.get(userId) || 0) - 1;
  if (n > 0) {
    m.set(userId, n);
    return false;
  }
  m.delete(userId);
  if (m.size === 0) roomUsers.delete(room);
  return true;
}

function take(bucket, now) {
  const refill = ((now - bucket.at) / 1000) * RULES.rate.per_second;
  bucket.tokens = Math.min(RULES.rate.burst, bucket.tokens + refill);
  bucket.at = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

const handlers = {
  join_room(io, socket, data) {
    const bad = checkObject(data);
    if (bad) return bad;
    const [room, err] = checkRoom(data);
    if (err) return err;
    const user = socket.data.user;
    if (!socket.rooms.has(room)) {
      const count = usersOf(room).size;
      if (count >= RULES.room.max_users && !usersOf(room).has(user.id)) {
        return fail('room_full', `room ${room} has ${count} users, the most it takes`);
      }
      socket.join(room);
      if (addUser(room, user.id)) socket.to(room).emit('user_joined_room', { room, user });
    }
    const users = roomUserList(io, room);
    return { event: 'joined_room', data: { room, users, count: users.length } };
  },

  leave_room(io, socket, data) {
    const bad = checkObject(data);
    if (bad) return bad;
    const [room, err] = checkRoom(data);
    if (err) return err;
    if (!socket.rooms.has(room)) return fail('not_in_room', 'you are not in room ' + room);
    socket.leave(room);
    if (removeUser(room, socket.data.user.id)) {
      io.to(room).emit('user_left_room', { room, user: socket.data.user });
    }
    return { event: 'left_room', data: { room } };
  },

  send_message(io, socket, data) {
    const bad = checkObject(data);
    if (bad) return bad;
    const [room, err] = checkRoom(data);
    if (err) return err;
    let text = data.text;
    if (typeof text !== 'string') return fail('invalid_payload', "'text' must be a string");
    const cmid = data.client_msg_id;
    if (cmid !== undefined && typeof cmid !== 'string' && typeof cmid !== 'number') {
      return fail('invalid_payload', "'client_msg_id' must be a string or a number");
    }
    if (!socket.rooms.has(room)) return fail('not_in_room', 'you are not in room ' + room);
    text = text.trim();
    if (text.length === 0) return fail('empty_message', 'the message is empty');
    let length = 0;
    for (const _ of text) length++; // code points, as utf8.len
    if (length > RULES.message.max_length) {
      return fail('message_too_long',
        `messages have at most ${RULES.message.max_length} characters, this one has ${length}`);
    }
    const id = newId();
    const now = Date.now();
    socket.to(room).emit('new_message', { id, room, user: socket.data.user, text, timestamp: now });
    return {
      event: 'message_sent',
      data: { id, room, timestamp: now, client_msg_id: cmid === undefined ? null : cmid },
    };
  },

  get_room_users(io, socket, data) {
    const bad = checkObject(data);
    if (bad) return bad;
    const [room, err] = checkRoom(data);
    if (err) return err;
    const users = roomUserList(io, room);
    return { event: 'room_users', data: { room, users, count: users.length } };
  },
};

const RATE_LIMITED = new Set(['send_message', 'send_file']);

function authenticate(socket) {
  const auth = socket.handshake.auth || {};
  let name = auth.name;
  if (typeof name === 'string') {
    name = name.replace(/^\s+/, '').replace(/\s+$/, '');
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes > 0 && bytes <= MAX_NAME_BYTES) return { id: 'dev:' + name, name };
  }
  return { id: 'guest:' + socket.id, name: 'guest-' + socket.id.slice(0, 6) };
}

const httpServer = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('ok');
    return;
  }
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, { serveClient: false });

io.on('connection', (socket) => {
  socket.data.user = authenticate(socket);
  socket.data.bucket = null;
  socket.emit('connected', { sid: socket.id, user: socket.data.user, server_time: Date.now() });

  socket.onAny((event, ...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    const handler = handlers[event];
    let result;
    if (!handler) {
      result = fail('unknown_event', `no handler for event ${event}`);
    } else if (RATE_LIMITED.has(event) && !take(socket.data.bucket ||= { tokens: RULES.rate.burst, at: Date.now() }, Date.now())) {
      result = fail('rate_limited',
        `at most ${RULES.rate.per_second} messages a second, ${RULES.rate.burst} at once`);
    } else {
      try {
        result = handler(io, socket, args[0]);
      } catch (e) {
        console.error(`handler ${event} failed:`, e);
        result = fail('internal_error', 'the handler failed');
      }
    }
    if (result.error) {
      const body = { code: result.error.code, message: result.error.message, event };
      socket.emit('error', body);
      if (ack) ack(body);
      return;
    }
    socket.emit(result.event, result.data);
    if (ack) ack(result.data);
  });

  socket.on('disconnecting', () => {
    const user = socket.data.user;
    for (const room of socket.rooms) {
      if (room === socket.id) continue;
      if (removeUser(room, user.id)) socket.to(room).emit('user_left_room', { room, user });
    }
  });
});

function stop() {
  io.close();
  httpServer.close();
  setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

httpServer.listen(PORT, HOST, () => {
  process.stderr.write(`listening port=${httpServer.address().port}\n`);
});
