// The Node socket.io 4.8 peer of space-server, for the benchmarks: the same
// app as scripts/ (connected, join_room, leave_room, send_message,
// send_file, get_room_users, dev auth by name, the rules of rules.lua and
// the rate limit), on the same wire (PROTOCOL.md §2-§5).
//
//   node server.js [--host 127.0.0.1] [--port 0] [--rate-per-second 20] [--rate-burst 40] [--max-users 10000]
//                  [--files-dir DIR (default: a new directory under the system's temporary one)]
//
// Prints "listening port=P" on stderr once it accepts connections. GET
// /metrics answers the loop's delay as perf_hooks.monitorEventLoopDelay
// measures it (1 ms resolution), under the names our /metrics uses for its
// loop turns: space_event_loop_lag_max_seconds, and the p99 (the figures
// are the intervals between the runs of a 1 ms timer, so ~1 ms above the
// delay itself); GET /metrics/reset starts them afresh.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const { monitorEventLoopDelay } = require('perf_hooks');
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
RULES.file = {
  max_bytes: 10485760,
  max_name_bytes: 255,
  types: ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain'],
};
const MAX_PAYLOAD = 16777216; // our --max-payload: a 10 MiB file fits, base64 included
const FILES_DIR = arg('files-dir', '') || fs.mkdtempSync(path.join(os.tmpdir(), 'space-peer-files-'));
fs.mkdirSync(FILES_DIR, { recursive: true });
const MAX_NAME_BYTES = 64;
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
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

  // As a Node app would write it: the checks, the base64 decoding and the
  // content check on the loop; the write (temp file + rename) through
  // fs.promises, on libuv's thread pool. Answers a promise.
  send_file(io, socket, data) {
    const bad = checkObject(data);
    if (bad) return bad;
    const [room, err] = checkRoom(data);
    if (err) return err;
    const { name, type } = data;
    if (typeof name !== 'string') return fail('invalid_payload', "'name' must be a string");
    if (typeof type !== 'string') return fail('invalid_payload', "'type' must be a string");
    if (!socket.rooms.has(room)) return fail('not_in_room', 'you are not in room ' + room);
    let bytes;
    if (Buffer.isBuffer(data.data)) {
      bytes = data.data;
    } else if (typeof data.data === 'string') {
      const padding = (data.data.slice(-2).match(/=*$/) || [''])[0].length;
      if (Math.floor(data.data.length / 4) * 3 - padding > RULES.file.max_bytes) {
        return fail('file_too_large', `files have at most ${RULES.file.max_bytes} bytes`);
      }
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data.data) || data.data.length % 4 !== 0) {
        return fail('invalid_file', 'the data is not valid base64');
      }
      bytes = Buffer.from(data.data, 'base64');
    } else {
      return fail('invalid_payload', "'data' must be base64 text or binary");
    }
    if (bytes.length > RULES.file.max_bytes) return fail('file_too_large', `files have at most ${RULES.file.max_bytes} bytes`);
    if (name.length === 0 || Buffer.byteLength(name) > RULES.file.max_name_bytes || /[\/\\\x00-\x1f]/.test(name) ||
        name === '.' || name === '..') {
      return fail('invalid_file', 'a file name is a base name of 1 to 255 bytes');
    }
    if (!RULES.file.types.includes(type)) return fail('file_type_not_allowed', `files of type ${type} are not allowed`);
    if (!contentMatches(type, bytes)) return fail('invalid_file', `the content is not ${type}`);
    const id = newId();
    const file = path.join(FILES_DIR, id);
    const temp = file + '.tmp';
    return fs.promises.writeFile(temp, bytes).then(() => fs.promises.rename(temp, file)).then(() => {
      const url = `/files/${id}/${encodeURIComponent(name)}`;
      const sent = { id, room, name, type, size: bytes.length, url };
      socket.to(room).emit('new_file', { id, room, user: socket.data.user, name, type, size: bytes.length, url });
      return { event: 'file_sent', data: sent };
    }, (e) => {
      console.error('send_file: the file could not be stored:', e.message);
      return fail('internal_error', 'the file could not be stored');
    });
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

const MAGIC = {
  'image/png': [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  'image/jpeg': [0xff, 0xd8, 0xff],
  'image/gif': [0x47, 0x49, 0x46, 0x38],
  'application/pdf': [0x25, 0x50, 0x44, 0x46, 0x2d],
};
const utf8 = new TextDecoder('utf-8', { fatal: true });

// The declared type against the content (rules: text/plain is valid UTF-8 without NUL).
function contentMatches(type, bytes) {
  if (type === 'text/plain') {
    if (bytes.includes(0)) return false;
    try {
      utf8.decode(bytes);
      return true;
    } catch (e) {
      return false;
    }
  }
  if (type === 'image/webp') {
    return bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP';
  }
  const m = MAGIC[type];
  return !!m && bytes.length >= m.length && m.every((b, i) => bytes[i] === b);
}

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
  if (req.url === '/metrics/reset') { // the bench starts its window here (ours has no reset: it diffs)
    loopDelay.reset();
    res.writeHead(204);
    res.end();
    return;
  }
  if (req.url === '/metrics') {
    const h = loopDelay;
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
    res.end('# HELP space_event_loop_lag_max_seconds the longest event loop delay since the start (monitorEventLoopDelay)\n' +
      '# TYPE space_event_loop_lag_max_seconds gauge\n' +
      `space_event_loop_lag_max_seconds ${(h.count ? h.max : 0) / 1e9}\n` +
      '# HELP space_event_loop_lag_p99_seconds the 99th percentile of the event loop delay since the start\n' +
      '# TYPE space_event_loop_lag_p99_seconds gauge\n' +
      `space_event_loop_lag_p99_seconds ${(h.count ? h.percentile(99) : 0) / 1e9}\n`);
    return;
  }
  if (req.url === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('ok');
    return;
  }
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, { serveClient: false, maxHttpBufferSize: MAX_PAYLOAD });

function answer(socket, event, ack, result) {
  if (!socket.connected) return;
  if (result.error) {
    const body = { code: result.error.code, message: result.error.message, event };
    socket.emit('error', body);
    if (ack) ack(body);
    return;
  }
  socket.emit(result.event, result.data);
  if (ack) ack(result.data);
}

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
    if (result && typeof result.then === 'function') result.then((r) => answer(socket, event, ack, r));
    else answer(socket, event, ack, result);
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
