'use strict';
// Room history (issue 14, PROTOCOL.md §3 "History", §5 history.*, §6 --data-dir) through the stock
// socket.io-client and plain /ws clients against the real binary:
//   - new_message carries an offset; offsets increase and sort as strings
//   - get_history pages across 250 messages (has_more, before), its limits and errors, members only
//   - join_room {history: N} → joined_room {history, offset}
//   - rules history.max_messages / max_age_s: edit + reload (10 → only 10 kept; 0 → off)
//   - SIGTERM and a restart on the same --data-dir: the history is back, new offsets are larger
//   - a full disk (RLIMIT_FSIZE): chat keeps delivering, the failed writes are counted in /metrics
// The scripts are a copy with the rate limit raised (a test sends hundreds of messages at once).
// Every wait is bounded; nothing sleeps for a fixed time.

const { test, describe, before, after, afterEach } = require('node:test');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

const { T, eq, ok, show } = h;
const OFFSET = /^[0-9a-f]{16}$/;

const scriptsDir = h.copyScripts((file, text) => (file === 'rules.lua'
  ? text.replace(/per_second = \d+/, 'per_second = 100000').replace(/burst = \d+/, 'burst = 100000')
  : text));
const tmpDirs = [scriptsDir];
function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

after(() => {
  h.closeAllClients();
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});
afterEach(() => h.closeAllClients());

function httpGet(srv, p) {
  const req = `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nConnection: close\r\n\r\n`;
  return h.httpRaw(srv.port, req, T(5000));
}

async function metric(srv, name) {
  const r = await httpGet(srv, '/metrics');
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.body);
  ok(m, `/metrics has ${name}`, r.body.slice(0, 400));
  return Number(m[1]);
}

