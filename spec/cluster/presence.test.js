'use strict';
// Presence across our nodes (issue 13 item 3): three of our nodes on one real redis-server, stock
// socket.io-client clients spread over them. Room membership counts every node: joined_room and
// get_room_users list the users of every node; user_joined_room / user_left_room go out once per
// user, not per connection, even for one user connected to two nodes; a node killed without a
// goodbye is forgotten within 30 s: its users leave their rooms and the others are told.

const { test, before, after, afterEach } = require('node:test');
const h = require('../e2e/harness');
const { Cluster, redisAvailable, adminCall } = require('./harness');

const { T, eq } = h;
const skip = redisAvailable() ? false : 'redis-server is not installed';
const NODE_LOST_MS = 3000; // --cluster-timeout for these nodes (default 30000)

let cluster;
before(async () => {
  if (skip) return;
  cluster = new Cluster({ ours: 3, peers: 0, args: ['--cluster-timeout', String(NODE_LOST_MS)] });
  await cluster.start();
});
after(async () => {
  if (skip || !cluster) return;
  await cluster.stop().catch(() => {}); // the killed node's exit is expected
});
afterEach(() => { if (!skip) h.closeAllClients(); });

const names = (users) => users.map((u) => u.name).sort();

// Answers settle: presence crosses nodes over Redis, so a figure read right after a join may lag.
async function roomUsers(socket, room, want) {
  let last = null;
  await h.waitFor(async () => {
    last = await h.expectAnswer(socket, 'get_room_users', { room }, 'room_users');
    return names(last.users).join(',') === want.slice().sort().join(',') && last.count === want.length ? true : last;
  }, T(10000), `get_room_users ${room} to list ${want.join(', ')}`, 50);
  return last;
}

test('joined_room and get_room_users count the users of every node', { skip }, async () => {
  const [n0, n1, n2] = cluster.ours;
  const room = h.uniqueRoom('presence');
  const a = h.uniqueName('a_'), b = h.uniqueName('b_'), c = h.uniqueName('c_');
  const sa = await h.connectClient(n0.port, a);
  const sb = await h.connectClient(n1.port, b);
  const sc = await h.connectClient(n2.port, c);
  await h.expectAnswer(sa, 'join_room', { room }, 'joined_room');
  await roomUsers(sb, room, [a]).catch(() => {}); // b is not a member yet: the answer may be an error
  await h.waitFor(async () => {
    const j = await h.expectAnswer(sb, 'join_room', { room }, 'joined_room');
    return names(j.users).join(',') === [a, b].sort().join(',') && j.count === 2 ? true : j;
  }, T(10000), 'b\'s joined_room to list a (on another node) and b', 50);
  await h.nextEvent(sa, 'user_joined_room', T(10000), (d) => d && d.room === room && d.user.name === b);
  await h.expectAnswer(sc, 'join_room', { room }, 'joined_room');
  await roomUsers(sc, room, [a, b, c]);
  await roomUsers(sa, room, [a, b, c]);
});

test('one user on two nodes joins and leaves once: no user_joined_room or user_left_room per connection', { skip }, async () => {
  const [n0, n1, n2] = cluster.ours;
  const room = h.uniqueRoom('twice');
  const u = h.uniqueName('u_'), w = h.uniqueName('w_');
  const witness = await h.connectClient(n2.port, w);
  await h.expectAnswer(witness, 'join_room', { room }, 'joined_room');
  const first = await h.connectClient(n0.port, u);
  const second = await h.connectClient(n1.port, u); // the same name: the same user (dev mode)
  await h.expectAnswer(first, 'join_room', { room }, 'joined_room');
  await h.nextEvent(witness, 'user_joined_room', T(10000), (d) => d && d.room === room && d.user.name === u);
  await roomUsers(witness, room, [u, w]);
  await h.expectAnswer(second, 'join_room', { room }, 'joined_room');
  await h.expectAnswer(second, 'leave_room', { room }, 'left_room');
  await h.settle(witness);
  await roomUsers(witness, room, [u, w]);
  eq(witness.inbox.count('user_joined_room', (d) => d.room === room && d.user.name === u), 1,
    'user_joined_room for the user with connections on two nodes');
  eq(witness.inbox.count('user_left_room', (d) => d.room === room && d.user.name === u), 0,
    'user_left_room while one of the user\'s connections is still in the room');
  await h.expectAnswer(first, 'leave_room', { room }, 'left_room');
  await h.nextEvent(witness, 'user_left_room', T(10000), (d) => d && d.room === room && d.user.name === u);
  await roomUsers(witness, room, [w]);
});

