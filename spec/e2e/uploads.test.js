'use strict';
// Uploads off the event loop (issue 16, item 1), through the real server and socket.io-client:
// - an upload's base64 text reaches Lua as a file handle, not a string, and is decoded, checked,
//   hashed and written by space.store_file's thread-pool job, so the handler's call allocates
//   nothing of its size: 8 MiB of base64 is stored under --lua-memory 40 (a call may allocate a
//   quarter of the cap, 10 MiB; decoding in the call took 2 x 6 MiB);
// - what a handler sees: space.is_file, h.size / h.length / h.is_base64 / #h / tostring(h), a
//   handle encoded back as its string, one kept in space.store across events, the declared
//   string fields of app.event given strings (a long send_message is still message_too_long);
// - store_file's refusals from the job: content of another type and base64 that does not decode,
//   also for large uploads, store nothing;
// - a WebSocket message that spans many reads arrives whole (binary and text), and one whose text
//   is not UTF-8 closes with 1007.
//
// Run: SPACE_SERVER=build/space-server SPACE_SCRIPTS=scripts node --test spec/e2e/uploads.test.js

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./harness');

const { T, show } = h;
const MIB = 1024 * 1024;

after(() => h.closeAllClients());

const PROBE = String.raw`
local space = require "space"
local kept = space.store("kept")
return {
  -- What the handler sees of data.blob (a large string) and data.small (a short one).
  probe = function(_, data)
    local b = data.blob
    return "probed", {
      is_file = space.is_file(b), lua_type = type(b), size = b.size, length = b.length, len = #b,
      is_base64 = b.is_base64, small_is_string = type(data.small) == "string",
      small_is_file = space.is_file(data.small), head = tostring(b):sub(1, 8), echo = b,
    }
  end,
  -- Keeps the handle in a store kept across events; drops the other one.
  keep = function(_, data)
    kept.handle = data.blob
    return "kept", { length = #data.blob }
  end,
  kept = function()
    return "kept", { length = #kept.handle, head = tostring(kept.handle):sub(1, 8) }
  end,
}
`;