async function reload(srv) {
  const req = `POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
  const r = await h.httpRaw(srv.port, req, T(5000));
  eq(r.status, 200, `POST /api/reload: ${r.body}`);
}

// Sends n messages (text `${prefix} i`) without waiting between them; resolves the message_sent data
// in order, and the new_message data the watcher got for them.
async function sendMany(sender, watcher, room, n, prefix) {
  const sentBefore = sender.inbox.count('message_sent');
  const seenBefore = watcher.inbox.count('new_message', (d) => d.room === room);
  for (let i = 0; i < n; i++) sender.emit('send_message', { room, text: `${prefix} ${i}` });
  await h.waitFor(() => sender.inbox.count('message_sent') >= sentBefore + n, T(10000), `${n} message_sent`);
  await h.waitFor(() => watcher.inbox.count('new_message', (d) => d.room === room) >= seenBefore + n, T(10000),
    `${n} new_message at the watcher`);
  const got = watcher.inbox.all('new_message', (d) => d.room === room).slice(seenBefore);
  eq(got.map((m) => m.text), Array.from({ length: n }, (_, i) => `${prefix} ${i}`), 'the watcher got them in order');
  return got;
}

async function pair(srv, room) {
  const a = await h.connectClient(srv, h.uniqueName('ha'));
  const b = await h.connectClient(srv, h.uniqueName('hb'));
  await h.expectAnswer(a, 'join_room', { room }, 'joined_room');
  await h.expectAnswer(b, 'join_room', { room }, 'joined_room');
  return { a, b };
}

const history = (sock, data) => h.expectAnswer(sock, 'get_history', data, 'room_history');

describe('history on one server', () => {
  let srv;
  before(async () => { srv = await h.startServer({ scripts: scriptsDir }); });
  after(async () => { if (srv) await srv.stopClean(); });

  test('new_message carries an offset; offsets increase and sort as strings', async () => {
    const room = h.uniqueRoom('hoff');
    const { a, b } = await pair(srv, room);
    const got = await sendMany(a, b, room, 20, 'o');
    for (const m of got) ok(OFFSET.test(m.offset), 'new_message.offset is 16 lowercase hex digits', m);
    for (let i = 1; i < got.length; i++) {
      ok(got[i - 1].offset < got[i].offset, `offset #${i} sorts after #${i - 1}`, [got[i - 1].offset, got[i].offset]);
    }
  });

  test('get_history pages across 250 messages: oldest first, has_more, before', async () => {
    const room = h.uniqueRoom('hpage');
    const { a, b } = await pair(srv, room);
    const sent = await sendMany(a, b, room, 250, 'p');
    // The first page right after sending: read-your-writes, whether or not the writer committed yet.
    const first = await history(b, { room });
    eq(first.room, room, 'room_history.room');
    eq(first.messages.length, 50, 'default limit 50');
    eq(first.has_more, true, 'has_more on the newest page');
    eq(first.messages, sent.slice(200), 'the newest 50, oldest first, as sent (offset included)');
    const pages = [first.messages];
    let before = first.messages[0].offset;
    for (;;) {
      const page = await history(b, { room, before, limit: 60 });
      pages.unshift(page.messages);
      if (!page.has_more) break;
      ok(page.messages.length === 60, 'a page with has_more is full', page.messages.length);
      before = page.messages[0].offset;
    }
    const all = pages.flat();
    eq(all.length, 250, 'every message once across the pages');
    eq(all, sent, 'the pages joined are the messages as sent');
    const big = await history(a, { room, limit: 200 });
    eq([big.messages.length, big.has_more], [200, true], 'limit 200');
    eq(big.messages, sent.slice(50), 'limit 200: the newest 200');
  });

  test('get_history: limit and before bounds → invalid_payload; a non-member → not_in_room; ack = answer', async () => {
    const room = h.uniqueRoom('herr');
    const { a } = await pair(srv, room);
    for (const bad of [0, 201, 1.5, '10', -1]) {
      const e = await h.expectError(a, 'get_history', { room, limit: bad });
      eq(e.code, 'invalid_payload', `limit ${show(bad)}`);
      eq(e.event, 'get_history', `limit ${show(bad)}: error.event`);
    }
    for (const bad of ['xyz', '001A23D35330E000', '001a23d35330e00', 12, '001a23d35330e0000']) {
      const e = await h.expectError(a, 'get_history', { room, before: bad });
      eq(e.code, 'invalid_payload', `before ${show(bad)}`);
    }
    eq((await h.expectError(a, 'get_history', { limit: 5 })).code, 'invalid_payload', 'no room');
    eq((await h.expectError(a, 'get_history', { room: 'bad room!' })).code, 'invalid_room', 'invalid room name');
    const outsider = await h.connectClient(srv, h.uniqueName('out'));
    const e = await h.expectError(outsider, 'get_history', { room });
    eq(e.code, 'not_in_room', 'a non-member');
    const r = await h.ackRequest(a, 'get_history', { room, limit: 1 }, 'room_history');
    eq(r.name, 'room_history', 'answering event');
    eq(r.ack, r.data, 'the ack carries the answer');
    eq(r.data, { room, messages: [], has_more: false }, 'an empty room');
  });

  test('join_room {history: N} → joined_room carries the last N and the latest offset', async () => {
    const room = h.uniqueRoom('hjoin');
    const { a, b } = await pair(srv, room);
    const none = await h.expectAnswer(b, 'join_room', { room, history: 5 }, 'joined_room');
    eq([none.history, none.offset], [[], null], 'no messages yet: history [] and offset null');
    const sent = await sendMany(a, b, room, 12, 'j');
    const c = await h.connectClient(srv, h.uniqueName('hc'));
    const j = await h.expectAnswer(c, 'join_room', { room, history: 5 }, 'joined_room');
    eq(j.history, sent.slice(7), 'the last 5, oldest first');
    eq(j.offset, sent[11].offset, 'the latest offset');
    eq(j.count, 3, 'count still there');
    ok(Array.isArray(j.users) && j.users.length === 3, 'users still there', j.users);
    const z = await h.expectAnswer(c, 'join_room', { room, history: 0 }, 'joined_room');
    eq([z.history, z.offset], [[], sent[11].offset], 'history 0: [] and the latest offset');
    const plain = await h.expectAnswer(c, 'join_room', { room }, 'joined_room');
    eq(Object.keys(plain).sort(), ['count', 'room', 'users'], 'without history: the fields as before');
    for (const bad of [201, -1, 'x', 2.5]) {
      eq((await h.expectError(c, 'join_room', { room, history: bad })).code, 'invalid_payload', `history ${show(bad)}`);
    }
  });

  test('history is per room', async () => {
    const r1 = h.uniqueRoom('hr1');
    const r2 = h.uniqueRoom('hr2');
    const { a, b } = await pair(srv, r1);
    await h.expectAnswer(a, 'join_room', { room: r2 }, 'joined_room');
    await h.expectAnswer(b, 'join_room', { room: r2 }, 'joined_room');
    const s1 = await sendMany(a, b, r1, 3, 'one');
    const s2 = await sendMany(a, b, r2, 2, 'two');
    eq((await history(b, { room: r1 })).messages, s1, 'room 1');
    eq((await history(b, { room: r2 })).messages, s2, 'room 2');
  });
});