test('the admin API on one node kicks and bans a user on every node', { skip }, async () => {
  const [n0, n1, n2] = cluster.ours;
  const k = h.uniqueName('k_'), b = h.uniqueName('b_');
  const kicked = await h.connectClient(n1.port, k);
  const kicked2 = await h.connectClient(n2.port, k);
  // The user list of a node has the users other nodes have in a room.
  const room = h.uniqueRoom('admin');
  await h.expectAnswer(kicked, 'join_room', { room }, 'joined_room');
  let listing = null;
  await h.waitFor(async () => {
    listing = await adminCall(n0, 'GET', '/api/users?limit=1000');
    const it = listing.body && listing.body.users.find((x) => x.id === `dev:${k}`);
    return it && it.rooms.includes(room) ? true : listing.body;
  }, T(10000), `GET /api/users on ${n0.name} to list ${k}, connected to other nodes`, 100);
  eq(listing.body.total, listing.body.users.length, 'the listing\'s total (one page)');
  const r = await adminCall(n0, 'POST', `/api/users/${encodeURIComponent(`dev:${k}`)}/disconnect`);
  eq(r.status, 200, `POST disconnect on a node without the user: ${JSON.stringify(r.body)}`);
  for (const s of [kicked, kicked2]) {
    const it = await s.inbox.take('$disconnect', null, T(10000));
    eq(it.data, 'io server disconnect', 'the kicked connection\'s reason');
  }
  const banned = await h.connectClient(n2.port, b);
  const ban = await adminCall(n0, 'POST', `/api/users/${encodeURIComponent(`dev:${b}`)}/ban`, { seconds: 60, reason: 'spam' });
  eq(ban.status, 200, `POST ban: ${JSON.stringify(ban.body)}`);
  await banned.inbox.take('$disconnect', null, T(10000));
  let again = null;
  await h.waitFor(async () => {
    again = await h.tryConnect(n1.port, { auth: { name: b } });
    again.socket.close();
    return again.error ? true : again;
  }, T(10000), 'a connect of the banned user on another node to be refused', 100);
  eq(again.error.data && again.error.data.code, 'banned', `the refusal on ${n1.name}`);
  const lift = await adminCall(n2, 'DELETE', `/api/users/${encodeURIComponent(`dev:${b}`)}/ban`);
  eq(lift.status, 200, `DELETE ban on the node that got it from the cluster: ${JSON.stringify(lift.body)}`);
  await h.waitFor(async () => {
    const r2 = await h.tryConnect(n1.port, { auth: { name: b } });
    r2.socket.close();
    return r2.connected ? true : r2;
  }, T(10000), 'the banned user to connect again once unbanned', 100);
});

test('a node killed without a goodbye is forgotten: its users leave their rooms and the others are told', { skip }, async () => {
  const [n0, n1] = cluster.ours;
  const room = h.uniqueRoom('lost');
  const v = h.uniqueName('v_'), w = h.uniqueName('w_');
  const witness = await h.connectClient(n0.port, w);
  await h.expectAnswer(witness, 'join_room', { room }, 'joined_room');
  const victim = await h.connectClient(n1.port, v);
  await h.expectAnswer(victim, 'join_room', { room }, 'joined_room');
  await roomUsers(witness, room, [v, w]);
  n1.srv.proc.kill('SIGKILL');
  await h.nextEvent(witness, 'user_left_room', T(NODE_LOST_MS + 15000), (d) => d && d.room === room && d.user.name === v);
  await roomUsers(witness, room, [w]);
});

test('every space_redis_ metric the docs name is in a --redis node\'s /metrics', { skip }, async () => {
  const fs = require('node:fs');
  const path = require('node:path');
  const repo = path.join(__dirname, '..', '..');
  const docs = ['README.md', ...fs.readdirSync(path.join(repo, 'docs')).map((f) => `docs/${f}`)];
  const named = new Set();
  for (const f of docs) {
    for (const m of fs.readFileSync(path.join(repo, f), 'utf8').matchAll(/\b(space_redis_[a-z0-9_]*[a-z0-9])\b/g)) named.add(m[1]);
  }
  const text = await (await fetch(`${cluster.ours[0].url}/metrics`)).text();
  const exposed = new Set([...text.matchAll(/^(space_redis_[a-z0-9_]+) /gm)].map((m) => m[1]));
  eq([...named].filter((n) => !exposed.has(n)), [], 'space_redis_ names in the docs but not in /metrics');
  eq(named.size >= 2, true, `names found (${[...named].join(', ')})`);
});
