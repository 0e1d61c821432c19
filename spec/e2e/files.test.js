'use strict';
// File sending (PROTOCOL.md §3 send_file / file_sent / new_file, §4 errors, §5 file rules) and the
// downloads at GET/HEAD /files/<id>/<name>, through the stock socket.io-client over WebSocket and
// over HTTP long-polling, a plain /ws client, and raw HTTP:
//   - both encodings of `data` (base64 text and a Socket.IO binary attachment), every allowed type;
//   - file_sent to the sender (and its ack, the same), new_file to the other members;
//   - every refusal code, each changing nothing (no event to the others, nothing in the store);
//   - 10 MiB accepted, 10 MiB + 1 byte refused (file_too_large), both encodings, both transports;
//   - downloads: identical bytes, the headers, HEAD, Range (206/416), If-None-Match (304);
//   - path traversal on the download URL, content-addressed storage (same bytes stored once);
//   - a files dir that cannot be written: internal_error, nothing stored;
//   - 20 uploads of 5 MiB at once while a chat goes on in another room;
//   - send_file and send_message share the rate-limit bucket.
// Each server gets a fresh temp dir as --files-dir. Every wait is bounded; nothing sleeps for
// synchronisation (the chat during the uploads is paced below the rate limit, which is load shaping).
// Payload size: the default --max-payload (16 MiB) holds a 10 MiB + 1 byte file in base64 (13981016
// characters plus the packet) as well as a binary attachment (over polling: "b" + base64 of it), so
// every server here runs with the default; the test asserts that arithmetic.
// Run: node --test spec/e2e/files.test.js  (binary from $SPACE_SERVER, scripts from $SPACE_SCRIPTS)

const { test, describe, before, after, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const crypto = require('node:crypto');
const WebSocket = require('ws');
const h = require('./harness');

const { show, T, waitFor, eq, ok, settle } = h;

const MAX_BYTES = 10485760; // rules.file.max_bytes
const MIB = 1048576;
const DEFAULT_MAX_PAYLOAD = 16777216;
const TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain'];
const CACHE_CONTROL = 'public, max-age=31536000, immutable';

const MODES = [
  { key: 'websocket', label: "socket.io-client, transports ['websocket']", opts: { transports: ['websocket'] } },
  { key: 'polling', label: "socket.io-client, transports ['polling']", opts: { transports: ['polling'] } },
];

// ---------------------------------------------------------------------------------------------
// helpers


const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const userOf = (sock) => sock.connectedData.user;

function tmpDir(prefix = 'space-files-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function rmDir(dir) {
  if (!dir) return;
  try { fs.chmodSync(dir, 0o755); } catch (_) { /* may be gone */ }
  fs.rmSync(dir, { recursive: true, force: true });
}

function u32le(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

// Bytes whose magic says `type`, `size` bytes long (random past the magic, so no two are equal).
function sample(type, size = 96) {
  const tail = (n) => crypto.randomBytes(Math.max(0, n));
  switch (type) {
    case 'image/png': return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), tail(size - 8)]);
    case 'image/jpeg': return Buffer.concat([Buffer.from('ffd8ffe0', 'hex'), tail(size - 4)]);
    case 'image/gif': return Buffer.concat([Buffer.from('GIF89a'), tail(size - 6)]);
    case 'image/webp': return Buffer.concat([Buffer.from('RIFF'), u32le(size - 8), Buffer.from('WEBPVP8 '), tail(size - 16)]);
    case 'application/pdf': return Buffer.concat([Buffer.from('%PDF-1.7\n'), tail(size - 9)]);
    case 'text/plain': {
      const head = Buffer.from('h\u00e9llo \u2713 \ud83d\ude00 ');
      const body = Buffer.from(crypto.randomBytes(size).toString('base64').slice(0, Math.max(0, size - head.length)));
      return Buffer.concat([head, body]).subarray(0, Math.max(size, head.length));
    }
    default: throw new Error(`no sample for ${type}`);
  }
}

// A short description of send_file data for messages (never the whole payload).
function desc(d) {
  if (d === null || typeof d !== 'object' || Array.isArray(d)) return show(d);
  const out = {};
  for (const [k, v] of Object.entries(d)) {
    if (Buffer.isBuffer(v)) out[k] = `<Buffer ${v.length} bytes>`;
    else if (typeof v === 'string' && v.length > 80) out[k] = `<string ${v.length} chars: ${v.slice(0, 40)}...>`;
    else out[k] = v;
  }
  return show(out);
}

// Every regular file under the store, by area: {blobs, meta, tmp, other} (paths relative to dir).
function listStore(dir) {
  const out = { blobs: [], meta: [], tmp: [], other: [] };
  const walk = (d) => {
    let ents;
    try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch (_) { return; }
    for (const e of ents) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const rel = path.relative(dir, p);
        const area = rel.split(path.sep)[0];
        (out[area] || out.other).push(rel);
      }
    }
  };
  walk(dir);
  for (const k of Object.keys(out)) out[k].sort();
  return out;
}

async function assertNothing(sock, name, what) {
  await settle(sock);
  const untaken = sock.inbox.items.filter((it) => !it.taken && it.name === name);
  eq(untaken.map((it) => it.data), [], `${what} (${sock.label} must not get "${name}")`);
}

async function join(sock, room) {
  return h.expectAnswer(sock, 'join_room', { room }, 'joined_room');
}

function assertError(err, code, what) {
  ok(err && typeof err === 'object' && !Array.isArray(err), `${what}: error data must be an object {code, message, event}`, err);
  eq(err.code, code, `${what}: error.code`);
  ok(typeof err.message === 'string' && err.message.length > 0, `${what}: error.message must be a non-empty string`, err);
  eq(err.event, 'send_file', `${what}: error.event`);
}

// send_file with an ack; returns {ack, name, data} where name/data is the answering event
// (file_sent or error), which the server sends as well as the ack.
async function sendFile(sock, data, timeoutMs = h.DEFAULT_WAIT) {
  const ack = await sock.timeout(timeoutMs).emitWithAck('send_file', data).catch((e) => {
    throw new Error(`${sock.label}: no ack for send_file ${desc(data)} within ${timeoutMs} ms: ${e.message}`);
  });
  const it = await sock.inbox.take(['file_sent', 'error'], null, timeoutMs).catch((e) => {
    throw new Error(`${sock.label}: send_file ${desc(data)} was acked with ${show(ack)} but no file_sent/error event came: ${e.message}`);
  });
  return { ack, name: it.name, data: it.data };
}

// Checks a file_sent (event and ack) against what was sent; returns it.
function checkFileSent(r, sent, bytes, what) {
  if (r.name !== 'file_sent') {
    assert.fail(`${what}: send_file ${desc(sent)}: expected "file_sent", got "${r.name}" ${show(r.data)}`);
  }
  const f = r.data;
  eq(Object.keys(f).sort(), ['id', 'name', 'room', 'size', 'type', 'url'], `${what}: file_sent keys`);
  ok(typeof f.id === 'string' && /^[0-9a-f]{32}$/.test(f.id), `${what}: file_sent.id is a server-made id (32 lowercase hex)`, f);
  eq(f.room, sent.room, `${what}: file_sent.room`);
  eq(f.name, sent.name, `${what}: file_sent.name`);
  eq(f.type, sent.type, `${what}: file_sent.type`);
  eq(f.size, bytes.length, `${what}: file_sent.size (decoded bytes)`);
  const prefix = `/files/${f.id}/`;
  ok(f.url.startsWith(prefix), `${what}: file_sent.url is /files/<id>/<name>`, f.url);
  eq(decodeURIComponent(f.url.slice(prefix.length)), sent.name, `${what}: the name in file_sent.url (percent-decoded)`);
  ok(!/[\s?#]/.test(f.url.slice(prefix.length)), `${what}: the name in the url is percent-encoded (no space, ? or #)`, f.url);
  eq(r.ack, f, `${what}: the ack carries the same data as file_sent`);
  return f;
}

async function expectSent(sock, sent, bytes, what, timeoutMs) {
  return checkFileSent(await sendFile(sock, sent, timeoutMs), sent, bytes, what);
}

async function expectRefused(sock, sent, code, what, timeoutMs) {
  const r = await sendFile(sock, sent, timeoutMs);
  const w = `${what}: send_file ${desc(sent)}`;
  if (r.name !== 'error') assert.fail(`${w}: expected error ${code}, got "${r.name}" ${show(r.data)}`);
  assertError(r.data, code, w);
  eq(r.ack, r.data, `${w}: the ack carries the same error object as the error event`);
  return r.data;
}

// HTTP with node's client (no keep-alive). Returns {status, statusMessage, headers, body: Buffer}.
function fetch(port, urlPath, { method = 'GET', headers = {}, timeoutMs = T(10000) } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, statusMessage: res.statusMessage, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`${method} ${urlPath}: no complete response within ${timeoutMs} ms`)); }, timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(new Error(`${method} ${urlPath}: ${e.message}`)); });
    req.end();
  });
}

