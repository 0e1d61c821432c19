'use strict';
// What the soak reads from outside the server: /proc/<pid> (RSS, open files)
// and its HTTP endpoints. Every request goes on its own connection (no agent,
// no keep-alive), so the soak leaves no idle connection of its own behind.
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

// The open files, as {fd: target}.
function fds(pid) {
  const out = {};
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try { out[fd] = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch (_) { /* closed meanwhile */ }
  }
  return out;
}

// The kind of each open file (socket, pipe, anon_inode:[eventfd], a path), counted.
function fdKinds(map) {
  const kinds = {};
  for (const t of Object.values(map)) {
    const k = t.replace(/:\[\d+\]$/, '').replace(/^\/.*/, 'file');
    kinds[k] = (kinds[k] || 0) + 1;
  }
  return kinds;
}

// opts: {method, path, headers, body, timeoutMs}; resolves {status, headers, body: Buffer}.
function request(port, opts) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, method: opts.method || 'GET', path: opts.path, agent: false,
      headers: { Connection: 'close', ...(opts.headers || {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }); });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const ms = opts.timeoutMs || 15000;
    const timer = setTimeout(() => { req.destroy(new Error(`no answer to ${opts.method || 'GET'} ${opts.path} within ${ms} ms`)); }, ms);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(opts.body);
  });
}

// Prometheus text -> {name: {type, value}} (unlabelled samples only).
async function metrics(port) {
  const r = await request(port, { path: '/metrics' });
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  const out = {};
  const types = {};
  for (const line of r.body.toString('utf8').split('\n')) {
    let m = /^# TYPE (\S+) (\S+)/.exec(line);
    if (m) { types[m[1]] = m[2]; continue; }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$/.exec(line);
    if (m) out[m[1]] = { type: types[m[1]] || 'untyped', value: Number(m[2]) };
  }
  return out;
}

// Raw bytes on a fresh TCP connection; resolves the first line the server
// answers (e.g. "HTTP/1.1 400 Bad Request") or '' when it closed silently.
function rawExchange(port, bytes, ms = 10000) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no answer to raw bytes within ${ms} ms`)); }, ms);
    const done = () => { clearTimeout(timer); s.destroy(); resolve(buf.split('\r\n')[0]); };
    s.on('connect', () => s.write(bytes));
    s.on('data', (d) => { buf += d.toString('latin1'); if (buf.includes('\r\n')) done(); });
    s.on('end', done);
    s.on('close', done);
    s.on('error', done);
  });
}

// glibc's malloc_stats() of a running process, through gdb: bytes the heap
// holds (system) and of those in use, so that RSS growth can be told apart
// from live memory growth. null when gdb is missing or cannot attach.
function heapStats(pid, logPath) {
  const { execFileSync } = require('node:child_process');
  const from = fs.statSync(logPath).size;
  try {
    execFileSync('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', 'call (void) malloc_stats()'],
      { stdio: 'ignore', timeout: 30000 });
  } catch (_) { return null; }
  const fd = fs.openSync(logPath, 'r');
  const buf = Buffer.alloc(fs.statSync(logPath).size - from);
  fs.readSync(fd, buf, 0, buf.length, from);
  fs.closeSync(fd);
  const m = /Total \(incl\. mmap\):\s+system bytes\s+=\s+(\d+)\s+in use bytes\s+=\s+(\d+)/.exec(buf.toString('latin1'));
  return m ? { system: Number(m[1]), inUse: Number(m[2]) } : null;
}

module.exports = { heapStats, rssKiB, fds, fdKinds, request, metrics, rawExchange };
