'use strict';
// A mixed cluster on one real redis-server: three of our nodes (space-server --redis) and two Node
// socket.io 4.8 servers with @socket.io/redis-adapter (peer.js; peer0 acts, peer1 witnesses), with
// stock socket.io-client clients spread over all of them, and @socket.io/redis-emitter as a backend.
// Under SPACE_CLUSTER_NODE_ONLY=1 our nodes are Node peers too (the reference run).

const { test, before, after, afterEach } = require('node:test');
const crypto = require('node:crypto');
const { Emitter } = require('@socket.io/redis-emitter');
// the adapter's own msgpack codec (its dependency), to read answers as a Node peer does
const notepack = require(require.resolve('notepack.io', { paths: [require.resolve('@socket.io/redis-adapter')] }));
const h = require('../e2e/harness');
const { Cluster, redisAvailable, adminEmit } = require('./harness');
const { members, joinAll, chatRound } = require('./chat');

const { T, show, eq, ok, waitFor } = h;
const skip = redisAvailable() ? false : 'redis-server is not installed';

let cluster;
let peer0;
let peer1;
let spy; // a Redis subscriber on the response channel: every answer a node publishes
const responses = [];

before(async () => {
  if (skip) return;
  cluster = new Cluster({ ours: 3, peers: 2 });
  await cluster.start();
  [peer0, peer1] = cluster.peers;
  spy = await cluster.redis.client();
  // Answers are JSON or msgpack (first byte '{' or not), as the adapter tells them apart.
  await spy.subscribe('socket.io-response#/#', (msg) => {
    try { responses.push(msg[0] === 0x7b ? JSON.parse(msg.toString('utf8')) : notepack.decode(msg)); } catch (_) {
      responses.push({ undecodable: msg.toString('hex') });
    }
  }, true);
});

after(async () => {
  if (skip || !cluster) return;
  if (spy) await spy.quit().catch(() => {});
  await cluster.stop();
});

afterEach(() => {
  if (skip) return;
  h.closeAllClients();
  cluster.check();
});

// The JSON answers published for one request id.
const answersTo = (requestId) => responses.filter((r) => r.requestId === requestId);

// Exactly one answer per other node for every request published while `fn` ran: the request ids
// are seen on the response channel; a last serverSideEmit with ack (answered by every node once
// its earlier answers are out, one ordered connection per node) bounds the wait for stragglers.
async function exactlyOnce(fn) {
  const from = responses.length;
  const out = await fn();
  const barrier = await peer0.call('server-side-emit', { event: 'x', args: ['barrier'], ack: true });
  eq(barrier.err, null, `the barrier serverSideEmit timed out (${show(barrier)})`);
  const others = cluster.nodes.length - 1;
  const ids = [...new Set(responses.slice(from).map((r) => r.requestId))];
  for (const id of ids) {
    eq(answersTo(id).length, others, `answers published for request ${id} (one per other node)`);
  }
  return { out, ids };
}

test('a message sent on any node reaches every member on every node once, in order per sender', { skip }, async () => {
  const ms = await members(cluster.nodes, 1);
  const room = h.uniqueRoom('chat');
  await joinAll(ms, room);
  // A join anywhere announces the (new) user to members on every node.
  for (const m of ms) {
    for (const other of ms.filter((x) => ms.indexOf(x) < ms.indexOf(m))) {
      await h.nextEvent(other.socket, 'user_joined_room', T(10000), (d) => d && d.room === room && d.user.name === m.name)
        .catch((e) => { throw new Error(`${other.name} on ${other.node.name} not told that ${m.name} on ${m.node.name} joined: ${e.message}`); });
    }
  }
  await chatRound(ms, ms, room, 5, 'r1');
  // and a second round, each node's members sending alone, both ways between our nodes and the peers
  for (const s of ms) await chatRound([s], ms, room, 3, `solo-${s.name}`);
  // Leaving is announced across nodes too.
  const leaver = ms[1];
  await h.expectAnswer(leaver.socket, 'leave_room', { room }, 'left_room');
  for (const m of ms.filter((x) => x !== leaver)) {
    await h.nextEvent(m.socket, 'user_left_room', T(10000), (d) => d && d.room === room && d.user.name === leaver.name);
  }
  // A member of another room on each node hears nothing of it.
  const outsiders = await members(cluster.nodes);
  await joinAll(outsiders, h.uniqueRoom('other'));
  await chatRound([ms[0]], ms.filter((x) => x !== leaver), room, 2, 'after-leave');
  for (const o of [...outsiders, leaver]) {
    await h.settle(o.socket);
    eq(o.socket.inbox.count('new_message', (d) => d.room === room && d.text.startsWith('after-leave')), 0,
      `messages of ${room} at ${o.name} on ${o.node.name}, not a member`);
  }
});

