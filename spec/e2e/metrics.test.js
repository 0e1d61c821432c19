'use strict';
// GET /metrics (docs/operations.md, "Metrics"):
//   - the text format parses: every sample belongs to a family with HELP and TYPE lines, counters
//     end in _total, histogram buckets are cumulative with le="+Inf" equal to _count, _sum present;
//   - after chat, a file upload and download, a handler that raises, one over its instruction
//     budget and an event without a handler, the counters moved by exactly what was done:
//     events in and out by name, fan-out deliveries, handler errors by handler and kind, handler
//     durations, bytes in and out (at least the file's size);
//   - a client's made-up event names all count as event="other" (bounded labels);
//   - every metric name README.md, docs/*.md and the Grafana dashboard (examples/ops) mention exists.
// Run: node --test spec/e2e/metrics.test.js   (binary from $SPACE_SERVER)

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./harness');

const REPO = path.resolve(__dirname, '..', '..');

// Parses the Prometheus text format strictly enough to catch what a scraper would refuse.
// Returns {families: Map name -> {type, help}, samples: Map 'name{labels}' -> value}.
function parseMetrics(text) {
  const families = new Map();
  const samples = new Map();
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (m) {
      const f = families.get(m[2]) || {};
      if (m[1] === 'HELP') f.help = m[3];
      else {
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]), `type of ${m[2]}: ${m[3]}`);
        assert.equal(f.type, undefined, `one TYPE line for ${m[2]}`);
        f.type = m[3];
      }
      families.set(m[2], f);
      continue;
    }
    assert.ok(!line.startsWith('#'), `a comment that is neither HELP nor TYPE: ${line}`);
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.eE+-]+|\+Inf|NaN)$/.exec(line);
    assert.ok(m, `a sample line that does not parse: ${JSON.stringify(line)}`);
    const key = m[1] + (m[2] || '');
    assert.ok(!samples.has(key), `duplicate sample ${key}`);
    samples.set(key, Number(m[3]));
  }
  // every sample belongs to a family with HELP and TYPE
  for (const key of samples.keys()) {
    const name = key.replace(/\{.*$/, '');
    const fam = families.get(name) || families.get(name.replace(/_(bucket|sum|count)$/, ''));
    assert.ok(fam && fam.help && fam.type, `${key}: no HELP/TYPE for its family`);
    if (fam.type === 'counter') assert.ok(/_total$/.test(name), `counter ${name} ends in _total`);
  }
  for (const [name, fam] of families) {
    assert.ok(fam.help && fam.type, `${name}: HELP and TYPE both`);
    if (fam.type !== 'histogram') continue;
    // group the buckets by their other labels
    const series = new Map();
    for (const [key, v] of samples) {
      const m = new RegExp(`^${name}_bucket\\{(.*?)le="([^"]+)"\\}$`).exec(key);
      if (!m) continue;
      if (!series.has(m[1])) series.set(m[1], []);
      series.get(m[1]).push([m[2] === '+Inf' ? Infinity : Number(m[2]), v]);
    }
    for (const [labels, buckets] of series) {
      let prevLe = -Infinity, prev = 0;
      for (const [le, v] of buckets) {
        assert.ok(le > prevLe, `${name}{${labels}} buckets in increasing le order`);
        assert.ok(v >= prev, `${name}{${labels}} buckets cumulative (le=${le}: ${v} < ${prev})`);
        prevLe = le; prev = v;
      }
      assert.equal(prevLe, Infinity, `${name}{${labels}} ends with le="+Inf"`);
      const inner = labels.replace(/,$/, '');
      const suffix = inner ? `{${inner}}` : '';
      assert.equal(samples.get(`${name}_count${suffix}`), prev, `${name}${suffix}: _count = the +Inf bucket`);
      assert.ok(samples.has(`${name}_sum${suffix}`), `${name}${suffix}: _sum present`);
    }
  }
  return { families, samples };
}

