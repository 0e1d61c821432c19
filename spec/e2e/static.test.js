'use strict';
// --static DIR: a folder served at "/" after every other route (core/app/static.c), over raw HTTP so that
// the paths reach the server exactly as written (fetch and curl would normalise "..").
//   - a directory answers its index.html (and "/sub" redirects to "/sub/"), HEAD, Content-Type by
//     extension, ETag + If-None-Match -> 304, a big file streams whole and identical;
//   - escapes all answer 404: "..", "%2e%2e", "%2F", "%5C", "\", NUL, dot files, "//", a symlink that
//     leads out of the folder (one inside it works), a missing file;
//   - /socket.io/, /healthz and /files/ keep their routes; without --static "/" stays 404;
//   - SPACE_STATIC works as the flag does; a --static that is not a directory stops the start (2).
// Run: node --test spec/e2e/static.test.js  (binary from $SPACE_SERVER, scripts from $SPACE_SCRIPTS)

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const crypto = require('node:crypto');
const h = require('./harness');

const { show } = h;

function get(port, target, headers = {}, method = 'GET') {
  const lines = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return h.httpRaw(port, lines.join('\r\n') + '\r\n\r\n');
}

// The bytes of a GET through node's http client (the raw helper reads bodies as UTF-8 text).
function getBytes(port, target, method = 'GET') {
  return new Promise((resolve, reject) => {
    http.request({ host: '127.0.0.1', port, path: target, method }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
    }).on('error', reject).end();
  });
}

