'use strict';
// Client text built to make a string pattern go quadratic (issue 11, item 1), through the stock
// socket.io-client against the stock scripts: " x" + N spaces + "x" as a message's text and as a
// dev-mode name. The sender gets its answer at once (message_too_long; the name falls back to a
// guest) and a witness in the same room keeps its chat answered. The old trim, `[ \t...]+$` run over
// the whole untrimmed text, took 34 s for N = 100,000 and never came back for N = 1,000,000.
// The waits are bounds, not speed measurements: a fixed server answers in milliseconds, the old one
// not within minutes.
// Run: node --test spec/e2e/hostile_input.test.js   (binary from $SPACE_SERVER)

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

const { show, T } = h;

// Long enough for any answer of a working server, far shorter than the old code's freeze.
const BOUND = T(2000);

let managed;
before(async () => {
  managed = new h.ManagedServer();
  await managed.start();
});
afterEach(async () => {
  h.closeAllClients();
  await managed.check();
});
after(async () => {
  h.closeAllClients();
  await managed.finish();
});

// " x" + n spaces + "x": trimmed, n + 3 characters; the shape that makes `%s+$` retry from every space.
const hostile = (n) => ` x${' '.repeat(n)}x`;

async function take(sock, names, what) {
  const it = await sock.inbox.take(names, null, BOUND).catch((e) => {
    throw new Error(`${what}: no answer within ${BOUND} ms (the server froze?): ${e.message}\n${managed.srv.describe()}`);
  });
  return it;
}

// The witness chats in the room: its message must be answered and delivered within the bound.
async function witnessRoundTrip(witness, other, room) {
  const text = `still here ${Date.now()}`;
  witness.emit('send_message', { room, text });
  const sent = await take(witness, ['message_sent', 'error'], "the witness's send_message");
  assert.equal(sent.name, 'message_sent', `witness got ${sent.name} ${show(sent.data)}`);
  const got = await take(other, 'new_message', `the witness's message reaching ${other.label}`);
  assert.equal(got.data.text, text);
}

async function pair() {
  const srv = await managed.ensure();
  const room = h.uniqueRoom('hostile');
  const sender = await h.connectClient(srv, h.uniqueName('sender'));
  const witness = await h.connectClient(srv, h.uniqueName('witness'));
  await h.expectAnswer(sender, 'join_room', { room }, 'joined_room');
  await h.expectAnswer(witness, 'join_room', { room }, 'joined_room');
  await sender.inbox.take('user_joined_room', null, BOUND);
  return { srv, room, sender, witness };
}

for (const n of [100000, 1000000]) {
  test(`a message " x" + ${n} spaces + "x" answers message_too_long at once; a witness keeps chatting`, async () => {
    const { room, sender, witness } = await pair();
    sender.emit('send_message', { room, text: hostile(n) });
    // The witness asks right behind it: its answer must not wait for the hostile text.
    const witnessDone = witnessRoundTrip(witness, sender, room);
    const answer = await take(sender, ['message_sent', 'error'], 'the hostile send_message');
    assert.equal(answer.name, 'error', `expected an error, got ${answer.name}`);
    assert.equal(answer.data.code, 'message_too_long', show(answer.data));
    assert.equal(answer.data.event, 'send_message');
    await witnessDone;
    assert.equal(witness.inbox.count('new_message'), 0, 'the refused text must reach nobody');
  });
}

test('whitespace around a text within the limit is still trimmed away, in linear time', async () => {
  const { room, sender, witness } = await pair();
  // 3,000 spaces on each side of a 4,000-character text: within the bytes the server reads before
  // trimming (4 bytes per character plus some whitespace); sent as the 4,000 characters.
  const body = `a${' '.repeat(3998)}b`;
  sender.emit('send_message', { room, text: `\t${' '.repeat(3000)}${body}${' '.repeat(3000)}\n\u3000` });
  const answer = await take(sender, ['message_sent', 'error'], 'send_message');
  assert.equal(answer.name, 'message_sent', show(answer.data));
  const got = await take(witness, 'new_message', 'the trimmed message');
  assert.equal(got.data.text, body);
  await witnessRoundTrip(witness, sender, room);
});

for (const n of [30000, 1000000]) {
  test(`a dev-mode name " x" + ${n} spaces + "x" connects as a guest at once; a witness keeps chatting`, async () => {
    const { srv, room, sender, witness } = await pair();
    const t0 = Date.now();
    const label = `hostile-name-${n}`;
    const hostileClient = h.connectClient(srv, hostile(n), { timeout: BOUND });
    const witnessDone = witnessRoundTrip(witness, sender, room);
    const sock = await h.withTimeout(hostileClient, BOUND, `${label} to connect`).catch((e) => {
      throw new Error(`${e.message} (after ${Date.now() - t0} ms)\n${srv.describe()}`);
    });
    const user = sock.connectedData.user;
    assert.ok(user.id.startsWith('guest:') && user.name.startsWith('guest-'), `expected a guest, got ${show(user)}`);
    await witnessDone;
  });
}

test('a dev-mode name with spaces around it is trimmed', async () => {
  const srv = await managed.ensure();
  const sock = await h.connectClient(srv, ` \t${' '.repeat(40)}alice\u00a0x${' '.repeat(40)}\n`);
  assert.deepEqual(sock.connectedData.user, { id: 'dev:alice\u00a0x', name: 'alice\u00a0x' });
});
