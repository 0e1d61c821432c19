'use strict';
// The scripts' timers (issue 17 item 2): space.after(ms, fn) and space.every(ms, fn), their
// handles' cancel(), the sandbox's budgets on fn, a connection closed before its timer fired, bad
// arguments and the cap on live timers, and reloads: a reload cancels every timer of the replaced
// generation (started by an event or by init.lua) while the new init.lua's timers run, a failed
// load's timers never run, and code of a replaced generation starts no timer.
// Scripts: spec/e2e/scripts_timers. Every wait is bounded; "never fired" is proved by a later timer
// of the same server having fired (the wheel fires in due order), not by a sleep.

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { test, before, after, afterEach, describe } = require('node:test');
const h = require('./harness');
const { eq, ok, T } = h;

const SCRIPTS = path.join(__dirname, 'scripts_timers');

let srv;
const others = [];
const dirs = [];
before(async () => { srv = await h.startServer({ scripts: SCRIPTS }); });
afterEach(() => h.closeAllClients());
after(async () => {
  h.closeAllClients();
  const problems = [];
  for (const s of [srv, ...others]) {
    try { if (s) await s.stopClean(); } catch (e) { problems.push(e.message); }
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  if (problems.length) throw new Error(problems.join('\n'));
});

// Starts an `after` of ms on the socket and waits for its "fired": every timer due before it has
// fired by then (same wheel, due order).
async function barrier(socket, ms, tag = `barrier-${Math.random()}`) {
  await h.expectAnswer(socket, 'after', { ms, tag }, 'started');
  return h.nextEvent(socket, 'fired', T(3000) + ms, (d) => d.tag === tag);
}

function logLines(s, re) { return s.stderr.split('\n').filter((l) => re.test(l)); }
function waitLog(s, re, count, what) {
  return h.waitFor(() => logLines(s, re).length >= count, T(3000), `${what}: ${count} log line(s) matching ${re}\n${s.describe()}`);
}

describe('space.after and space.every', () => {
  test('after fires once, no sooner than its time, and emits to the client that started it', async () => {
    const s = await h.connectClient(srv);
    const t0 = performance.now();
    await h.expectAnswer(s, 'after', { ms: 150, tag: 'a' }, 'started');
    const fired = await h.nextEvent(s, 'fired', T(3000));
    const waited = performance.now() - t0;
    eq(fired, { tag: 'a', version: 'v1' }, 'the fired event');
    ok(waited >= 150, 'fired no sooner than 150 ms after the request', waited);
    await barrier(s, 200);
    eq(s.inbox.count('fired', (d) => d.tag === 'a'), 1, 'times the after fired');
  });

  test('every fires repeatedly until fn cancels it through its handle', async () => {
    const s = await h.connectClient(srv);
    await h.expectAnswer(s, 'every', { ms: 20, tag: 'e', times: 5 }, 'started');
    eq(await h.nextEvent(s, 'stopped', T(3000)), { tag: 'e', cancel: true, active: false }, 'the handle inside fn');
    await barrier(s, 100);
    eq(s.inbox.all('tick', (d) => d.tag === 'e').map((d) => d.n), [1, 2, 3, 4, 5], 'the ticks');
  });

  test('cancel stops an after and an every; a second cancel, or one after the firing, returns false', async () => {
    const s = await h.connectClient(srv);
    await h.expectAnswer(s, 'after', { ms: T(600), tag: 'x' }, 'started');
    await h.expectAnswer(s, 'every', { ms: 30, tag: 'y' }, 'started');
    await h.nextEvent(s, 'tick', T(3000), (d) => d.tag === 'y');
    eq(await h.expectAnswer(s, 'cancel', { tag: 'x' }, 'cancelled'), { tag: 'x', first: true, second: false, active: false }, 'cancel of the after');
    eq(await h.expectAnswer(s, 'cancel', { tag: 'y' }, 'cancelled'), { tag: 'y', first: true, second: false, active: false }, 'cancel of the every');
    const ticks = s.inbox.count('tick', (d) => d.tag === 'y'); // all sent before the answer have come
    await barrier(s, T(600)); // due after x would have been
    eq(s.inbox.count('fired', (d) => d.tag === 'x'), 0, 'the cancelled after fired');
    eq(s.inbox.count('tick', (d) => d.tag === 'y'), ticks, 'ticks of the cancelled every');
    await h.expectAnswer(s, 'after', { ms: 5, tag: 'z' }, 'started');
    await h.nextEvent(s, 'fired', T(3000), (d) => d.tag === 'z');
    eq(await h.expectAnswer(s, 'cancel', { tag: 'z' }, 'cancelled'), { tag: 'z', first: false, second: false, active: false }, 'cancel after the firing');
  });

  test('bad arguments raise clear errors', async () => {
    const s = await h.connectClient(srv);
    const { errors } = await h.expectAnswer(s, 'bad', {}, 'bad');
    const range = 'ms must be an integer from 1 to 86400000 (a day)';
    const want = [
      `space.after: ${range}, got 0`, `space.after: ${range}, got -5`, `space.after: ${range}, got 1.5`,
      `space.after: ${range}, got string`, `space.after: ${range}, got 86400001`, `space.every: ${range}, got 0`,
      'space.after: fn must be a function, got nil', 'space.every: fn must be a function, got string',
      `space.after: ${range}, got nil`,
    ];
    eq(errors, want, 'the error messages');
  });

  test('at most 10000 live timers per generation; cancelled ones make room', async () => {
    const s = await h.connectClient(srv);
    const r = await h.expectAnswer(s, 'many', { n: 10001 }, 'many');
    eq(r.started, 9999, 'timers started (init.lua\'s every is the 10000th)');
    ok(/space\.after: too many timers \(10000 live in this generation of the scripts\)/.test(r.err), 'the error', r.err);
    eq(await h.expectAnswer(s, 'cancel_many', {}, 'cancelled_many'), { n: 9999 }, 'cancelled');
    eq((await h.expectAnswer(s, 'many', { n: 1 }, 'many')).started, 1, 'a timer after the cancel');
    await h.expectAnswer(s, 'cancel_many', {}, 'cancelled_many');
  });
});

describe('budgets and failures', () => {
  test('a timer whose fn never ends is cut by the budget, and the server keeps serving', async () => {
    const s = await h.connectClient(srv);
    const other = await h.connectClient(srv);
    const re = /error lua: handler failed handler=timer init\.lua:\d+ error=".*(CPU time limit|instruction budget|time budget) exceeded/;
    const before_ = logLines(srv, re).length;
    await h.expectAnswer(s, 'spin', { ms: 10 }, 'started');
    await waitLog(srv, re, before_ + 1, 'the cut timer');
    eq(await h.expectAnswer(other, 'echo', { still: 'here' }, 'echo'), { still: 'here' }, 'another client is answered');
  });

  test('an every that fails 3 times in a row is cancelled, with a warning', async () => {
    const s = await h.connectClient(srv);
    const failed = /handler failed handler=timer init\.lua:\d+ error=".*failing on purpose/;
    const cancelled = /warn .*lua: timer cancelled after 3 failed runs in a row timer=init\.lua:\d+/;
    const [f0, c0] = [logLines(srv, failed).length, logLines(srv, cancelled).length];
    await h.expectAnswer(s, 'fail_every', { ms: 10 }, 'started');
    await waitLog(srv, cancelled, c0 + 1, 'the cancelled every');
    await barrier(s, 60);
    eq(logLines(srv, failed).length - f0, 3, 'failed runs logged');
    const m = await h.httpRaw(srv.port, 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    ok(/space_handler_errors_total\{handler="timer init\.lua:\d+",kind="error"\} [1-9]/.test(m.body), 'the failures counted in /metrics by where fn was defined', m.body.split('\n').filter((l) => /handler_errors/.test(l)));
    // A spinning every too: cut 3 times by the budget, then cancelled.
    await h.expectAnswer(s, 'spin', { ms: 10, every: true }, 'started');
    await waitLog(srv, cancelled, c0 + 2, 'the cancelled spinning every');
    eq(await h.expectAnswer(s, 'echo', { a: 1 }, 'echo'), { a: 1 }, 'the sender is answered');
  });

  test('a timer whose connection closed before it fired gets the closed-connection error', async () => {
    const s = await h.connectClient(srv);
    const re = /handler failed handler=timer init\.lua:\d+ error=".*attempt to use a closed connection/;
    const n0 = logLines(srv, re).length;
    await h.expectAnswer(s, 'later_use', { ms: T(400) }, 'started'); // the disconnect comes first
    await h.disconnectClient(s);
    await waitLog(srv, re, n0 + 1, 'the timer on a closed connection');
    const other = await h.connectClient(srv);
    eq(await h.expectAnswer(other, 'echo', { b: 2 }, 'echo'), { b: 2 }, 'another client is answered');
  });
});

describe('reloads', () => {
  function httpJson(s, method, p) {
    const req = `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
    return h.httpRaw(s.port, req, T(5000)).then((r) => ({ status: r.status, body: JSON.parse(r.body) }));
  }

  test('a reload cancels the old generation\'s timers, the new init.lua\'s run, a failed load\'s never', async () => {
    const dir = h.copyScripts(null, SCRIPTS);
    dirs.push(dir);
    const s2 = await h.startServer({ scripts: dir });
    others.push(s2);
    const w = await h.connectClient(s2);
    await h.expectAnswer(w, 'watch', {}, 'watching');
    await h.nextEvent(w, 'gen_tick', T(3000), (d) => d.version === 'v1');
    // Started by v1's code, due well after the reload.
    const old = await h.expectAnswer(w, 'after', { ms: T(1000), tag: 'old' }, 'started');
    // v1's code waits for the client's answer, which comes after the reload.
    const raw = await h.RawClient.open(s2);
    await raw.connectNs();
    raw.send('42["ask_then_after",{}]');
    const question = await raw.nextText((t) => /^42\d+\["question"/.test(t));

    fs.writeFileSync(path.join(dir, 'version.lua'), 'return "v2"\n');
    const r = await httpJson(s2, 'POST', '/api/reload');
    eq([r.status, r.body.ok], [200, true], 'POST /api/reload');
    // Past the old after's due time, by the new init.lua's every (not by a timer a handler starts:
    // the file watcher reloads the same change once more, which cancels the timers of the
    // generation POST /api/reload made). A tick whose fn ran past that time is followed by one
    // fired on a later turn of the loop, when the old after, had it lived, would have fired first.
    const past = await h.nextEvent(w, 'gen_tick', T(3000) + T(1000), (d) => d.version === 'v2' && d.at > old.due_at + 1);
    await h.nextEvent(w, 'gen_tick', T(3000), (d) => d.version === 'v2' && d.at > past.at);
    eq(w.inbox.count('fired', (d) => d.tag === 'old'), 0, 'the v1 after fired after the reload');
    const versions = w.inbox.all('gen_tick').map((d) => d.version);
    const firstV2 = versions.indexOf('v2');
    eq(versions.slice(firstV2).filter((v) => v !== 'v2'), [], 'ticks of another generation after the first v2 tick');
    ok(versions.length - firstV2 >= 3, 'the new init.lua\'s every keeps ticking', versions);

    // v1's callback, run after the reload, starts no timer.
    raw.send(`43${/^42(\d+)/.exec(question)[1]}[]`);
    const asked = await raw.nextEvent('asked_after');
    eq([asked.ok, asked.version], [false, 'v1'], 'the old callback\'s space.after');
    ok(/space\.after: this code's scripts were replaced by a reload: it starts no timers/.test(asked.err), 'its error', asked.err);
    raw.close();

    // A load that fails after its init.lua started an every: that timer never runs.
    fs.writeFileSync(path.join(dir, 'version.lua'), 'return "broken"\n');
    const bad = await httpJson(s2, 'POST', '/api/reload');
    eq(bad.status, 422, 'POST /api/reload of a failing init.lua');
    const seen = w.inbox.count('gen_tick');
    await h.waitFor(() => w.inbox.count('gen_tick') >= seen + 8, T(3000), 'more ticks of v2');
    eq(w.inbox.all('gen_tick').map((d) => d.version).filter((v) => v !== 'v1' && v !== 'v2'), [], 'ticks of the failed load');
    eq(await h.expectAnswer(w, 'echo', { c: 3 }, 'echo'), { c: 3 }, 'the client is answered');
  });
});