test('io.to(room).emit on a Node peer reaches clients on every node, binary attachments intact', { skip }, async () => {
  const ms = await members(cluster.nodes);
  const room = h.uniqueRoom('peer-emit');
  await joinAll(ms, room);
  const small = Buffer.from([...Array(256).keys()]);
  const big = crypto.randomBytes(200 * 1024);
  await peer0.call('emit', {
    rooms: [room], event: 'from_peer',
    args: ['text', 42, { $bin: small.toString('base64') }, { nested: { bin: { $bin: big.toString('base64') }, x: [1.5, null, true] } }],
  });
  for (const m of ms) {
    const it = await m.socket.inbox.take('from_peer', null, T(10000));
    eq(it.args.length, 4, `from_peer's arguments at ${m.node.name}`);
    eq(it.args.slice(0, 2), ['text', 42], `from_peer's first arguments at ${m.node.name}`);
    ok(Buffer.isBuffer(it.args[2]) && it.args[2].equals(small), `the 256-byte attachment at ${m.node.name}`, it.args[2]);
    ok(Buffer.isBuffer(it.args[3].nested.bin) && it.args[3].nested.bin.equals(big),
      `the 200 KiB nested attachment at ${m.node.name} (length ${it.args[3].nested.bin && it.args[3].nested.bin.length})`, null);
    eq(it.args[3].nested.x, [1.5, null, true], `the values beside it at ${m.node.name}`);
  }
  // To everyone (no room), and to a room except another room.
  const other = h.uniqueRoom('except');
  await h.expectAnswer(ms[0].socket, 'join_room', { room: other }, 'joined_room');
  await h.expectAnswer(ms[1].socket, 'join_room', { room: other }, 'joined_room');
  await peer0.call('emit', { rooms: [room], except: [other], event: 'not_other', args: [1] });
  await peer0.call('emit', { event: 'to_all', args: [{ n: 2 }] });
  for (const m of ms) {
    await m.socket.inbox.take('to_all', (d) => d && d.n === 2, T(10000));
    const skipped = m === ms[0] || m === ms[1];
    eq(m.socket.inbox.count('not_other'), skipped ? 0 : 1, `not_other at ${m.node.name} (in ${other}: ${skipped})`);
  }
});

test('@socket.io/redis-emitter reaches rooms on every node, .of("/") too, binary intact', { skip }, async () => {
  const ms = await members(cluster.nodes);
  const room = h.uniqueRoom('emitter');
  await joinAll(ms, room);
  const client = await cluster.redis.client();
  try {
    const emitter = new Emitter(client);
    const bin = crypto.randomBytes(1000);
    emitter.to(room).emit('from_emitter', 'hi', 2, bin);
    emitter.of('/').to(room).emit('from_emitter_of', { a: [1, 'b'] });
    for (const m of ms) {
      const it = await m.socket.inbox.take('from_emitter', null, T(10000));
      eq(it.args.slice(0, 2), ['hi', 2], `from_emitter at ${m.node.name}`);
      ok(Buffer.isBuffer(it.args[2]) && it.args[2].equals(bin), `the emitter's attachment at ${m.node.name}`, it.args[2]);
      const ofArgs = (await m.socket.inbox.take('from_emitter_of', null, T(10000))).args;
      // Our nodes add the connection state recovery offset last (a Node peer without recovery does not).
      eq(ofArgs.slice(0, 1), [{ a: [1, 'b'] }], `from_emitter_of at ${m.node.name}`);
      ok(ofArgs.length === 1 || (ofArgs.length === 2 && /^[0-9a-f]{16}$/.test(ofArgs[1])), `from_emitter_of's arguments at ${m.node.name}`, ofArgs);
    }
    // A member of no room gets neither; emitter.emit (no room) reaches it.
    const loner = await members(cluster.nodes.slice(0, 1));
    emitter.emit('emitter_all', 3);
    for (const m of [...ms, ...loner]) await m.socket.inbox.take('emitter_all', (d) => d === 3, T(10000));
    eq(loner[0].socket.inbox.count('from_emitter') + loner[0].socket.inbox.count('from_emitter_of'), 0,
      'room events at a member of no room');
  } finally {
    await client.quit().catch(() => {});
  }
});