// One raw request (the exact request-target bytes) on its own connection, read until the server
// closes: {status, head, headers, rest: Buffer (every byte after the head)}.
function rawExchange(port, target, { method = 'GET', headers = '' } = {}, timeoutMs = T(5000)) {
  const net = require('node:net');
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`${method} ${target}: no close within ${timeoutMs} ms; got ${show(buf.toString('latin1').slice(0, 500))}`)); }, timeoutMs);
    sock.on('connect', () => sock.write(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`));
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) { reject(new Error(`${method} ${target}: no HTTP head; got ${show(buf.toString('latin1').slice(0, 500))}`)); return; }
      const head = buf.subarray(0, end).toString('latin1');
      const lines = head.split('\r\n');
      const headersOut = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headersOut[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
      resolve({ status: m ? Number(m[1]) : null, head, headers: headersOut, rest: buf.subarray(end + 4) });
    });
  });
}

// The filename*=UTF-8''... of a Content-Disposition, decoded.
function dispositionName(cd) {
  const m = /filename\*=UTF-8''([^;\s]+)/i.exec(cd || '');
  return m ? decodeURIComponent(m[1]) : null;
}

// Downloads f (a file_sent) and checks the bytes and every header.
async function checkDownload(port, f, bytes, what) {
  const r = await fetch(port, f.url);
  eq(r.status, 200, `${what}: GET ${f.url} status`);
  ok(r.body.equals(bytes), `${what}: GET ${f.url} returns the bytes sent (${bytes.length} bytes, sha256 ${sha256(bytes)})`,
    `${r.body.length} bytes, sha256 ${sha256(r.body)}`);
  checkFileHeaders(r.headers, f, bytes, `${what}: GET ${f.url}`);
  eq(r.headers['content-length'], String(bytes.length), `${what}: Content-Length`);
  return r;
}

function checkFileHeaders(hd, f, bytes, what) {
  eq(hd['content-type'], f.type === 'text/plain' ? 'text/plain; charset=utf-8' : f.type, `${what}: Content-Type`);
  eq(hd.etag, `"${sha256(bytes)}"`, `${what}: ETag (the quoted sha256 of the bytes)`);
  eq(hd['cache-control'], CACHE_CONTROL, `${what}: Cache-Control`);
  eq(hd['x-content-type-options'], 'nosniff', `${what}: X-Content-Type-Options`);
  eq(hd['accept-ranges'], 'bytes', `${what}: Accept-Ranges`);
  const cd = hd['content-disposition'] || '';
  const kind = f.type.startsWith('image/') ? 'inline' : 'attachment';
  ok(cd.split(';')[0].trim() === kind, `${what}: Content-Disposition is ${kind} for ${f.type}`, cd);
  eq(dispositionName(cd), f.name, `${what}: Content-Disposition filename*=UTF-8''<the name>`);
}

// ---------------------------------------------------------------------------------------------
// the send_file suite, once per transport

for (const mode of MODES) {
  describe(`send_file over ${mode.label}`, () => {
    let ms;
    let dir;
    before(async () => {
      dir = tmpDir();
      ms = new h.ManagedServer({ args: ['--files-dir', dir] });
      await ms.start();
    });
    after(async () => {
      h.closeAllClients();
      try { await ms.finish(); } finally { rmDir(dir); }
    });
    beforeEach(async () => { await ms.ensure(); });
    afterEach(async () => { h.closeAllClients(); await ms.check(); });

    const client = (name = h.uniqueName('f')) => h.connectClient(ms.srv, name, mode.opts);

    // A sender and a watcher in a fresh room.
    async function pair() {
      const room = h.uniqueRoom('files');
      const a = await client();
      const b = await client();
      await join(a, room);
      await join(b, room);
      await a.inbox.take('user_joined_room', null, h.DEFAULT_WAIT); // a heard b join: both are in
      a.inbox.items.forEach((it) => { it.taken = true; });
      return { room, a, b };
    }

    test('a binary attachment: file_sent (event and ack), new_file to every other connection, none to the sender', async () => {
      const { room, a, b } = await pair();
      const name = h.uniqueName('tab');
      const a2 = await client(name);
      const a3 = await client(name); // the same user as a2: a2's other tab
      await join(a2, room);
      await join(a3, room);
      const bytes = sample('image/png', 300);
      const sent = { room, name: 'photo \u00e9t\u00e9 #1?.png', type: 'image/png', data: bytes };
      const f = await expectSent(a2, sent, bytes, 'binary png');
      const expected = { id: f.id, room, user: userOf(a2), name: sent.name, type: 'image/png', size: bytes.length, url: f.url };
      for (const other of [a, b, a3]) {
        eq(h.dropOffset(await h.nextEvent(other, 'new_file', h.DEFAULT_WAIT, (d) => d && d.id === f.id)), expected, `new_file at ${other.label}`);
      }
      await assertNothing(a2, 'new_file', 'the sending connection gets file_sent only');
      await checkDownload(ms.srv.port, f, bytes, 'binary png');
    });

    test('base64 text: file_sent (event and ack), new_file to the other member, identical bytes downloaded', async () => {
      const { room, a, b } = await pair();
      const bytes = sample('application/pdf', 1000);
      const sent = { room, name: 'r\u00e9sum\u00e9 100%.pdf', type: 'application/pdf', data: bytes.toString('base64') };
      const f = await expectSent(a, sent, bytes, 'base64 pdf');
      eq(h.dropOffset(await h.nextEvent(b, 'new_file', h.DEFAULT_WAIT)),
        { id: f.id, room, user: userOf(a), name: sent.name, type: 'application/pdf', size: bytes.length, url: f.url }, 'new_file');
      await assertNothing(a, 'new_file', 'the sender gets file_sent only');
      await checkDownload(ms.srv.port, f, bytes, 'base64 pdf');
    });

    test('every allowed type in both encodings is accepted and downloads with its own headers', async () => {
      const { room, a, b } = await pair();
      const ids = [];
      for (const type of TYPES) {
        for (const enc of ['binary', 'base64']) {
          const bytes = sample(type, 200);
          const name = `${type.replace('/', '-')}-${enc}.bin`;
          const data = enc === 'binary' ? bytes : bytes.toString('base64');
          const f = await expectSent(a, { room, name, type, data }, bytes, `${type} as ${enc}`);
          const nf = await h.nextEvent(b, 'new_file', h.DEFAULT_WAIT);
          eq(nf.id, f.id, `${type} as ${enc}: new_file.id`);
          await checkDownload(ms.srv.port, f, bytes, `${type} as ${enc}`);
          ids.push(f.id);
        }
      }
      eq(new Set(ids).size, ids.length, 'every file gets its own id');
      eq([...ids].sort(), ids, 'file ids sort in the order the server accepted the files');
    });

    test('names: UTF-8, spaces, dots, URL-special characters and exactly 255 bytes are accepted; the URL works', async () => {
      const { room, a } = await pair();
      const names = [
        '\u65e5\u672c\u8a9e\u306e\u30d5\u30a1\u30a4\u30eb.txt', '\ud83d\ude00 smile.txt', 'a b (1) [2] {3}.txt', '.hidden',
        'a.b.c.txt', "it's+50%25&x=1;#?.txt", 'x\u00a0y\u2028z.txt', `${'n'.repeat(251)}.txt`,
        `${'\u00e9'.repeat(127)}x`, // 255 bytes of UTF-8
      ];
      for (const name of names) {
        ok(Buffer.byteLength(name) <= 255, 'test setup: name within 255 bytes', name);
        const bytes = sample('text/plain', 40);
        const f = await expectSent(a, { room, name, type: 'text/plain', data: bytes }, bytes, `name ${show(name)}`);
        await checkDownload(ms.srv.port, f, bytes, `name ${show(name)}`);
      }
    });

    // Each group runs on fresh connections: every attempt takes a rate-limit token (burst 40).
    const refusalGroups = [
      ['file_type_not_allowed: a type outside the allowlist, or content that is not the declared type', 'file_type_not_allowed', () => [
        ['image/svg+xml (not allowed, valid UTF-8 content)', { type: 'image/svg+xml', data: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>') }],
        ['text/html', { type: 'text/html', data: Buffer.from('<html><script>alert(1)</script></html>') }],
        ['application/octet-stream', { type: 'application/octet-stream', data: crypto.randomBytes(64) }],
        ['application/javascript', { type: 'application/javascript', data: Buffer.from('alert(1)').toString('base64') }],
        ['an empty type', { type: '', data: sample('image/png') }],
        ['image/png declared, JPEG content', { type: 'image/png', data: sample('image/jpeg') }],
        ['image/jpeg declared, PNG content', { type: 'image/jpeg', data: sample('image/png') }],
        ['image/gif declared, PDF content (base64)', { type: 'image/gif', data: sample('application/pdf').toString('base64') }],
        ['PNG with one wrong magic byte', { type: 'image/png', data: Buffer.concat([Buffer.from('89504e470d0a1a0b', 'hex'), crypto.randomBytes(32)]) }],
        ['PNG magic cut short', { type: 'image/png', data: Buffer.from('89504e470d0a1a', 'hex') }],
        ['"RIFF....WEBX" as image/webp', { type: 'image/webp', data: Buffer.concat([Buffer.from('RIFF'), u32le(100), Buffer.from('WEBXVP8 '), crypto.randomBytes(32)]) }],
        ['"GIF88a" as image/gif', { type: 'image/gif', data: Buffer.concat([Buffer.from('GIF88a'), crypto.randomBytes(32)]) }],
        ['"%PDF" without the dash as application/pdf', { type: 'application/pdf', data: Buffer.from('%PDF1.7\n') }],
        ['text/plain with a NUL byte', { type: 'text/plain', data: Buffer.from('hello\u0000world') }],
        ['text/plain with a NUL byte (base64)', { type: 'text/plain', data: Buffer.from('hello\u0000world').toString('base64') }],
        ['text/plain, invalid UTF-8 (0xff)', { type: 'text/plain', data: Buffer.from([0x68, 0x69, 0xff, 0x21]) }],
        ['text/plain, overlong UTF-8 (C0 AF)', { type: 'text/plain', data: Buffer.from([0x61, 0xc0, 0xaf]) }],
        ['text/plain, a UTF-16 surrogate in UTF-8 (ED A0 80)', { type: 'text/plain', data: Buffer.from([0x61, 0xed, 0xa0, 0x80]).toString('base64') }],
        ['text/plain, truncated UTF-8 sequence', { type: 'text/plain', data: Buffer.from([0x61, 0xe2, 0x82]) }],
        ['text/plain declared, PNG content', { type: 'text/plain', data: sample('image/png') }],
        ['image/png declared, text content', { type: 'image/png', data: Buffer.from('just text') }],
        ['a MIME type with parameters', { type: 'text/plain; charset=utf-8', data: Buffer.from('hi') }],
      ]],
      ['invalid_file: names that are not a base name', 'invalid_file', () => [
        ['an empty name', { name: '' }],
        ['"a/b"', { name: 'a/b' }],
        ['"/etc/passwd"', { name: '/etc/passwd' }],
        ['"a\\\\b"', { name: 'a\\b' }],
        ['"..\\\\x"', { name: '..\\x' }],
        ['"."', { name: '.' }],
        ['".."', { name: '..' }],
        ['"../x.txt"', { name: '../x.txt' }],
        ['"./x"', { name: './x' }],
        ['"a..b"', { name: 'a..b' }],
        ['"x.."', { name: 'x..' }],
        ['a control character (\\x01)', { name: 'a\u0001b.txt' }],
        ['a newline', { name: 'a\nb.txt' }],
        ['a tab', { name: 'a\tb.txt' }],
        ['NUL', { name: 'a\u0000b.txt' }],
        ['DEL (0x7f)', { name: 'a\u007fb.txt' }],
        ['C1 control U+0085', { name: 'a\u0085b.txt' }],
        ['C1 control U+009F', { name: 'a\u009fb.txt' }],
        ['256 bytes (ASCII)', { name: `${'n'.repeat(252)}.txt` }],
        ['256 bytes (128 x "\u00e9")', { name: '\u00e9'.repeat(128) }],
        ['1000 bytes', { name: 'x'.repeat(1000) }],
      ]],
      ['invalid_file: data that is not valid base64', 'invalid_file', () => [
        ['length not a multiple of 4 ("aGk")', { data: 'aGk' }],
        ['a character outside the alphabet ("aGk!")', { data: 'aGk!' }],
        ['base64url alphabet ("-_8=")', { data: '-_8=' }],
        ['padding in the middle ("aQ==aGk=")', { data: 'aQ==aGk=' }],
        ['"=" before a data character ("aG=k")', { data: 'aG=k' }],
        ['three padding characters ("a===")', { data: 'a===' }],
        ['a trailing newline', { data: 'aGVsbG8=\n' }],
        ['embedded whitespace', { data: 'aGVs bG8=' }],
        ['non-ASCII', { data: 'aGVs\u00e9G8=' }],
      ]],
      ['invalid_payload: missing fields or fields of the wrong JSON type', 'invalid_payload', () => [
        ['no data field', { data: undefined }],
        ['no name field', { name: undefined }],
        ['no type field', { type: undefined }],
        ['name is a number', { name: 42 }],
        ['name is null', { name: null }],
        ['type is an array', { type: ['image/png'] }],
        ['type is null', { type: null }],
        ['data is a number', { data: 12345 }],
        ['data is null', { data: null }],
        ['data is an object', { data: { bytes: 'aGk=' } }],
        ['data is an array', { data: ['aGk='] }],
        ['data is true', { data: true }],
      ]],
    ];

    for (const [title, code, cases] of refusalGroups) {
      test(`${title} → ${code}; nothing stored, nobody told`, async () => {
        const before_ = listStore(dir);
        const { room, a, b } = await pair();
        for (const [label, fields] of cases()) {
          const sent = { room, name: 'f.txt', type: 'text/plain', data: Buffer.from('fine text'), ...fields };
          for (const k of Object.keys(sent)) if (sent[k] === undefined) delete sent[k];
          await expectRefused(a, sent, code, label);
        }
        await assertNothing(b, 'new_file', 'a refused send_file tells nobody');
        await assertNothing(a, 'file_sent', 'a refused send_file answers only the error');
        eq(listStore(dir), before_, 'the store after refused uploads (nothing written)');
      });
    }

    test('invalid_payload: data that is not an object, or no data at all; invalid_room for a bad room name', async () => {
      const before_ = listStore(dir);
      const { room, a, b } = await pair();
      for (const [label, args] of [['a string', ['just a string']], ['an array', [[room, 'x.txt']]], ['a number', [7]], ['null', [null]], ['nothing', []]]) {
        const ack = await a.timeout(h.DEFAULT_WAIT).emitWithAck('send_file', ...args);
        assertError(ack, 'invalid_payload', `send_file with ${label} as data`);
        eq((await h.nextEvent(a, 'error', h.DEFAULT_WAIT)), ack, `send_file with ${label}: the error event equals the ack`);
      }
      await expectRefused(a, { name: 'x.txt', type: 'text/plain', data: 'aGk=' }, 'invalid_payload', 'no room field');
      await expectRefused(a, { room: 5, name: 'x.txt', type: 'text/plain', data: 'aGk=' }, 'invalid_payload', 'room is a number');
      await expectRefused(a, { room: 'bad room!', name: 'x.txt', type: 'text/plain', data: 'aGk=' }, 'invalid_room', 'an invalid room name');
      await assertNothing(b, 'new_file', 'refused send_file tells nobody');
      eq(listStore(dir), before_, 'the store after refused uploads (nothing written)');
    });

    test('not_in_room: a room never joined, a room left, a room that does not exist; checked before size and type', async () => {
      const before_ = listStore(dir);
      const { room, a, b } = await pair();
      const c = await client();
      const ok_ = { name: 'x.png', type: 'image/png', data: sample('image/png') };
      await expectRefused(c, { room, ...ok_ }, 'not_in_room', 'a room never joined (with members)');
      await expectRefused(c, { room: h.uniqueRoom('nobody'), ...ok_ }, 'not_in_room', 'a room nobody is in');
      await join(c, room);
      await h.expectAnswer(c, 'leave_room', { room }, 'left_room');
      await expectRefused(c, { room, ...ok_ }, 'not_in_room', 'a room left');
      // Membership comes first: a non-member learns nothing about its file.
      await expectRefused(c, { room, name: 'x.png', type: 'image/png', data: Buffer.alloc(MAX_BYTES + 1) }, 'not_in_room', 'too large and not a member', T(10000));
      await expectRefused(c, { room, name: 'x', type: 'text/html', data: Buffer.from('<p>') }, 'not_in_room', 'bad type and not a member');
      await assertNothing(a, 'new_file', 'nothing reaches the members');
      await assertNothing(b, 'new_file', 'nothing reaches the members');
      eq(listStore(dir), before_, 'the store after refused uploads (nothing written)');
    });

    test('10 MiB is accepted and 10 MiB + 1 byte is refused with file_too_large, in both encodings', async (t) => {
      // The arithmetic behind running with the default --max-payload: the largest packet here fits.
      const b64Len = 4 * Math.ceil((MAX_BYTES + 1) / 3);
      ok(b64Len + 1024 < DEFAULT_MAX_PAYLOAD, 'a 10 MiB + 1 byte file in base64 fits the default maxPayload', b64Len);
      const { room, a, b } = await pair();
      const base = listStore(dir);
      const big = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), crypto.randomBytes(MAX_BYTES - 8)]);
      const over = Buffer.concat([big, Buffer.from([0x42])]);
      ok(big.length === MAX_BYTES && over.length === MAX_BYTES + 1, 'test setup: sizes', [big.length, over.length]);
      const bound = T(30000);
      const t0 = Date.now();
      const f1 = await expectSent(a, { room, name: 'big.png', type: 'image/png', data: big }, big, '10 MiB binary', bound);
      const t1 = Date.now();
      await expectRefused(a, { room, name: 'over.png', type: 'image/png', data: over }, 'file_too_large', '10 MiB + 1 binary', bound);
      const big2 = Buffer.from(big);
      big2[MAX_BYTES - 1] ^= 0xff; // different bytes, so that this one is stored too
      const t2 = Date.now();
      const f2 = await expectSent(a, { room, name: 'big64.png', type: 'image/png', data: big2.toString('base64') }, big2, '10 MiB base64', bound);
      const t3 = Date.now();
      await expectRefused(a, { room, name: 'over64.png', type: 'image/png', data: over.toString('base64') }, 'file_too_large', '10 MiB + 1 base64', bound);
      t.diagnostic(`${mode.key}: 10 MiB binary upload ${t1 - t0} ms, 10 MiB base64 upload ${t3 - t2} ms`);
      const n1 = await h.nextEvent(b, 'new_file', bound);
      const n2 = await h.nextEvent(b, 'new_file', bound);
      eq([n1.id, n1.size, n2.id, n2.size], [f1.id, MAX_BYTES, f2.id, MAX_BYTES], 'new_file for the two accepted files only');
      await assertNothing(b, 'new_file', 'no new_file for the refused ones');
      for (const [f, bytes] of [[f1, big], [f2, big2]]) {
        const r = await fetch(ms.srv.port, f.url, { timeoutMs: bound });
        eq(r.status, 200, `GET ${f.url}`);
        eq(r.body.length, MAX_BYTES, `GET ${f.url}: length`);
        eq(sha256(r.body), sha256(bytes), `GET ${f.url}: sha256 of the body`);
        eq(r.headers['content-length'], String(MAX_BYTES), `GET ${f.url}: Content-Length`);
      }
      const now = listStore(dir);
      eq(now.blobs.length - base.blobs.length, 2, 'two new blobs (the refused files are not stored)');
      eq(now.meta.length - base.meta.length, 2, 'two new meta records');
      eq(now.tmp, [], 'nothing left in tmp/');
    });
  });
}

// ---------------------------------------------------------------------------------------------
// downloads, path traversal, deduplication, rate limit, plain /ws (one server, WebSocket clients)

describe('downloads, traversal, storage, /ws', () => {
  let ms;
  let base; // holds files/ (the store) and a secret beside it
  let dir;
  const SECRET = `SECRET-${crypto.randomBytes(8).toString('hex')}`;
  let a; let b; let room;
  const files = {}; // key -> {f, bytes}

  before(async () => {
    base = tmpDir('space-files-base-');
    dir = path.join(base, 'files');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(base, 'secret.txt'), `${SECRET}\n`);
    ms = new h.ManagedServer({ args: ['--files-dir', dir] });
    await ms.start();
  });
  after(async () => {
    h.closeAllClients();
    try { await ms.finish(); } finally { rmDir(base); }
  });
  beforeEach(async () => {
    await ms.ensure();
    room = h.uniqueRoom('dl');
    a = await h.connectClient(ms.srv, h.uniqueName('dl'));
    b = await h.connectClient(ms.srv, h.uniqueName('dl'));
    await join(a, room);
    await join(b, room);
  });
  afterEach(async () => { h.closeAllClients(); await ms.check(); });

  async function put(key, type, name, bytes) {
    const f = await expectSent(a, { room, name, type, data: bytes }, bytes, key);
    files[key] = { f, bytes };
    return files[key];
  }

  test('GET and HEAD: the bytes, Content-Type, Content-Length, ETag, Cache-Control, nosniff, Disposition, Accept-Ranges', async () => {
    const cases = [
      ['png', 'image/png', 'pic \u00e9.png'], ['jpeg', 'image/jpeg', 'p.jpg'], ['gif', 'image/gif', 'g.gif'],
      ['webp', 'image/webp', 'w.webp'], ['pdf', 'application/pdf', 'doc "q";.pdf'], ['text', 'text/plain', 'notes \u65e5\u672c.txt'],
    ];
    for (const [key, type, name] of cases) {
      const { f, bytes } = await put(key, type, name, sample(type, 5000));
      await checkDownload(ms.srv.port, f, bytes, key);
      const hd = await rawExchange(ms.srv.port, f.url, { method: 'HEAD' });
      eq(hd.status, 200, `${key}: HEAD status`);
      checkFileHeaders(hd.headers, f, bytes, `${key}: HEAD`);
      eq(hd.headers['content-length'], String(bytes.length), `${key}: HEAD Content-Length`);
      eq(hd.rest.length, 0, `${key}: HEAD sends no body bytes`);
      const cd = hd.headers['content-disposition'];
      const ascii = /filename="([^"]*)"/.exec(cd);
      if (ascii) ok(!/[^\x20-\x7e]/.test(ascii[1]), `${key}: the plain filename= fallback is printable ASCII`, cd);
    }
  });

  test('an empty text file: 200 with Content-Length 0; any Range → 416', async () => {
    const { f } = await put('empty', 'text/plain', 'empty.txt', Buffer.alloc(0));
    eq(f.size, 0, 'size of an empty file');
    const r = await fetch(ms.srv.port, f.url);
    eq([r.status, r.headers['content-length'], r.body.length], [200, '0', 0], 'GET of an empty file');
    const rr = await fetch(ms.srv.port, f.url, { headers: { Range: 'bytes=0-' } });
    eq([rr.status, rr.headers['content-range']], [416, 'bytes */0'], 'Range on an empty file');
  });

  test('Range: a single range → 206 with Content-Range and exactly those bytes; unsatisfiable → 416', async () => {
    const { f, bytes } = await put('range', 'application/pdf', 'range.pdf', sample('application/pdf', 10000));
    const n = bytes.length;
    const cases = [
      ['bytes=0-9', 0, 9], ['bytes=100-199', 100, 199], [`bytes=${n - 1}-${n - 1}`, n - 1, n - 1], ['bytes=9000-', 9000, n - 1],
      ['bytes=-25', n - 25, n - 1], [`bytes=-${n + 50}`, 0, n - 1], [`bytes=5000-${n + 1000}`, 5000, n - 1], ['bytes=0-0', 0, 0],
    ];
    for (const [range, from, to] of cases) {
      const r = await fetch(ms.srv.port, f.url, { headers: { Range: range } });
      eq(r.status, 206, `Range: ${range} status`);
      eq(r.headers['content-range'], `bytes ${from}-${to}/${n}`, `Range: ${range} Content-Range`);
      eq(r.headers['content-length'], String(to - from + 1), `Range: ${range} Content-Length`);
      ok(r.body.equals(bytes.subarray(from, to + 1)), `Range: ${range} body is bytes ${from}..${to}`, r.body.length);
      eq(r.headers.etag, `"${sha256(bytes)}"`, `Range: ${range} ETag`);
      eq(r.headers['content-type'], 'application/pdf', `Range: ${range} Content-Type`);
    }
    for (const range of [`bytes=${n}-`, `bytes=${n + 10}-${n + 20}`, 'bytes=-0']) {
      const r = await fetch(ms.srv.port, f.url, { headers: { Range: range } });
      eq(r.status, 416, `Range: ${range} (unsatisfiable) status`);
      eq(r.headers['content-range'], `bytes */${n}`, `Range: ${range} Content-Range`);
      ok(!r.body.includes(bytes.subarray(0, 16)), `Range: ${range}: no file bytes in a 416`, r.body.length);
    }
    // Not a single byte range: the server may serve the whole file (200) — never a wrong part.
    for (const range of ['bytes=0-1,5-6', 'items=0-5', 'bytes=abc', 'bytes=9-2']) {
      const r = await fetch(ms.srv.port, f.url, { headers: { Range: range } });
      ok(r.status === 200 && r.body.equals(bytes), `Range: ${range} (not a single valid range) serves the whole file`, [r.status, r.body.length]);
    }
    const hd = await rawExchange(ms.srv.port, f.url, { method: 'HEAD', headers: 'Range: bytes=10-19\r\n' });
    eq([hd.status, hd.headers['content-range'], hd.headers['content-length'], hd.rest.length], [206, `bytes 10-19/${n}`, '10', 0], 'HEAD with Range');
  });

  test('If-None-Match with the ETag → 304 without a body; another tag → 200', async () => {
    const { f, bytes } = await put('etag', 'image/gif', 'etag.gif', sample('image/gif', 3000));
    const etag = `"${sha256(bytes)}"`;
    for (const inm of [etag, `"0000", ${etag}`, '*']) {
      const r = await rawExchange(ms.srv.port, f.url, { headers: `If-None-Match: ${inm}\r\n` });
      eq(r.status, 304, `If-None-Match: ${inm} status`);
      eq(r.headers.etag, etag, `If-None-Match: ${inm}: 304 carries the ETag`);
      eq(r.headers['cache-control'], CACHE_CONTROL, `If-None-Match: ${inm}: 304 carries Cache-Control`);
      eq(r.rest.length, 0, `If-None-Match: ${inm}: a 304 has no body`);
    }
    const r2 = await rawExchange(ms.srv.port, f.url, { headers: `If-None-Match: "${'0'.repeat(64)}"\r\n` });
    eq(r2.status, 200, 'If-None-Match with another tag');
    ok(r2.rest.equals(bytes), 'If-None-Match with another tag: the whole file', r2.rest.length);
    const r3 = await rawExchange(ms.srv.port, f.url, { headers: `If-None-Match: ${etag}\r\nRange: bytes=0-4\r\n` });
    eq(r3.status, 304, 'If-None-Match matching with a Range: 304 wins');
  });

  test('304: Content-Length is absent or the size of the file (RFC 9110 §8.6: never 0 for a non-empty file)', async () => {
    const { f, bytes } = await put('etag304', 'text/plain', 'etag.txt', sample('text/plain', 777));
    const etag = `"${sha256(bytes)}"`;
    const r = await rawExchange(ms.srv.port, f.url, { headers: `If-None-Match: ${etag}\r\n` });
    eq(r.status, 304, '304 status');
    const cl = r.headers['content-length'];
    ok(cl === undefined || cl === String(bytes.length),
      `a 304 must not carry a Content-Length other than the file's (${bytes.length}); head:\n${r.head}\n`, cl);
  });

  test('If-None-Match: W/"<etag>" matches too (If-None-Match uses the weak comparison, RFC 9110 §13.1.2)', async () => {
    const { f, bytes } = await put('etagweak', 'text/plain', 'weak.txt', sample('text/plain', 300));
    const etag = `"${sha256(bytes)}"`;
    const w = await rawExchange(ms.srv.port, f.url, { headers: `If-None-Match: W/${etag}\r\n` });
    eq(w.status, 304, `If-None-Match: W/${etag} status`);
  });

  test('path traversal and wrong names on /files/...: 404, and nothing outside the store is ever served', async () => {
    const { f } = await put('trav', 'text/plain', 'ok.txt', Buffer.from('inside the store\n'));
    const { f: g } = await put('trav2', 'text/plain', 'other.txt', Buffer.from('another file\n'));
    fs.writeFileSync(path.join(dir, 'secret.txt'), `${SECRET}\n`); // a file inside the store dir, not a stored file
    const id = f.id;
    const sha = sha256(Buffer.from('inside the store\n'));
    const targets = [
      '/files/../../secret.txt', '/files/../secret.txt', '/files/..', '/files/../..', '/files/../../../../../../etc/passwd',
      '/files/%2e%2e/%2e%2e/secret.txt', '/files/%2e%2e%2f%2e%2e%2fsecret.txt', '/files/..%2f..%2fsecret.txt/x',
      '/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd/x', '/files//etc/passwd', '/files/secret.txt', '/files/secret.txt/secret.txt',
      `/files/${id}/../../secret.txt`, `/files/${id}/..%2f..%2fsecret.txt`, `/files/${id}/%2e%2e%2f%2e%2e%2fsecret.txt`,
      `/files/${id}/..%5c..%5csecret.txt`, `/files/${id}/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt`,
      `/files/${id}/../meta/${id}`, `/files/${id}/%2e%2e%2fmeta%2f${id}`, `/files/${id}%2f..%2f..%2fsecret.txt/ok.txt`,
      `/files/${id}/other.txt`, `/files/${g.id}/ok.txt`, `/files/${id}/OK.txt`, `/files/${id}/ok.txt/`, `/files/${id}/ok.txt%00`,
      `/files/${id}/ok.txt%00.png`, `/files/${id}//ok.txt`, `/files/${id}/`, `/files/${id}`, `/files/${id}/ok`,
      `/files/${id.slice(0, 31)}/ok.txt`, `/files/${id}0/ok.txt`, `/files/${id.toUpperCase()}/ok.txt`,
      `/files/${id.slice(0, 31)}G/ok.txt`, `/files/${sha}/ok.txt`, `/files/${sha.slice(0, 32)}/ok.txt`,
      `/files/${'0'.repeat(32)}/ok.txt`, `/files/%${id.slice(1)}/ok.txt`, `/files/${id.slice(0, 30)}%30%30/ok.txt`,
      `/files/blobs/${sha.slice(0, 2)}/${sha}`, `/files/meta/${id}`, `/files/tmp/x`,
    ];
    for (const target of targets) {
      const r = await rawExchange(ms.srv.port, target);
      const body = r.rest.toString('latin1');
      ok(!body.includes(SECRET) && !body.includes('root:x:0:0') && !body.includes(sha) && !body.includes('inside the store'),
        `GET ${target}: nothing from outside the store, no meta record, not the file under another name`, body.slice(0, 200));
      ok(r.status === 404 || r.status === 400, `GET ${target}: 404 (or 400 for a request the parser refuses)`, r.head.split('\r\n')[0]);
    }
    // And the real URLs still work.
    eq((await fetch(ms.srv.port, f.url)).status, 200, 'the file itself');
    eq((await fetch(ms.srv.port, g.url)).status, 200, 'the other file');
  });

  test('content-addressed: the same bytes sent twice (both encodings, other users and rooms) are stored once', async () => {
    const before_ = listStore(dir);
    const bytes = sample('image/webp', 4096);
    const f1 = await expectSent(a, { room, name: 'one.webp', type: 'image/webp', data: bytes }, bytes, 'first copy');
    const c = await h.connectClient(ms.srv, h.uniqueName('dup'));
    const room2 = h.uniqueRoom('dup');
    await join(c, room2);
    const f2 = await expectSent(c, { room: room2, name: 'two.webp', type: 'image/webp', data: bytes.toString('base64') }, bytes, 'second copy (base64)');
    const f3 = await expectSent(a, { room, name: 'one.webp', type: 'image/webp', data: bytes }, bytes, 'third copy, same name');
    eq(new Set([f1.id, f2.id, f3.id]).size, 3, 'each send is its own file (own id)');
    for (const f of [f1, f2, f3]) await checkDownload(ms.srv.port, f, bytes, `copy ${f.name} ${f.id}`);
    const after_ = listStore(dir);
    const sha = sha256(bytes);
    const newBlobs = after_.blobs.filter((p) => !before_.blobs.includes(p));
    eq(newBlobs, [path.join('blobs', sha.slice(0, 2), sha)], 'exactly one new blob, at blobs/<2 hex>/<sha256>');
    eq(after_.meta.filter((p) => !before_.meta.includes(p)).sort(), [f1.id, f2.id, f3.id].map((i) => path.join('meta', i)).sort(),
      'one meta record per sent file');
    ok(fs.readFileSync(path.join(dir, newBlobs[0])).equals(bytes), 'the blob holds the bytes', newBlobs[0]);
    eq(after_.tmp, [], 'nothing left in tmp/');
    eq(after_.other.filter((p) => p !== 'secret.txt'), [], 'nothing else in the store dir');
    // Different bytes: a second blob.
    const other = sample('image/webp', 4096);
    await expectSent(a, { room, name: 'three.webp', type: 'image/webp', data: other }, other, 'different bytes');
    eq(listStore(dir).blobs.length, after_.blobs.length + 1, 'different bytes make a new blob');
  });

  test('send_file and send_message share the per-connection rate-limit bucket (20/s, burst 40)', async () => {
    // 40 messages empty the bucket; files sent in the same instant are refused with rate_limited.
    const burst = [];
    for (let i = 0; i < 40; i++) burst.push(a.timeout(T(5000)).emitWithAck('send_message', { room, text: `m${i}` }));
    for (let i = 0; i < 8; i++) burst.push(a.timeout(T(5000)).emitWithAck('send_file', { room, name: `r${i}.txt`, type: 'text/plain', data: Buffer.from(`r${i}`) }));
    const res = await Promise.all(burst);
    const fileRes = res.slice(40);
    const limited = fileRes.filter((r) => r && r.code === 'rate_limited');
    ok(limited.length >= 1, 'after 40 send_message at once, send_file in the same burst is rate_limited', fileRes);
    for (const r of limited) eq(r.event, 'send_file', 'rate_limited error names send_file');
    // And the other way round on a fresh connection: 40 files, then messages.
    const c = await h.connectClient(ms.srv, h.uniqueName('rl'));
    await join(c, room);
    const burst2 = [];
    for (let i = 0; i < 40; i++) burst2.push(c.timeout(T(10000)).emitWithAck('send_file', { room, name: `s${i}.txt`, type: 'text/plain', data: Buffer.from(`s${i}`) }));
    for (let i = 0; i < 8; i++) burst2.push(c.timeout(T(10000)).emitWithAck('send_message', { room, text: `after files ${i}` }));
    const res2 = await Promise.all(burst2);
    const msgLimited = res2.slice(40).filter((r) => r && r.code === 'rate_limited');
    ok(msgLimited.length >= 1, 'after 40 send_file at once, send_message in the same burst is rate_limited', res2.slice(40));
    for (const r of msgLimited) eq(r.event, 'send_message', 'rate_limited error names send_message');
  });

  test('plain /ws client: send_file with base64 → {"event":"file_sent","data":{...},"id":1}; members get new_file', async () => {
    const name = h.uniqueName('plain');
    const ws = new WebSocket(`ws://127.0.0.1:${ms.srv.port}/ws?name=${name}`, { perMessageDeflate: false });
    const inbox = new h.Inbox('ws-plain');
    ws.on('message', (d, isBinary) => {
      if (isBinary) { inbox.push('$binary', d); return; }
      let m;
      try { m = JSON.parse(d.toString('utf8')); } catch (_) { inbox.push('$unparsable', d.toString('utf8')); return; }
      inbox.push(m.event, m.data, { msg: m });
    });
    ws.on('close', (code) => inbox.push('$close', code));
    ws.on('error', (e) => inbox.push('$error', e.message));
    try {
      const conn = await inbox.take(['connected', '$close', '$error'], null, h.DEFAULT_WAIT);
      eq(conn.name, 'connected', 'first /ws frame');
      const user = conn.data.user;
      ws.send(JSON.stringify({ event: 'join_room', data: { room }, id: 7 }));
      const j = await inbox.take(['joined_room', 'error'], null, h.DEFAULT_WAIT);
      eq([j.name, j.msg.id], ['joined_room', 7], 'join_room over /ws');
      const bytes = sample('text/plain', 500);
      const sent = { room, name: 'from ws \u00e9.txt', type: 'text/plain', data: bytes.toString('base64') };
      ws.send(JSON.stringify({ event: 'send_file', data: sent, id: 1 }));
      const r = await inbox.take(['file_sent', 'error'], null, T(5000));
      const f = checkFileSent({ name: r.name, data: r.data, ack: r.data }, sent, bytes, '/ws send_file');
      eq(r.msg, { event: 'file_sent', data: f, id: 1 }, '/ws reply frame');
      for (const s of [a, b]) {
        eq(h.dropOffset(await h.nextEvent(s, 'new_file', h.DEFAULT_WAIT)),
          { id: f.id, room, user, name: sent.name, type: 'text/plain', size: bytes.length, url: f.url }, `new_file at ${s.label}`);
      }
      await checkDownload(ms.srv.port, f, bytes, '/ws upload');
      // An invalid upload answers an error with the same id.
      ws.send(JSON.stringify({ event: 'send_file', data: { ...sent, data: 'not base64!' }, id: 2 }));
      const e = await inbox.take(['error', 'file_sent'], null, h.DEFAULT_WAIT);
      eq(e.name, 'error', '/ws invalid base64');
      assertError(e.data, 'invalid_file', '/ws invalid base64');
      eq(e.msg.id, 2, '/ws error reply id');
      // A binary upload by a Socket.IO member reaches the /ws member as JSON (no binary frame).
      const png = sample('image/png', 256);
      const g = await expectSent(a, { room, name: 'to-ws.png', type: 'image/png', data: png }, png, 'socket.io → /ws');
      const nf = await inbox.take('new_file', null, h.DEFAULT_WAIT);
      eq(h.dropOffset(nf.data), { id: g.id, room, user: userOf(a), name: 'to-ws.png', type: 'image/png', size: png.length, url: g.url }, 'new_file at the /ws member');
      eq(inbox.count('$binary'), 0, 'no binary frames to a /ws client');
    } finally {
      ws.terminate();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// a files dir that cannot be written

describe('a files dir that cannot be written', () => {
  let ms;
  let base;
  let how;
  before(async () => {
    base = tmpDir('space-files-ro-');
    let filesDir = path.join(base, 'files');
    fs.mkdirSync(filesDir);
    fs.chmodSync(filesDir, 0o555);
    let writable = true;
    try { fs.writeFileSync(path.join(filesDir, 'probe'), 'x'); } catch (_) { writable = false; }
    if (writable) {
      // Running as root (or with CAP_DAC_OVERRIDE): mode bits do not stop writes. A path under a
      // regular file makes every mkdir fail with ENOTDIR instead.
      fs.rmSync(path.join(filesDir, 'probe'));
      fs.writeFileSync(path.join(base, 'somefile'), 'a regular file\n');
      filesDir = path.join(base, 'somefile', 'files');
      how = `--files-dir under a regular file (${filesDir}): chmod 0555 does not stop this user (uid ${process.getuid()})`;
    } else {
      how = `--files-dir chmod 0555 (${filesDir})`;
    }
    ms = new h.ManagedServer({ args: ['--files-dir', filesDir] });
    await ms.start();
  });
  after(async () => {
    h.closeAllClients();
    try { await ms.finish(); } finally { rmDir(path.join(base, 'files')); rmDir(base); }
  });

  test('send_file answers internal_error (event and ack), tells nobody, stores nothing; chat still works', async (t) => {
    t.diagnostic(`read-only store: ${how}`);
    const room = h.uniqueRoom('ro');
    const a = await h.connectClient(ms.srv, h.uniqueName('ro'));
    const b = await h.connectClient(ms.srv, h.uniqueName('ro'));
    await join(a, room);
    await join(b, room);
    for (const [enc, bytes] of [['binary', sample('image/png', 2000)], ['base64', sample('text/plain', 2000)]]) {
      const type = enc === 'binary' ? 'image/png' : 'text/plain';
      const data = enc === 'binary' ? bytes : bytes.toString('base64');
      await expectRefused(a, { room, name: `ro-${enc}`, type, data }, 'internal_error', `${enc} upload into an unwritable store`, T(5000));
    }
    await assertNothing(b, 'new_file', 'a failed store tells nobody');
    await assertNothing(a, 'file_sent', 'a failed store answers only the error');
    const store = listStore(base);
    eq([...store.blobs, ...store.meta, ...store.tmp, ...store.other].filter((p) => p !== 'somefile'), [], 'nothing written anywhere under the temp dir');
    ok(/store failed/.test(ms.srv.stderr), 'the server logs the failed store', h.show(ms.srv.stderr.slice(-500)));
    // Nothing reachable: no URL was handed out; a guessed id finds nothing.
    const r = await rawExchange(ms.srv.port, `/files/${'0'.repeat(32)}/ro-binary`);
    eq(r.status, 404, 'no file is reachable');
    const m = await h.expectAnswer(a, 'send_message', { room, text: 'still alive' }, 'message_sent');
    eq((await h.nextEvent(b, 'new_message', h.DEFAULT_WAIT)).id, m.id, 'chat works after the failed uploads');
    await ms.check();
  });

  test('a write error after the blob was written (meta/ is not a directory): internal_error, and no blob left behind', async () => {
    const store = tmpDir('space-files-meta-');
    fs.writeFileSync(path.join(store, 'meta'), 'a regular file where meta/ should be\n');
    const srv = await h.startServer({ args: ['--files-dir', store] });
    try {
      const room = h.uniqueRoom('meta');
      const a = await h.connectClient(srv, h.uniqueName('meta'));
      const b = await h.connectClient(srv, h.uniqueName('meta'));
      await join(a, room);
      await join(b, room);
      await expectRefused(a, { room, name: 'm.txt', type: 'text/plain', data: Buffer.from('never stored\n') }, 'internal_error', 'meta/ not writable');
      await assertNothing(b, 'new_file', 'a failed store tells nobody');
      const left = listStore(store);
      eq({ blobs: left.blobs, tmp: left.tmp }, { blobs: [], tmp: [] }, 'a failed store stores nothing (no orphan blob, no partial file)');
    } finally {
      h.closeAllClients();
      await srv.stopClean().finally(() => rmDir(store));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// load: 20 uploads of 5 MiB at once while a chat goes on in another room
//
// The uploaders live in a worker thread: encoding 20 x 5 MiB (base64, JSON, polling's "b<base64>")
// takes the client's own event loop for a while, and the chat clients must not measure that.

const UPLOADER_WORKER = `
'use strict';
const { workerData, parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
const h = require(workerData.harness);
const post = (m) => parentPort.postMessage(m);
(async () => {
  const { port, n, size, room, kinds, timeoutMs } = workerData;
  const ups = [];
  for (let i = 0; i < n; i++) {
    const k = kinds[i % kinds.length];
    const s = await h.connectClient(port, 'up' + i + '_' + crypto.randomBytes(2).toString('hex'), { transports: [k.transport] });
    await h.expectAnswer(s, 'join_room', { room }, 'joined_room');
    const bytes = Buffer.concat([Buffer.from('%PDF-1.4\\n'), crypto.randomBytes(size - 9)]);
    ups.push({ s, k, sha: crypto.createHash('sha256').update(bytes).digest('hex'), data: k.enc === 'binary' ? bytes : bytes.toString('base64') });
  }
  post({ type: 'ready' });
  await new Promise((r) => parentPort.once('message', r));
  const t0 = Date.now();
  await Promise.all(ups.map(async (u, i) => {
    const sent = { room, name: 'load-' + i + '.pdf', type: 'application/pdf', data: u.data };
    let ack;
    try { ack = await u.s.timeout(timeoutMs).emitWithAck('send_file', sent); }
    catch (e) { ack = { noAck: e.message }; }
    const ev = await u.s.inbox.take(['file_sent', 'error'], null, timeoutMs).then((it) => ({ name: it.name, data: it.data }), (e) => ({ name: null, error: e.message }));
    post({ type: 'answer', i, at: Date.now() - t0, ack, ev, sha: u.sha, kind: u.k, name: sent.name });
  }));
  post({ type: 'uploaded', ms: Date.now() - t0 });
  const heard = [];
  for (const u of ups) {
    await h.waitFor(() => u.s.inbox.count('new_file') >= n - 1, timeoutMs, u.s.label + ' to hear of every other upload').catch(() => {});
    heard.push(u.s.inbox.all('new_file').map((d) => d.id));
  }
  post({ type: 'heard', heard });
  h.closeAllClients();
})().catch((e) => post({ type: 'fatal', error: String(e && e.stack || e) }));
`;

// The server's loop-lag figures from /metrics: the cumulative buckets of space_event_loop_lag_seconds
// and the worst turn since the start (space_event_loop_lag_max_seconds).
async function loopLag(port) {
  const r = await fetch(port, '/metrics');
  const text = r.body.toString('utf8');
  const buckets = [];
  for (const m of text.matchAll(/^space_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) buckets.push([m[1], Number(m[2])]);
  const max = /^space_event_loop_lag_max_seconds (\S+)$/m.exec(text);
  return { buckets, maxMs: max ? Number(max[1]) * 1000 : null };
}

// The worst loop turn between two readings, as the bucket it fell in ("<= 25 ms").
function worstTurn(before, after) {
  let worst = 'none';
  for (let i = 0; i < after.buckets.length; i++) {
    const prev = (i ? after.buckets[i - 1][1] - before.buckets[i - 1][1] : 0);
    if (after.buckets[i][1] - before.buckets[i][1] > prev) worst = after.buckets[i][0] === '+Inf' ? '> 2.5 s' : `<= ${Number(after.buckets[i][0]) * 1000} ms`;
  }
  return worst;
}

function loadSuite(title, kinds) {
  describe(`20 concurrent 5 MiB uploads during a chat: ${title}`, () => {
    let ms;
    let dir;
    let worker;
    before(async () => {
      dir = tmpDir();
      ms = new h.ManagedServer({ args: ['--files-dir', dir] });
      await ms.start();
    });
    after(async () => {
      if (worker) await worker.terminate();
      h.closeAllClients();
      try { await ms.finish(); } finally { rmDir(dir); }
    });

    test('every upload is answered; chat messages keep being delivered and answered (each round trip ≤ 2 s)', async (t) => {
      const { Worker } = require('node:worker_threads');
      const N = 20;
      const SIZE = 5 * MIB;
      const RTT_BOUND = T(2000);
      const STALL_WAIT = T(30000);
      const UPLOAD_BOUND = T(45000);
      const upRoom = h.uniqueRoom('up');
      const chatRoom = h.uniqueRoom('chat');
      const msgs = new h.Inbox('uploader-worker');
      worker = new Worker(UPLOADER_WORKER, {
        eval: true,
        workerData: { harness: require.resolve('./harness'), port: ms.srv.port, n: N, size: SIZE, room: upRoom, kinds, timeoutMs: UPLOAD_BOUND },
      });
      worker.on('message', (m) => msgs.push(m.type, m));
      worker.on('error', (e) => msgs.push('fatal', { error: String(e && e.stack || e) }));
      const fromWorker = async (type, timeoutMs) => {
        const it = await msgs.take([type, 'fatal'], null, timeoutMs);
        if (it.name === 'fatal') throw new Error(`the uploader worker failed: ${it.data.error}`);
        return it.data;
      };
      await fromWorker('ready', T(30000));

      const alice = await h.connectClient(ms.srv, h.uniqueName('chat'));
      const bob = await h.connectClient(ms.srv, h.uniqueName('chat'));
      await join(alice, chatRoom);
      await join(bob, chatRoom);

      let uploadsDone = false;
      let t0 = Date.now();
      const rounds = []; // {start, rtt, during}
      let chatError = null;
      const chat = (async () => {
        let seq = 0;
        let lastStart = 0;
        while (!uploadsDone) {
          // One message per 80 ms at most: below the 20/s rate limit (load shaping, not synchronisation).
          const wait = lastStart + 80 - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const id = `c${++seq}`;
          const start = lastStart = Date.now();
          // The round trip must finish within RTT_BOUND; a late one is still waited for (up to
          // STALL_WAIT) so that the report can say how long the chat really stalled.
          const [ack] = await Promise.all([
            alice.timeout(STALL_WAIT).emitWithAck('send_message', { room: chatRoom, text: `chat ${id}`, client_msg_id: id })
              .catch((e) => { throw new Error(`chat ${id}: no message_sent within ${STALL_WAIT} ms (${e.message})`); }),
            bob.inbox.take('new_message', (d) => d && d.text === `chat ${id}`, STALL_WAIT)
              .catch((e) => { throw new Error(`chat ${id}: new_message not delivered within ${STALL_WAIT} ms (${e.message})`); }),
          ]);
          if (!ack || ack.client_msg_id !== id) throw new Error(`chat ${id}: the ack was ${show(ack)}`);
          const rtt = Date.now() - start;
          rounds.push({ start, rtt, during: !uploadsDone });
          if (rtt > RTT_BOUND) throw new Error(`chat ${id}: the round trip took ${rtt} ms (bound ${RTT_BOUND} ms), ${start - t0} ms after the uploads started`);
        }
      })().catch((e) => { chatError = e; });

      const lagBefore = await loopLag(ms.srv.port);
      t0 = Date.now();
      worker.postMessage('go');
      const answers = [];
      try {
        for (let k = 0; k < N; k++) answers.push(await fromWorker('answer', UPLOAD_BOUND + T(5000)));
        await fromWorker('uploaded', T(5000));
      } finally {
        uploadsDone = true;
      }
      const uploadMs = Date.now() - t0;
      await chat;
      const lagAfter = await loopLag(ms.srv.port);
      const worst = rounds.length ? Math.max(...rounds.map((r) => r.rtt)) : null;
      const during = rounds.filter((r) => r.during);
      t.diagnostic(`${title}: 20 x 5 MiB uploads answered in ${uploadMs} ms; chat: ${rounds.length} round trips ` +
        `(${during.length} during the uploads), worst ${worst} ms (bound ${RTT_BOUND} ms); ` +
        `the server's worst loop turn during the uploads ${worstTurn(lagBefore, lagAfter)}` +
        (lagAfter.maxMs !== null ? ` (the longest since the start: ${lagAfter.maxMs.toFixed(1)} ms)` : '') +
        (chatError ? `, then failed: ${chatError.message}` : '') +
        `; round trips: ${rounds.map((r) => r.rtt).join(' ')}`);
      if (chatError) throw new Error(`${title}: the chat stalled during the uploads after ${rounds.length} round trips (${rounds.map((r) => r.rtt).join(' ')} ms): ${chatError.message}`);
      ok(during.length >= 1, 'at least one chat round trip completed while the uploads were in progress', rounds);
      ok(worst <= RTT_BOUND, `every chat round trip within ${RTT_BOUND} ms`, rounds.map((r) => r.rtt));

      // Every upload was answered with file_sent (event and ack) and downloads intact.
      answers.sort((x, y) => x.i - y.i);
      const files = [];
      for (const a of answers) {
        const what = `upload ${a.i} (${a.kind.transport}, ${a.kind.enc})`;
        ok(a.ev.name === 'file_sent', `${what}: answered with file_sent`, a.ev);
        eq(a.ack, a.ev.data, `${what}: the ack equals file_sent`);
        eq([a.ev.data.size, a.ev.data.type, a.ev.data.name, a.ev.data.room], [SIZE, 'application/pdf', a.name, upRoom], `${what}: file_sent fields`);
        const r = await fetch(ms.srv.port, a.ev.data.url, { timeoutMs: T(20000) });
        eq([r.status, r.body.length], [200, SIZE], `${what}: download`);
        eq(sha256(r.body), a.sha, `${what}: sha256 of the download`);
        files.push(a.ev.data.id);
      }
      const heard = (await fromWorker('heard', UPLOAD_BOUND)).heard;
      for (let i = 0; i < N; i++) {
        eq([...heard[i]].sort(), files.filter((_, j) => j !== i).sort(), `uploader ${i}: new_file for every other upload`);
      }
      const store = listStore(dir);
      eq([store.blobs.length, store.meta.length, store.tmp.length], [N, N, 0], 'blobs, meta records, tmp files after the load');
    });
  });
}

loadSuite('binary attachments (10 over WebSocket, 10 over polling)', [
  { transport: 'websocket', enc: 'binary' }, { transport: 'polling', enc: 'binary' },
]);
loadSuite('base64 text (10 over WebSocket, 10 over polling)', [
  { transport: 'websocket', enc: 'base64' }, { transport: 'polling', enc: 'base64' },
]);