function makeSite() {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'space-static-'));
  const site = path.join(base, 'site');
  fs.mkdirSync(path.join(site, 'sub', 'deeper'), { recursive: true });
  fs.mkdirSync(path.join(site, 'empty'));
  fs.writeFileSync(path.join(site, 'index.html'), '<!doctype html><title>root</title>');
  fs.writeFileSync(path.join(site, 'sub', 'index.html'), '<!doctype html><title>sub</title>');
  fs.writeFileSync(path.join(site, 'app.js'), 'export const x = 1;\n');
  fs.writeFileSync(path.join(site, 'style.css'), 'body{}\n');
  fs.writeFileSync(path.join(site, 'data.json'), '{}');
  fs.writeFileSync(path.join(site, 'pic.png'), Buffer.from('89504e470d0a1a0a', 'hex'));
  fs.writeFileSync(path.join(site, 'icon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  fs.writeFileSync(path.join(site, 'blob.bin'), 'x');
  fs.writeFileSync(path.join(site, '.secret'), 'hidden');
  fs.writeFileSync(path.join(site, 'a b.txt'), 'spaced');
  fs.writeFileSync(path.join(base, 'outside.txt'), 'OUTSIDE');
  fs.symlinkSync(path.join(base, 'outside.txt'), path.join(site, 'out-link.txt'));
  fs.symlinkSync(path.join(base), path.join(site, 'out-dir'));
  fs.symlinkSync('app.js', path.join(site, 'in-link.js'));
  const big = crypto.randomBytes(3 * 1024 * 1024 + 17);
  fs.writeFileSync(path.join(site, 'big.bin'), big);
  return { base, site, big };
}

describe('--static DIR', () => {
  let srv;
  let site;
  before(async () => {
    site = makeSite();
    srv = await h.startServer({ args: ['--static', site.site] });
  });
  after(async () => {
    if (srv) await srv.stopClean();
    fs.rmSync(site.base, { recursive: true, force: true });
  });

  test('"/" answers the folder\'s index.html, a sub-directory its own', async () => {
    const r = await get(srv.port, '/');
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body, '<!doctype html><title>root</title>');
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    const s = await get(srv.port, '/sub/');
    assert.equal(s.status, 200);
    assert.equal(s.body, '<!doctype html><title>sub</title>');
    const redirect = await get(srv.port, '/sub?x=1');
    assert.equal(redirect.status, 301, show(redirect));
    assert.equal(redirect.headers.location, '/sub/?x=1');
    const none = await get(srv.port, '/empty/');
    assert.equal(none.status, 404, 'a directory without index.html');
    const query = await get(srv.port, '/index.html?v=3');
    assert.equal(query.status, 200, 'the query is not part of the file name');
  });

  test('Content-Type follows the extension', async () => {
    const want = {
      '/app.js': 'text/javascript; charset=utf-8',
      '/style.css': 'text/css; charset=utf-8',
      '/data.json': 'application/json',
      '/pic.png': 'image/png',
      '/icon.svg': 'image/svg+xml',
      '/blob.bin': 'application/octet-stream',
      '/a%20b.txt': 'text/plain; charset=utf-8',
      '/in-link.js': 'text/javascript; charset=utf-8',
    };
    for (const [p, type] of Object.entries(want)) {
      const r = await get(srv.port, p);
      assert.equal(r.status, 200, `${p}: ${show(r)}`);
      assert.equal(r.headers['content-type'], type, p);
    }
  });

  test('HEAD gives the head of GET without a body', async () => {
    const g = await get(srv.port, '/app.js');
    const r = await getBytes(srv.port, '/app.js', 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(g.body)));
    assert.equal(r.headers.etag, g.headers.etag);
  });

  test('ETag and If-None-Match give 304; a saved edit changes the tag', async () => {
    const g = await get(srv.port, '/style.css');
    assert.match(g.headers.etag, /^"[0-9a-f-]+"$/);
    assert.equal(g.headers['cache-control'], 'no-cache');
    const r = await get(srv.port, '/style.css', { 'If-None-Match': g.headers.etag });
    assert.equal(r.status, 304, show(r));
    assert.equal(r.headers.etag, g.headers.etag);
    const star = await get(srv.port, '/style.css', { 'If-None-Match': `"nope", W/${g.headers.etag}` });
    assert.equal(star.status, 304);
    const other = await get(srv.port, '/style.css', { 'If-None-Match': '"nope"' });
    assert.equal(other.status, 200);
    fs.writeFileSync(path.join(site.site, 'style.css'), 'body{color:red}\n');
    const edited = await get(srv.port, '/style.css', { 'If-None-Match': g.headers.etag });
    assert.equal(edited.status, 200);
    assert.equal(edited.body, 'body{color:red}\n');
    assert.notEqual(edited.headers.etag, g.headers.etag);
  });

  test('a big file streams whole and identical', async () => {
    const r = await getBytes(srv.port, '/big.bin');
    assert.equal(r.status, 200);
    assert.equal(Number(r.headers['content-length']), site.big.length);
    assert.ok(r.body.equals(site.big), 'the bytes differ');
  });

  test('paths that leave the folder or name hidden files answer 404', async () => {
    const escapes = [
      '/../outside.txt', '/sub/../../outside.txt', '/%2e%2e/outside.txt', '/%2E%2E/outside.txt',
      '/sub/%2e%2e/%2e%2e/outside.txt', '/..%2Foutside.txt', '/..%2foutside.txt', '/sub%2Findex.html',
      '/..%5Coutside.txt', '/sub%5cindex.html', '/..\\outside.txt', '/index.html%00.png', '/%00',
      '/out-link.txt', '/out-dir/outside.txt', '/out-dir/', '/.secret', '/%2esecret', '/./index.html',
      '//index.html', '/sub//index.html', '/missing.html', '/sub/missing/', '/%zz', '/%',
    ];
    for (const p of escapes) {
      const r = await get(srv.port, p);
      assert.equal(r.status, 404, `${p} -> ${show(r)}`);
      assert.ok(!r.body.includes('OUTSIDE') && !r.body.includes('hidden'), p);
    }
  });

  test('methods other than GET and HEAD get 405', async () => {
    const r = await h.httpRaw(srv.port,
      `POST /index.html HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, HEAD');
  });

  test('the server\'s own routes win over files', async () => {
    for (const name of ['healthz', 'metrics', 'socket.io', 'files', 'api', 'ws']) {
      fs.writeFileSync(path.join(site.site, name), 'SHADOW');
    }
    const health = await get(srv.port, '/healthz');
    assert.equal(health.body, 'ok\n');
    const metrics = await get(srv.port, '/metrics');
    assert.ok(!metrics.body.includes('SHADOW'));
    const hs = await get(srv.port, '/socket.io/?EIO=4&transport=polling');
    assert.equal(hs.status, 200, show(hs));
    assert.match(hs.body, /^0\{"sid":/);
    const sock = await h.connectClient(srv, h.uniqueName('static'));
    try {
      const room = h.uniqueRoom('static');
      const joined = await h.expectAnswer(sock, 'join_room', { room }, 'joined_room');
      assert.equal(joined.room, room);
    } finally {
      sock.disconnect();
    }
  });
});

describe('--static off and from the environment', () => {
  test('without --static "/" is 404', async () => {
    const srv = await h.startServer();
    try {
      const r = await get(srv.port, '/');
      assert.equal(r.status, 404);
    } finally {
      await srv.stopClean();
    }
  });

  test('SPACE_STATIC serves the folder like the flag', async () => {
    const site = makeSite();
    const srv = await h.startServer({ env: { SPACE_STATIC: site.site } });
    try {
      const r = await get(srv.port, '/');
      assert.equal(r.status, 200);
      assert.equal(r.body, '<!doctype html><title>root</title>');
    } finally {
      await srv.stopClean();
      fs.rmSync(site.base, { recursive: true, force: true });
    }
  });

  test('a --static that is not a directory stops the start with a reason', async () => {
    const missing = path.join(os.tmpdir(), `space-static-missing-${process.pid}`);
    const r = await h.runServerToExit(['--scripts', h.SCRIPTS_DIR, '--port', '0', '--static', missing]);
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /--static .*No such file or directory/);
    const file = path.join(os.tmpdir(), `space-static-file-${process.pid}`);
    fs.writeFileSync(file, 'x');
    try {
      const r2 = await h.runServerToExit(['--scripts', h.SCRIPTS_DIR, '--port', '0', '--static', file]);
      assert.equal(r2.code, 2, show(r2));
      assert.match(r2.stderr, /not a directory/);
    } finally {
      fs.unlinkSync(file);
    }
  });
});