async function scrape(srv) {
  const res = await fetch(`${srv.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

const ev = (dir, name) => `space_events_${dir}_total{event="${name}"}`;

describe('/metrics', () => {
  let srv, dir;
  before(async () => {
    dir = h.copyScripts((rel, text) => {
      if (rel !== 'init.lua') return text;
      // boom raises; spin runs over the instruction budget
      return text.replace(/events = \{(\s*join_room)/, `events = {
        boom = function(conn, data) error("boom for the metrics test") end,
        spin = function(conn, data) local n = 0 while true do n = n + 1 end end,$1`);
    });
    srv = await h.startServer({ scripts: dir, args: ['--plugins', path.join(REPO, 'plugins'), '--lua-budget', '200000'] });
  });
  after(async () => {
    h.closeAllClients();
    if (srv) await srv.stopClean();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the format parses, process metrics are there, and counters move by exactly what was done', async () => {
    const alice = await h.connectClient(srv, h.uniqueName('alice'));
    const bob = await h.connectClient(srv, h.uniqueName('bob'));
    const room = h.uniqueRoom('metrics');
    const before = await scrape(srv);
    for (const name of ['process_open_fds', 'process_max_fds', 'process_resident_memory_bytes',
      'process_cpu_seconds_total', 'process_start_time_seconds']) {
      assert.ok(before.samples.has(name), `${name} present`);
    }
    assert.ok(before.samples.get('process_open_fds') > 0);
    assert.ok(before.samples.get('process_max_fds') >= before.samples.get('process_open_fds'));
    assert.ok(before.samples.get('process_resident_memory_bytes') > 1e6);
    assert.ok(Math.abs(before.samples.get('process_start_time_seconds') - Date.now() / 1000) < 600);
    assert.ok(before.samples.get('space_event_loop_lag_seconds_count') > 0, 'loop turns observed');

    await h.expectAnswer(alice, 'join_room', { room }, 'joined_room');
    await h.expectAnswer(bob, 'join_room', { room }, 'joined_room');
    await h.nextEvent(alice, 'user_joined_room');
    await h.expectAnswer(alice, 'send_message', { room, text: 'one' }, 'message_sent');
    await h.expectAnswer(bob, 'send_message', { room, text: 'two' }, 'message_sent');
    await h.expectAnswer(bob, 'send_message', { room, text: 'three' }, 'message_sent');
    await h.nextEvent(bob, 'new_message');
    await h.nextEvent(alice, 'new_message');
    await h.nextEvent(alice, 'new_message');
    const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(40000, 7)]);
    const sent = await h.expectAnswer(alice, 'send_file', { room, name: 'm.png', type: 'image/png', data: png }, 'file_sent');
    await h.nextEvent(bob, 'new_file');
    const dl = await fetch(`${srv.url}${sent.url}`);
    assert.equal(Buffer.from(await dl.arrayBuffer()).length, png.length);
    assert.equal((await h.expectError(alice, 'boom', {})).code, 'internal_error');
    assert.equal((await h.expectError(alice, 'spin', {})).code, 'internal_error');
    for (const name of ['made_up_1', 'made_up_2', 'made "up" 3']) {
      assert.equal((await h.expectError(bob, name, {})).code, 'unknown_event');
    }
    const after = await scrape(srv);
    const d = (key) => (after.samples.get(key) || 0) - (before.samples.get(key) || 0);
    const want = {
      [ev('received', 'join_room')]: 2, [ev('received', 'send_message')]: 3, [ev('received', 'send_file')]: 1,
      [ev('received', 'boom')]: 1, [ev('received', 'spin')]: 1, [ev('received', 'other')]: 3,
      [ev('sent', 'joined_room')]: 2, [ev('sent', 'user_joined_room')]: 1, [ev('sent', 'message_sent')]: 3,
      [ev('sent', 'new_message')]: 3, [ev('sent', 'file_sent')]: 1, [ev('sent', 'new_file')]: 1,
      [ev('sent', 'error')]: 5,
      space_fanout_deliveries_total: 5,
      'space_handler_errors_total{handler="/:boom",kind="error"}': 1,
      'space_handler_errors_total{handler="/:spin",kind="budget"}': 1,
      'space_handler_duration_seconds_count{event="join_room"}': 2,
      'space_handler_duration_seconds_count{event="send_message"}': 3,
      'space_handler_duration_seconds_count{event="send_file"}': 1,
      'space_handler_duration_seconds_count{event="boom"}': 1,
      'space_handler_duration_seconds_count{event="spin"}': 1,
    };
    const got = Object.fromEntries(Object.keys(want).map((k) => [k, d(k)]));
    assert.deepEqual(got, want);
    // the made-up names got no label of their own
    for (const key of after.samples.keys()) assert.ok(!/made/.test(key), `no label for a client's made-up name: ${key}`);
    assert.ok(d('space_received_bytes_total') >= png.length, 'the upload counted in received bytes');
    assert.ok(d('space_sent_bytes_total') >= png.length, 'the download counted in sent bytes');
    assert.ok(after.samples.get('space_handler_duration_seconds_sum{event="spin"}') > 0);
  });

  test('/metrics and /healthz refuse other methods than GET and HEAD: 405 with Allow', async () => {
    for (const p of ['/metrics', '/healthz']) {
      for (const method of ['DELETE', 'POST', 'PUT']) {
        const r = await h.httpRaw(srv.port, `${method} ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
        assert.equal(r.status, 405, `${method} ${p}`);
        assert.equal(r.headers.allow, 'GET, HEAD', `${method} ${p}`);
      }
    }
  });

  test('every metric name the README, docs/ and the Grafana dashboard mention exists in /metrics', async () => {
    const { families } = await scrape(srv);
    const mentioned = new Map();
    const docs = ['README.md', ...fs.readdirSync(path.join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    for (const f of docs) {
      const text = fs.readFileSync(path.join(REPO, f), 'utf8');
      // metric names, not file names (space_server.py)
      for (const m of text.matchAll(/\b((?:space|process)_[a-z0-9_]*[a-z0-9])\b(?!\.[a-z])/g)) mentioned.set(m[1], f);
    }
    const dashboard = path.join(REPO, 'examples', 'ops', 'grafana-dashboard.json');
    const dash = JSON.parse(fs.readFileSync(dashboard, 'utf8'));
    let exprs = 0;
    const walk = (v) => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        if (typeof v.expr === 'string') {
          exprs++;
          for (const m of v.expr.matchAll(/\b((?:space|process)_[a-z0-9_]+)/g)) mentioned.set(m[1], 'grafana-dashboard.json');
        }
        Object.values(v).forEach(walk);
      }
    };
    walk(dash);
    assert.ok(exprs >= 8, `the dashboard has queries (${exprs})`);
    assert.ok(mentioned.size >= 20, `names found in the docs and the dashboard: ${mentioned.size}`);
    // space_redis_* exist with --redis only (spec/cluster/ reads them from its nodes).
    const missing = [...mentioned].filter(([name]) => !name.startsWith('space_redis_'))
      .filter(([name]) => !families.has(name) && !families.has(name.replace(/_(bucket|sum|count)$/, '')))
      .map(([name, where]) => `${name} (${where})`);
    assert.deepEqual(missing, [], 'metric names mentioned but not exposed');
  });
});
