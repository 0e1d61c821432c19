'use strict';
// Chat helpers shared by the cluster tests: members spread over the nodes, every sender's messages
// checked at every other member: each exactly once, in the order sent.

const h = require('../e2e/harness');

const { T, show, eq, ok, waitFor } = h;

// One member per node (and `extra` more on the first node), labelled by node: [{socket, node, name}].
async function members(nodes, extra = 0) {
  const out = [];
  const where = [...nodes, ...nodes.slice(0, 1).flatMap((n) => Array(extra).fill(n))];
  for (const node of where) {
    const name = h.uniqueName(`${node.name}_`);
    out.push({ socket: await h.connectClient(node.port, name), node, name });
  }
  return out;
}

async function joinAll(ms, room) {
  for (const m of ms) await h.expectAnswer(m.socket, 'join_room', { room }, 'joined_room');
}

// Every member in `senders` sends `k` messages "<tag> <name> <i>", then a last "<tag> <name> end";
// every other member of `all` must get each exactly once, in order per sender.
async function chatRound(senders, all, room, k, tag) {
  for (let i = 0; i < k; i++) {
    for (const s of senders) s.socket.emit('send_message', { room, text: `${tag} ${s.name} ${i}` });
  }
  for (const s of senders) s.socket.emit('send_message', { room, text: `${tag} ${s.name} end` });
  await checkRound(senders, all, room, k, tag);
}

function texts(m, room, tag, sender) {
  return m.socket.inbox.all('new_message', (d) => d && d.room === room && typeof d.text === 'string' &&
    d.text.startsWith(`${tag} ${sender.name} `)).map((d) => d.text);
}

async function checkRound(senders, all, room, k, tag) {
  const want = (s) => [...Array(k).keys()].map((i) => `${tag} ${s.name} ${i}`).concat(`${tag} ${s.name} end`);
  for (const m of all) {
    for (const s of senders) {
      if (s === m) continue;
      await waitFor(() => texts(m, room, tag, s).includes(`${tag} ${s.name} end`), T(10000),
        `${m.name} (on ${m.node.name}) to get ${s.name}'s (on ${s.node.name}) messages; got ${show(texts(m, room, tag, s))}`);
    }
  }
  // A sender's own messages come back as message_sent, never as new_message.
  for (const s of senders) eq(texts(s, room, tag, s), [], `${s.name} got its own messages`);
  // Every node has seen every sender's last message: any duplicate would have come before it.
  for (const m of all) await h.settle(m.socket);
  for (const m of all) {
    for (const s of senders) {
      if (s === m) continue;
      eq(texts(m, room, tag, s), want(s), `${m.name} (on ${m.node.name}) got ${s.name}'s (on ${s.node.name}) messages`);
      const one = m.socket.inbox.all('new_message', (d) => d && d.text === `${tag} ${s.name} end`)[0];
      ok(one.user && one.user.name === s.name && one.room === room, 'new_message names its sender and room', one);
    }
  }
}

module.exports = { members, joinAll, chatRound, checkRound, texts };