test('a client back on another node with its recovery pid: the node that kept its dropped socket ends it at once', { skip }, async (t) => {
  const [n0, n1] = cluster.ours;
  if (n0.kind !== 'space') return t.skip('our nodes are Node peers in this run');
  const room = h.uniqueRoom('elsewhere');
  const name = h.uniqueName('away');
  const a = await h.connectClient(n0.port, name);
  const w = await h.connectClient(n1.port, h.uniqueName('w'));
  await h.expectAnswer(a, 'join_room', { room }, 'joined_room');
  await h.expectAnswer(w, 'join_room', { room }, 'joined_room');
  await h.nextEvent(a, 'user_joined_room');
  const pid = a._pid;
  const offset = a._lastOffset;
  ok(typeof pid === 'string' && typeof offset === 'string', 'the client holds a pid and an offset', { pid, offset });
  a.io.engine.close(); // dropped: node 0 keeps its socket for the recovery window (120 s)
  // Node 1 does not hold the pid: a fresh connection, and node 0 is told to end the kept socket.
  const back = await h.connectClient(n1.port, name, { auth: { pid, offset, name } });
  ok(back.id !== a.id, 'a fresh connection on node 1');
  eq(await h.nextEvent(w, 'user_left_room', T(5000)), { room, user: { id: `dev:${name}`, name } },
    'user_left_room long before the window ends');
});

test('the admin API\'s emit on any node reaches the room\'s members on every node', { skip }, async () => {
  const ms = await members(cluster.nodes);
  const room = h.uniqueRoom('admin-emit');
  await joinAll(ms, room);
  for (const from of cluster.nodes) {
    eq(await adminEmit(from, room, 'announcement', { from: from.name }), 200, `POST /api/rooms/${room}/emit on ${from.name}`);
  }
  for (const m of ms) {
    for (const from of cluster.nodes) {
      await m.socket.inbox.take('announcement', (d) => d && d.from === from.name, T(10000));
    }
    await h.settle(m.socket);
    eq(m.socket.inbox.count('announcement'), cluster.nodes.length, `announcements at ${m.node.name} (one per node)`);
  }
});

test('fetchSockets() on a Node peer lists every node\'s sockets with their rooms, before its timeout', { skip }, async () => {
  const ms = await members(cluster.nodes, 1);
  const room = h.uniqueRoom('fetch');
  await joinAll(ms, room);
  const { out } = await exactlyOnce(async () => [
    await peer0.call('fetch-sockets', {}),
    await peer0.call('fetch-sockets', { rooms: [room] }),
  ]);
  const [all, inRoom] = out;
  eq(all.error, undefined, `fetchSockets() failed after ${all.ms} ms`);
  eq(inRoom.error, undefined, `in(room).fetchSockets() failed after ${inRoom.ms} ms`);
  for (const m of ms) {
    const s = all.sockets.find((x) => x.id === m.socket.id);
    ok(s, `${m.name}'s socket ${m.socket.id} (on ${m.node.name}) in fetchSockets()`, all.sockets.map((x) => x.id));
    ok(s.rooms.includes(room) && s.rooms.includes(m.socket.id), `${m.name}'s rooms include ${room} and its own id`, s.rooms);
  }
  eq(inRoom.sockets.map((x) => x.id).sort(), ms.map((m) => m.socket.id).sort(), `in(${room}).fetchSockets() ids`);
  eq(new Set(all.sockets.map((x) => x.id)).size, all.sockets.length, 'each socket listed once');
});