describe('history rules: edit and reload', () => {
  let srv;
  let dir;
  before(async () => {
    dir = h.copyScripts(null, scriptsDir);
    tmpDirs.push(dir);
    srv = await h.startServer({ scripts: dir });
  });
  after(async () => { if (srv) await srv.stopClean(); });

  const setRules = async (maxMessages, maxAge) => {
    const p = path.join(dir, 'rules.lua');
    const text = fs.readFileSync(p, 'utf8')
      .replace(/max_messages = \d+/, `max_messages = ${maxMessages}`)
      .replace(/max_age_s = \d+/, `max_age_s = ${maxAge}`);
    fs.writeFileSync(p, text);
    await reload(srv);
  };

  test('max_messages 10: only the newest 10 are kept; 0: history off', async () => {
    await setRules(10, 604800);
    const room = h.uniqueRoom('hrule');
    const { a, b } = await pair(srv, room);
    const sent = await sendMany(a, b, room, 15, 'r');
    await h.waitFor(async () => (await metric(srv, 'space_history_pending')) === 0, T(5000), 'the writer to catch up');
    const page = await history(b, { room, limit: 200 });
    eq(page.messages, sent.slice(5), 'the newest 10 kept');
    eq(page.has_more, false, 'nothing older');

    await setRules(0, 604800);
    const more = await sendMany(a, b, room, 2, 'off');
    ok(more.every((m) => OFFSET.test(m.offset)), 'new_message still has an offset with history off', more);
    eq(await history(b, { room }), { room, messages: [], has_more: false }, 'history off: an empty page');
    const j = await h.expectAnswer(b, 'join_room', { room, history: 5 }, 'joined_room');
    eq([j.history, j.offset], [[], null], 'history off: join_room history [] and offset null');

    await setRules(1000, 604800);
    const back = await history(b, { room, limit: 200 });
    eq(back.messages, sent.slice(5), 'on again: what was kept is back, nothing sent while off');
  });

  test('a wrong history rule is refused at reload', async () => {
    const p = path.join(dir, 'rules.lua');
    const good = fs.readFileSync(p, 'utf8');
    fs.writeFileSync(p, good.replace(/max_messages = \d+/, 'max_messages = -1'));
    const req = `POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
    const r = await h.httpRaw(srv.port, req, T(5000));
    eq(r.status, 422, `a negative max_messages is refused: ${r.body}`);
    ok(/rules\.lua:\d+: .*max_messages/.test(r.body), 'the error names the file, line and key', r.body);
    fs.writeFileSync(p, good);
    await reload(srv);
  });
});

describe('restart on the same --data-dir', () => {
  test('after SIGTERM and a new start the history is back and new offsets are larger', async () => {
    const dataDir = tempDir('space-data-restart-');
    let srv = await h.startServer({ scripts: scriptsDir, dataDir });
    const room = h.uniqueRoom('hrestart');
    let { a, b } = await pair(srv, room);
    const sent = await sendMany(a, b, room, 30, 'before restart');
    h.closeAllClients();
    await srv.stopClean();
    ok(fs.existsSync(path.join(dataDir, 'history.sqlite3')), 'the database is in --data-dir', fs.readdirSync(dataDir));

    srv = await h.startServer({ scripts: scriptsDir, dataDir });
    try {
      ({ a, b } = await pair(srv, room));
      const page = await history(b, { room, limit: 200 });
      eq(page.messages, sent, 'the history after the restart');
      const after = await sendMany(a, b, room, 3, 'after restart');
      ok(after[0].offset > sent[29].offset, 'a new offset is larger than every offset before the restart',
        [sent[29].offset, after[0].offset]);
      eq((await history(b, { room, limit: 200 })).messages, [...sent, ...after], 'old and new together, in order');
    } finally {
      h.closeAllClients();
      await srv.stopClean();
    }
  });

  test('--data-dir is created when missing; the file store defaults to DATA_DIR/files', async () => {
    const dataDir = path.join(tempDir('space-data-new-'), 'a', 'b');
    const srv = await h.startServer({ scripts: scriptsDir, dataDir, env: { SPACE_FILES_DIR: '' } });
    try {
      const room = h.uniqueRoom('hfiles');
      const { a, b } = await pair(srv, room);
      const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
      const f = await h.expectAnswer(a, 'send_file', { room, name: 'x.png', type: 'image/png', data: png }, 'file_sent');
      const nf = await h.nextEvent(b, 'new_file');
      ok(OFFSET.test(nf.offset), 'new_file has an offset', nf);
      eq(nf.id, f.id, 'new_file.id');
      ok(fs.existsSync(path.join(dataDir, 'history.sqlite3')), 'the database in the new directory', dataDir);
      ok(fs.existsSync(path.join(dataDir, 'files', 'meta', f.id)), 'the file under DATA_DIR/files', dataDir);
      const page = await history(b, { room });
      eq(page.messages, [nf], 'new_file is in the history');
    } finally {
      h.closeAllClients();
      await srv.stopClean();
    }
  });
});

describe('a full disk', () => {
  test('writes failing with EFBIG (RLIMIT_FSIZE) are counted and logged; chat keeps delivering', async () => {
    const srv = await h.startServer({ scripts: scriptsDir, fsizeKiB: 768 });
    try {
      const room = h.uniqueRoom('hfull');
      const { a, b } = await pair(srv, room);
      const text = 'x'.repeat(3000);
      let round = 0;
      // 20 messages of 3 KiB a round: the database passes 768 KiB within a few rounds.
      await h.waitFor(async () => {
        round++;
        for (let i = 0; i < 20; i++) a.emit('send_message', { room, text: `${text} ${round}.${i}` });
        await h.nextEvent(b, 'new_message', T(5000), (d) => d.text === `${text} ${round}.19`);
        return (await metric(srv, 'space_history_write_errors_total')) > 0;
      }, T(20000), 'a history write to fail', 100);
      ok(/history: write failed/.test(srv.stderr), 'the failure is logged', srv.stderr.slice(-2000));
      const got = await sendMany(a, b, room, 10, 'still chatting');
      eq(got.length, 10, 'chat goes on');
      const e = await h.request(b, 'get_history', { room, limit: 5 }, 'room_history');
      eq(e.name, 'room_history', 'get_history still answers');
      await h.assertAlive(srv);
    } finally {
      h.closeAllClients();
      await srv.stopClean();
    }
  });
});

// A plain /ws client recording every frame in order.
async function openPlain(srv, query) {
  const WebSocket = require('ws');
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws?${query}`, { perMessageDeflate: false });
  const frames = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  return { ws, frames };
}

describe('/ws?since=OFFSET&room=ROOM', () => {
  let srv;
  before(async () => { srv = await h.startServer({ scripts: scriptsDir }); });
  after(async () => { if (srv) await srv.stopClean(); });

  test('replays what the room said after since, oldest first, before anything live; nothing lost or twice', async () => {
    const room = h.uniqueRoom('hsince');
    const { a, b } = await pair(srv, room);
    const before = await sendMany(a, b, room, 300, 'before');
    const name = h.uniqueName('resume');
    // Live traffic while the replay is read: b answers the resumer's user_joined_room with messages,
    // and the resumer sends one itself as soon as it is open (its message_sent is live output too).
    const live = 20;
    b.on('user_joined_room', (d) => {
      if (d.room === room && d.user.name === name) for (let i = 0; i < live; i++) b.emit('send_message', { room, text: `live ${i}` });
    });
    const p = await openPlain(srv, `name=${name}&since=${before[9].offset}&room=${room}`);
    p.ws.send(JSON.stringify({ event: 'send_message', data: { room, text: 'resumed' }, id: 1 }));
    try {
      await h.waitFor(() => a.inbox.count('new_message', (d) => d.room === room && d.text.startsWith('live')) >= live,
        T(10000), 'the live messages at a');
      await h.nextEvent(a, 'new_message', T(5000), (d) => d.text === 'resumed');
      const all = a.inbox.all('new_message', (d) => d.room === room);
      const want = [...before.slice(10), ...all.filter((m) => m.text.startsWith('live'))].map((m) => m.offset);
      const got = () => p.frames.filter((f) => f.event === 'new_message').map((f) => f.data.offset);
      await h.waitFor(() => got().length >= want.length, T(10000), `the /ws client to get ${want.length} messages`);
      eq(p.frames[0].event, 'connected', 'the first frame');
      eq(p.frames[1].event, 'joined_room', 'then joined_room');
      eq(p.frames[1].data.room, room, 'joined_room.room');
      const firstLive = p.frames.findIndex((f) => f.event === 'message_sent' ||
        (f.event === 'new_message' && !f.data.text.startsWith('before')));
      const lastReplayed = p.frames.findIndex((f) => f.event === 'new_message' && f.data.offset === before[299].offset);
      ok(lastReplayed > 0 && firstLive > lastReplayed, 'the whole replay comes before anything live',
        p.frames.slice(0, 3).concat(p.frames.slice(-live - 3)).map((f) => `${f.event} ${f.data && f.data.text}`));
      eq(got(), want, 'replay then live: every message after since once, in order');
      eq(p.frames.find((f) => f.event === 'new_message').data, before[10], 'the first replayed message is the data as sent');
    } finally {
      p.ws.terminate();
    }
  });

  test('several pairs join each room; an unpaired or bad since answers invalid_payload and the connection stays', async () => {
    const r1 = h.uniqueRoom('hs1');
    const r2 = h.uniqueRoom('hs2');
    const { a, b } = await pair(srv, r1);
    await h.expectAnswer(a, 'join_room', { room: r2 }, 'joined_room');
    await h.expectAnswer(b, 'join_room', { room: r2 }, 'joined_room');
    const s1 = await sendMany(a, b, r1, 3, 'one');
    const s2 = await sendMany(a, b, r2, 3, 'two');
    const p = await openPlain(srv, `since=${s1[0].offset}&room=${r1}&since=${s2[1].offset}&room=${r2}`);
    try {
      const msgs = () => p.frames.filter((f) => f.event === 'new_message').map((f) => f.data.text);
      await h.waitFor(() => msgs().length >= 3, T(5000), 'the replays of both rooms');
      eq(msgs().sort(), ['one 1', 'one 2', 'two 2'], 'each room after its own since');
      eq(p.frames.filter((f) => f.event === 'joined_room').map((f) => f.data.room).sort(), [r1, r2].sort(), 'joined both');
    } finally {
      p.ws.terminate();
    }
    for (const [query, what] of [[`since=${s1[0].offset}`, 'since without room'],
      [`since=xyz&room=${r1}`, 'a since that is no offset'], [`room=${r1}`, 'room without since']]) {
      const q = await openPlain(srv, query);
      try {
        await h.waitFor(() => q.frames.some((f) => f.event === 'error'), T(5000), `an error for ${what}`);
        const e = q.frames.find((f) => f.event === 'error');
        eq([e.data.code, e.data.event], ['invalid_payload', 'join_room'], what);
        q.ws.send(JSON.stringify({ event: 'get_room_users', data: { room: r1 }, id: 9 }));
        await h.waitFor(() => q.frames.some((f) => f.event === 'room_users'), T(5000), `${what}: the connection stays`);
        ok(!q.frames.some((f) => f.event === 'joined_room'), `${what}: no room joined`, q.frames);
      } finally {
        q.ws.terminate();
      }
    }
  });
});