function probeTree() {
  return h.copyScripts((rel, text) => {
    if (rel === 'rules.lua') {
      return text.replace(/per_second = \d+/, 'per_second = 1000').replace(/burst = \d+/, 'burst = 1000');
    }
    if (rel === 'init.lua') {
      return text.replace(/^return \{/m, 'local app = {').trimEnd() +
        '\nfor name, fn in pairs(require "probe") do app.namespaces["/"].events[name] = fn end\n' +
        'return app\n';
    }
    return text;
  });
}

function pdf(size) {
  return Buffer.concat([Buffer.from('%PDF-1.4\n'), crypto.randomBytes(size - 9)]);
}

test('8 MiB of base64 is stored under --lua-memory 40: the handler\'s call never holds the upload (no string, no decoding in Lua)', async () => {
  const s = await h.startServer({ args: ['--lua-memory', '40'] });
  try {
    const c = await h.connectClient(s, 'mem');
    const room = h.uniqueRoom('mem');
    await h.expectAnswer(c, 'join_room', { room }, 'joined_room');
    for (const enc of ['base64', 'binary']) {
      const bytes = pdf(8 * MIB);
      const data = enc === 'base64' ? bytes.toString('base64') : bytes;
      const sent = await h.ackRequest(c, 'send_file', { room, name: `m-${enc}.pdf`, type: 'application/pdf', data }, 'file_sent');
      assert.equal(sent.name, 'file_sent', `${enc}: ${show(sent.data)}`);
      assert.equal(sent.data.size, bytes.length);
      assert.deepEqual(sent.ack, sent.data);
    }
    c.disconnect();
  } finally {
    await s.stopClean();
  }
});

test('a large string reaches the handler as a file handle; kept or dropped, it stays sound; declared strings stay strings', async () => {
  const tree = probeTree();
  fs.writeFileSync(path.join(tree, 'probe.lua'), PROBE);
  const s = await h.startServer({ scripts: tree });
  try {
    const c = await h.connectClient(s, 'probe');
    const text = crypto.randomBytes(300 * 1024).toString('base64'); // 409,600 characters, no padding
    const padded = crypto.randomBytes(100 * 1024 + 1).toString('base64'); // ends in "=="
    const p = await h.expectAnswer(c, 'probe', { blob: text, small: 'aGVsbG8=' }, 'probed');
    assert.deepEqual(
      [p.is_file, p.lua_type, p.size, p.length, p.len, p.is_base64, p.small_is_string, p.small_is_file, p.head],
      [true, 'userdata', 300 * 1024, text.length, text.length, true, true, false, text.slice(0, 8)],
    );
    assert.equal(p.echo, text, 'a handle encodes back as the same string');
    const q = await h.expectAnswer(c, 'probe', { blob: padded }, 'probed');
    assert.equal(q.size, 100 * 1024 + 1, 'size counts the padding');
    // Escapes in the JSON text are undone in the handle, as in a string.
    const escaped = 'a"b\\c\u00e9\n'.repeat(10000);
    const e = await h.expectAnswer(c, 'probe', { blob: escaped }, 'probed');
    assert.equal(e.echo, escaped);
    assert.equal(e.len, Buffer.byteLength(escaped));

    // Kept in space.store across events and many collections; the dropped ones are freed (ASan).
    const kept = crypto.randomBytes(200 * 1024).toString('base64');
    assert.deepEqual(await h.expectAnswer(c, 'keep', { blob: kept }, 'kept'), { length: kept.length });
    for (let i = 0; i < 20; i++) await h.expectAnswer(c, 'probe', { blob: crypto.randomBytes(100 * 1024).toString('base64') }, 'probed');
    assert.deepEqual(await h.expectAnswer(c, 'kept', {}, 'kept'), { length: kept.length, head: kept.slice(0, 8) });

    // A declared string field gets a string: a long message is still message_too_long.
    const room = h.uniqueRoom('probe');
    await h.expectAnswer(c, 'join_room', { room }, 'joined_room');
    const err = await h.expectError(c, 'send_message', { room, text: 'x'.repeat(70 * 1024) });
    assert.equal(err.code, 'message_too_long', show(err));
    // An event name that long is a name all the same: unknown_event, the connection stays.
    const unknown = await h.expectError(c, 'n'.repeat(70 * 1024), {});
    assert.equal(unknown.code, 'unknown_event', show(unknown));
    await h.expectAnswer(c, 'get_room_users', { room }, 'room_users');
    c.disconnect();
  } finally {
    await s.stopClean();
  }
});

test('the store job\'s refusals: content of another type, bad base64, over the size once decoded; nothing stored', async () => {
  const s = await h.startServer();
  try {
    const c = await h.connectClient(s, 'refuse');
    const other = await h.connectClient(s, 'other');
    const room = h.uniqueRoom('refuse');
    await h.expectAnswer(c, 'join_room', { room }, 'joined_room');
    await h.expectAnswer(other, 'join_room', { room }, 'joined_room');
    const big = crypto.randomBytes(MIB).toString('base64');
    const cases = [
      ['random bytes declared as png (large base64)', { type: 'image/png', data: big }, 'file_type_not_allowed'],
      ['random bytes declared as png (binary)', { type: 'image/png', data: crypto.randomBytes(MIB) }, 'file_type_not_allowed'],
      ['a pdf declared as text/plain (large base64)', { type: 'text/plain', data: pdf(MIB).toString('base64') }, 'file_type_not_allowed'],
      ['large text that is not base64', { type: 'text/plain', data: `${big.slice(0, -4)}!!!!` }, 'invalid_file'],
      ['large base64 with whitespace', { type: 'text/plain', data: `${big.slice(0, 1000)} ${big.slice(1001)}` }, 'invalid_file'],
    ];
    for (const [label, fields, code] of cases) {
      const r = await h.ackRequest(c, 'send_file', { room, name: 'f.txt', ...fields }, 'file_sent');
      assert.equal(r.name, 'error', `${label}: ${show(r.data)}`);
      assert.equal(r.data.code, code, `${label}: ${show(r.data)}`);
      assert.equal(r.data.event, 'send_file', label);
      assert.deepEqual(r.ack, r.data, `${label}: the ack carries the error`);
    }
    // Nobody was told, and the sender still works.
    await h.settle(other);
    assert.equal(other.inbox.count('new_file'), 0);
    const ok = await h.ackRequest(c, 'send_file', { room, name: 'ok.txt', type: 'text/plain', data: Buffer.from('fine').toString('base64') }, 'file_sent');
    assert.equal(ok.name, 'file_sent', show(ok.data));
    c.disconnect();
    other.disconnect();
  } finally {
    await s.stopClean();
  }
});

// A raw WebSocket (the ws package) whose frames the server must put together from many reads.
test('a WebSocket message spanning many reads arrives whole; one that is not UTF-8 closes 1007', async () => {
  const WebSocket = require('ws');
  const s = await h.startServer();
  try {
    const open = async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
      const msgs = new h.Inbox('raw');
      ws.on('message', (d, isBinary) => msgs.push('msg', isBinary ? d : d.toString()));
      const closed = new Promise((r) => ws.on('close', (code) => r(code)));
      await msgs.take('msg', (d) => typeof d === 'string' && d[0] === '0', T(5000));
      ws.send('40');
      await msgs.take('msg', (d) => typeof d === 'string' && d.startsWith('40'), T(5000));
      return { ws, msgs, closed };
    };
    // A 3 MiB event written in pieces: the server sees it across many reads.
    const { ws, msgs, closed } = await open();
    const blob = crypto.randomBytes(3 * MIB / 4 * 3).toString('base64');
    ws.send(`420["get_room_users",{"room":"r","pad":"${blob}"}]`);
    const answer = await msgs.take('msg', (d) => typeof d === 'string' && d.startsWith('430'), T(10000));
    assert.match(answer.data, /"count":0/);
    // The same length of text ending in a byte that is not UTF-8.
    const bad = Buffer.concat([Buffer.from(`42["x","${'a'.repeat(2 * MIB)}`), Buffer.from([0xff]), Buffer.from('"]')]);
    ws.send(bad, { binary: false });
    assert.equal(await h.withTimeout(closed, T(10000)), 1007);
    await h.assertAlive(s);
  } finally {
    await s.stopClean();
  }
});