test('serverSideEmit from a Node peer: without ack it arrives once, with ack every other node answers once', { skip }, async () => {
  const tag = crypto.randomBytes(4).toString('hex');
  const seen = (peer) => peer.call('received').then((r) => r.filter((x) => x.event === 'hello' && x.args[0] === tag));
  await exactlyOnce(async () => {
    await peer0.call('server-side-emit', { event: 'hello', args: [tag, { n: 1 }] });
    await waitFor(async () => (await seen(peer1)).length > 0, T(10000), 'peer1 to receive the serverSideEmit');
  });
  eq((await seen(peer1)).map((x) => x.args), [[tag, { n: 1 }]], 'serverSideEmit without ack at peer1');
  eq((await seen(peer0)).length, 0, 'serverSideEmit at its own sender');

  const { out: r } = await exactlyOnce(() => peer0.call('server-side-emit', { event: 'x', args: [tag, 2], ack: true }));
  eq(r.err, null, `serverSideEmit with ack timed out after ${r.ms} ms with ${show(r.responses)}`);
  eq(r.responses.length, cluster.nodes.length - 1, `responses (one per other node): ${show(r.responses)}`);
  const fromPeers = r.responses.filter((x) => x && typeof x === 'object' && typeof x.server === 'string');
  const names = fromPeers.map((x) => x.server).sort();
  eq(new Set(names).size, names.length, `one answer per Node peer: ${show(names)}`);
  ok(names.includes('peer1') && !names.includes('peer0'), 'peer1 answered, peer0 (the sender) did not', names);
  for (const p of fromPeers) eq(p.args, [tag, 2], `the arguments ${p.server} was given`);
  // Both directions: peer1 asks, peer0 and our nodes answer.
  const r2 = await peer1.call('server-side-emit', { event: 'x', args: ['back'], ack: true });
  eq([r2.err, r2.responses.length], [null, cluster.nodes.length - 1], `peer1's serverSideEmit with ack: ${show(r2)}`);
});

test('socketsJoin / socketsLeave / disconnectSockets from a Node peer act on every node\'s sockets', { skip }, async () => {
  const ms = await members(cluster.nodes, 1);
  const room = h.uniqueRoom('ops');
  const r2 = h.uniqueRoom('joined-remotely');
  await joinAll(ms, room);
  const ids = ms.map((m) => m.socket.id).sort();
  const inR2 = async () => (await peer0.call('fetch-sockets', { rooms: [r2] })).sockets.map((s) => s.id).sort();

  await peer0.call('sockets-join', { rooms: [room], join: r2 });
  await waitFor(async () => show(await inR2()) === show(ids), T(10000), `every member to be in ${r2}`);
  await peer0.call('emit', { rooms: [r2], event: 'in_r2', args: [1] });
  for (const m of ms) await m.socket.inbox.take('in_r2', null, T(10000));

  await peer0.call('sockets-leave', { rooms: [room], leave: r2 });
  await waitFor(async () => (await inR2()).length === 0, T(10000), `every member to have left ${r2}`);
  await peer0.call('emit', { rooms: [r2], event: 'in_r2', args: [2] });
  await peer0.call('emit', { rooms: [room], event: 'sentinel', args: [] });
  for (const m of ms) {
    await m.socket.inbox.take('sentinel', null, T(10000));
    eq(m.socket.inbox.count('in_r2', (d) => d === 2), 0, `in_r2 after socketsLeave at ${m.node.name}`);
  }
  // The chat still works in the room the members stayed in.
  await chatRound([ms[0], ms[ms.length - 1]], ms, room, 2, 'after-ops');

  await peer0.call('disconnect-sockets', { rooms: [room], close: true });
  for (const m of ms) {
    const it = await m.socket.inbox.take('$disconnect', null, T(10000));
    eq(it.data, 'io server disconnect', `the disconnect reason at ${m.node.name}`);
  }
  const outsider = await members(cluster.nodes);
  await waitFor(async () => (await peer0.call('fetch-sockets', { rooms: [room] })).sockets.length === 0, T(10000),
    `no socket left in ${room}`);
  for (const o of outsider) await h.settle(o.socket); // the others stay connected
});
