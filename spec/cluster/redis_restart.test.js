'use strict';
// Redis restarted mid-chat (its own cluster: two of our nodes and a Node peer). While Redis is away
// every node keeps delivering to its own members, reports the link down and counts what it could not
// publish; after Redis is back on the same port the nodes reconnect and resubscribe by themselves,
// delivery across nodes resumes exactly once, nothing crashes, and each node logged the link state
// once per change, not once per message or per reconnect attempt.

const { test, before, after } = require('node:test');
const h = require('../e2e/harness');
const { Cluster, redisAvailable, metric } = require('./harness');
const { members, joinAll, chatRound, texts } = require('./chat');

const { T, show, eq, ok, waitFor } = h;
const skip = redisAvailable() ? false : 'redis-server is not installed';

let cluster;

before(async () => {
  if (skip) return;
  cluster = new Cluster({ ours: 2, peers: 1 });
  await cluster.start();
});

after(async () => {
  if (skip || !cluster) return;
  await cluster.stop();
});

const linkUp = (node) => metric(node, 'space_redis_link_up');
const failed = (node) => metric(node, 'space_redis_publish_failed_total');
// The lines a node logged about Redis since `from` (an offset in its stderr).
const redisLines = (node, from) => node.stderr.slice(from).split('\n').filter((l) => /redis/i.test(l));

// Reconnecting is paced by each node's backoff: the bound leaves room for a capped one.
async function allLinks(value, what) {
  for (const node of cluster.nodes) {
    await waitFor(async () => (await linkUp(node)) === value, T(30000),
      `space_redis_link_up ${value} on ${node.name} (${what}); last: ${await linkUp(node).catch((e) => e.message)}`, 50);
  }
}

test('Redis restarted mid-chat: local delivery goes on, the link goes 0 then 1, delivery resumes', { skip }, async () => {
  const ms = await members(cluster.nodes, 1); // two members on ours0
  const [a, , , a2] = ms;
  const room = h.uniqueRoom('restart');
  await joinAll(ms, room);
  await allLinks(1, 'before the restart');
  await chatRound(ms, ms, room, 3, 'before');

  const logFrom = new Map(cluster.nodes.map((n) => [n, n.stderr.length]));
  const failedBefore = await failed(a.node);
  ok(failedBefore !== null, `${a.node.name}'s /metrics has space_redis_publish_failed_total`, failedBefore);

  await cluster.redis.stop();
  await allLinks(0, 'Redis stopped');
  // Mid-outage chat, long enough for several reconnect attempts: the sender's own node delivers it.
  const during = 20;
  for (let i = 0; i < during; i++) {
    a.socket.emit('send_message', { room, text: `during ${a.name} ${i}` });
    await h.expectAnswer(a.socket, 'get_room_users', { room }, 'room_users'); // the node still answers
    await new Promise((r) => setTimeout(r, 75)); // the scenario's pace, not a synchronisation
  }
  await waitFor(() => texts(a2, room, 'during', a).length === during, T(10000),
    `${a2.name}, on ${a.name}'s node, to get the messages sent while Redis was away`);
  eq(texts(a2, room, 'during', a), [...Array(during).keys()].map((i) => `during ${a.name} ${i}`),
    'local delivery while Redis is away');
  await waitFor(async () => (await failed(a.node)) > failedBefore, T(5000),
    `space_redis_publish_failed_total to grow on ${a.node.name} (was ${failedBefore})`);
  for (const node of cluster.nodes) ok(!node.exit, `${node.name} alive while Redis is away`, node.exit);

  await cluster.redis.start();
  await allLinks(1, 'Redis back');
  await cluster.ready(T(30000));
  await chatRound(ms, ms, room, 3, 'after');
  // What could not be published is lost to the other nodes, never delivered twice.
  for (const m of ms.slice(1)) {
    const got = texts(m, room, 'during', a);
    eq(got.length, new Set(got).size, `outage messages at ${m.name} on ${m.node.name} (at most once): ${show(got)}`);
  }
  await h.expectAnswer(a.socket, 'get_room_users', { room }, 'room_users');

  for (const node of cluster.nodes) {
    ok(!node.exit, `${node.name} alive after the restart`, node.describe());
    const lines = redisLines(node, logFrom.get(node));
    // down once and up once; a resubscription notice at most beside them
    ok(lines.length >= 2 && lines.length <= 4,
      `${node.name} logs the Redis link once per change (${during} messages and several reconnect attempts in the outage)`,
      lines);
    ok(lines.some((l) => /down|lost|unreachable|disconnect|closed|fail|error/i.test(l)), `${node.name} logs the link going down`, lines);
    ok(/\b(up|connected|reconnected|ready|restored|back)\b/i.test(lines[lines.length - 1]), `${node.name} logs the link back up last`, lines);
  }
});
