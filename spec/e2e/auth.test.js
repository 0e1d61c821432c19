'use strict';
// PROTOCOL.md §2 (authentication) and §6 (its flags) through the stock socket.io-client:
//   - accepted tokens: HS256/384/512 (secret file and SPACE_JWT_SECRET), RS256/384/512, ES256 (P-256);
//   - every refusal with its exact CONNECT_ERROR code: missing_token, invalid_token (malformed, bad
//     signature, alg none, algorithm confusion, a.b.c.d, truncated), token_expired,
//     token_not_yet_valid, invalid_issuer, invalid_audience, token_too_large;
//   - where the token comes from (auth object, Authorization header, token query) and in what order;
//   - the user from the claims (name, preferred_username, sub) and the jwt plugin's required_role and
//     banned_users;
//   - token expiry during a session: the token_expired error, refresh_token, the grace, other subs;
//   - one user with two connections is one user (joined_room users, /api/users);
//   - development mode without a key, and the start-up refusals of unusable keys.
// Keys and tokens are made here (node:crypto) and written to a temp dir removed at the end.
// Run: node --test spec/e2e/auth.test.js   (binary from $SPACE_SERVER)

const { test, describe, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./harness');

const { show, T, settle } = h;

// ---------------------------------------------------------------------------------------------
// Keys and tokens

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'space-auth-test-'));
const b64u = (b) => Buffer.from(b).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);

// HS256 secret: 64 hex characters; the file ends in a newline, which is not part of the key.
const HS_SECRET = crypto.randomBytes(32).toString('hex');
const HS_SECRET_FILE = path.join(TMP, 'jwt.secret');
fs.writeFileSync(HS_SECRET_FILE, HS_SECRET + '\n');
const ENV_SECRET = crypto.randomBytes(24).toString('base64url'); // 32 characters: the minimum
const OTHER_SECRET = crypto.randomBytes(32).toString('hex');

const RSA = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const RSA_PUB_PEM = RSA.publicKey.export({ type: 'spki', format: 'pem' });
const RSA_PUB_FILE = path.join(TMP, 'rsa.pub.pem');
fs.writeFileSync(RSA_PUB_FILE, RSA_PUB_PEM);
const RSA_OTHER = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });

const EC = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const EC_PUB_PEM = EC.publicKey.export({ type: 'spki', format: 'pem' });
const EC_PUB_FILE = path.join(TMP, 'ec.pub.pem');
fs.writeFileSync(EC_PUB_FILE, EC_PUB_PEM);
const EC_OTHER = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });

const ADMIN_TOKEN = crypto.randomBytes(24).toString('hex');
const ADMIN_TOKEN_FILE = path.join(TMP, 'admin.token');
fs.writeFileSync(ADMIN_TOKEN_FILE, ADMIN_TOKEN + '\n');

const ISSUER = 'https://auth.example.test';
const AUDIENCE = 'the-space';

// A JWS compact token. payload: an object (JSON-encoded) or a string (used as is).
// opts.alg: HS256/384/512 (key: secret), RS256/384/512 (key: private KeyObject), PS256, ES256
// (raw r||s, or DER with opts.der), none. opts.header: merged into the header.
function sign(payload, { alg = 'HS256', key = HS_SECRET, header = {}, der = false } = {}) {
  const hdr = b64u(JSON.stringify({ alg, typ: 'JWT', ...header }));
  const body = b64u(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const input = `${hdr}.${body}`;
  let sig;
  if (alg.startsWith('HS')) sig = crypto.createHmac(`sha${alg.slice(2)}`, key).update(input).digest();
  else if (alg.startsWith('RS')) sig = crypto.sign(`sha${alg.slice(2)}`, Buffer.from(input), key);
  else if (alg === 'PS256') {
    sig = crypto.sign('sha256', Buffer.from(input), { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING });
  } else if (alg === 'ES256') {
    sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: der ? 'der' : 'ieee-p1363' });
  } else if (alg === 'none') sig = Buffer.alloc(0);
  else throw new Error(`sign: unknown alg ${alg}`);
  return `${input}.${b64u(sig)}`;
}

let subSeq = 0;
const uniqueSub = (p = 'u') => `${p}-${process.pid}-${++subSeq}-${crypto.randomBytes(3).toString('hex')}`;
// Claims valid for an hour, with a fresh sub.
const claims = (extra = {}) => ({ sub: uniqueSub(), iat: nowS(), exp: nowS() + 3600, ...extra });

// ---------------------------------------------------------------------------------------------
// Clients

const sockets = new Set();
let seq = 0;

// Connects to `/`; resolves {socket, connected} once the server's `connected` event arrives, or
// {socket, error: {message, data}} on CONNECT_ERROR, or {socket, closed: reason}.
async function tryConnect(srv, opts = {}) {
  const r = await h.tryConnect(srv, { ...opts, label: opts.label || `auth#${++seq}` });
  sockets.add(r.socket);
  return r;
}

async function connectOk(srv, opts, what) {
  const r = await tryConnect(srv, opts);
  assert.ok(r.connected, `${what}: expected the connection to be accepted, got ${show(r.error || r.closed)}\n${srv.describe()}`);
  return r;
}

// The server must refuse with CONNECT_ERROR {"message":"unauthorized","data":{"code":code}}.
async function refused(srv, opts, code, what) {
  const r = await tryConnect(srv, opts);
  assert.ok(!r.connected, `${what}: expected a refusal with code ${code}, but the connection was accepted as ${show(r.connected)}`);
  assert.ok(r.error, `${what}: expected CONNECT_ERROR ${code}, the connection closed instead (${show(r.closed)})`);
  // PROTOCOL.md §2: {"message": "unauthorized", "data": {"code": ...}} (data may carry more detail).
  assert.equal(r.error.data && r.error.data.code, code, `${what}: data.code of the CONNECT_ERROR ${show(r.error)}`);
  assert.equal(r.error.message, 'unauthorized', `${what}: message of the CONNECT_ERROR ${show(r.error)}`);
  r.socket.disconnect();
  return r;
}

const withToken = (token, extra = {}) => ({ auth: { token }, ...extra });

async function adminGet(srv, p) {
  const r = await h.httpRaw(srv.port, `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nConnection: close\r\n\r\n`);
  return { status: r.status, body: r.body ? JSON.parse(r.body) : null };
}

// ---------------------------------------------------------------------------------------------
// Servers

const GRACE_MS = 1500;
const managed = {
  // HS256/384/512 from a secret file; default leeway (30 s); a short grace; the admin API.
  hs: new h.ManagedServer({ args: ['--jwt-secret-file', HS_SECRET_FILE, '--token-grace', String(GRACE_MS), '--admin-token-file', ADMIN_TOKEN_FILE] }),
  // Expiry during a session: no leeway, so that exp is when the clock runs out.
  hs0: new h.ManagedServer({ args: ['--jwt-secret-file', HS_SECRET_FILE, '--token-grace', String(GRACE_MS), '--jwt-leeway', '0'] }),
  // RSA public key with issuer and audience; no leeway.
  rs: new h.ManagedServer({ args: ['--jwt-public-key', RSA_PUB_FILE, '--jwt-issuer', ISSUER, '--jwt-audience', AUDIENCE, '--jwt-leeway', '0'] }),
  // EC P-256 public key.
  es: new h.ManagedServer({ args: ['--jwt-public-key', EC_PUB_FILE] }),
};
let policyScripts = null;

before(async () => {
  policyScripts = h.copyScripts((rel, text) => {
    if (rel !== 'init.lua') return text;
    const out = text.replace(/jwt = \{ banned_users = \{\} \}/,
      'jwt = { banned_users = { "mallory", "eve" }, required_role = "chat" }');
    if (out === text) throw new Error('scripts/init.lua: the jwt plugin config line was not found; update this test');
    return out;
  });
  // The secret in SPACE_JWT_SECRET; the jwt plugin with required_role and banned_users.
  managed.policy = new h.ManagedServer({ scripts: policyScripts, env: { SPACE_JWT_SECRET: ENV_SECRET } });
  await Promise.all(Object.values(managed).map((m) => m.start()));
});

afterEach(async () => {
  for (const s of sockets) { try { s.disconnect(); } catch (_) { /* gone */ } }
  sockets.clear();
  h.closeAllClients();
  await Promise.all(Object.values(managed).map((m) => m.check()));
});

after(async () => {
  const errors = [];
  for (const m of Object.values(managed)) await m.finish().catch((e) => errors.push(e));
  if (policyScripts) fs.rmSync(policyScripts, { recursive: true, force: true });
  fs.rmSync(TMP, { recursive: true, force: true });
  if (errors.length) throw errors[0];
});

const srv = (k) => managed[k].srv;

// ---------------------------------------------------------------------------------------------
// Accepted tokens

describe('accepted tokens', () => {
  test('HS256 from --jwt-secret-file (trailing newline not part of the key): connected, user from sub and name', async () => {
    const c = claims({ name: 'Alice Example' });
    const { connected } = await connectOk(srv('hs'), withToken(sign(c)), 'HS256');
    assert.deepEqual(connected.user, { id: c.sub, name: 'Alice Example' }, 'connected.user');
    assert.equal(typeof connected.sid, 'string');
    assert.ok(!/DEVELOPMENT MODE/.test(srv('hs').stderr), `a server with a key must not warn about development mode\n${srv('hs').describe()}`);
    assert.match(srv('hs').stderr, /JWT authentication on/, 'start log line');
  });

  test('HS384 and HS512 with the same secret', async () => {
    for (const alg of ['HS384', 'HS512']) {
      const c = claims();
      const { connected } = await connectOk(srv('hs'), withToken(sign(c, { alg })), alg);
      assert.equal(connected.user.id, c.sub, `${alg}: user id`);
    }
  });

  test('HS256 with the key from SPACE_JWT_SECRET', async () => {
    const c = claims({ roles: ['chat'] });
    const { connected } = await connectOk(srv('policy'), withToken(sign(c, { key: ENV_SECRET })), 'SPACE_JWT_SECRET');
    assert.equal(connected.user.id, c.sub);
    await refused(srv('policy'), withToken(sign(claims({ roles: ['chat'] }), { key: HS_SECRET })), 'invalid_token',
      'SPACE_JWT_SECRET server, token signed with another secret');
  });

  test('RS256, RS384 and RS512 with --jwt-public-key (issuer and audience given)', async () => {
    for (const alg of ['RS256', 'RS384', 'RS512']) {
      const c = claims({ iss: ISSUER, aud: AUDIENCE });
      const { connected } = await connectOk(srv('rs'), withToken(sign(c, { alg, key: RSA.privateKey })), alg);
      assert.equal(connected.user.id, c.sub, `${alg}: user id`);
    }
  });

  test('ES256 (P-256, raw r||s signature)', async () => {
    for (let i = 0; i < 5; i++) { // different r, s each time: leading zero bytes must not matter
      const c = claims();
      const { connected } = await connectOk(srv('es'), withToken(sign(c, { alg: 'ES256', key: EC.privateKey })), `ES256 #${i}`);
      assert.equal(connected.user.id, c.sub);
    }
  });

  test('the user name: name, else preferred_username, else sub', async () => {
    const cases = [
      [{ name: 'N', preferred_username: 'P' }, 'N'],
      [{ preferred_username: 'P' }, 'P'],
      [{ name: '', preferred_username: 'P' }, 'P'],
      [{}, null],
    ];
    for (const [extra, want] of cases) {
      const c = claims(extra);
      const { connected } = await connectOk(srv('hs'), withToken(sign(c)), show(extra));
      assert.deepEqual(connected.user, { id: c.sub, name: want === null ? c.sub : want }, `claims ${show(extra)}`);
    }
  });

  test('exp within --jwt-leeway (default 30 s) is accepted; nbf within it too', async () => {
    await connectOk(srv('hs'), withToken(sign(claims({ exp: nowS() - 10 }))), 'exp 10 s ago, leeway 30');
    await connectOk(srv('hs'), withToken(sign(claims({ nbf: nowS() + 10 }))), 'nbf in 10 s, leeway 30');
    await connectOk(srv('hs'), withToken(sign(claims({ nbf: nowS() - 10 }))), 'nbf 10 s ago');
  });
});

// ---------------------------------------------------------------------------------------------
// Refusals

describe('refusals with their codes', () => {
  test('missing_token: no auth, an empty auth object, {name} only, an empty token', async () => {
    await refused(srv('hs'), {}, 'missing_token', 'no auth object');
    await refused(srv('hs'), { auth: {} }, 'missing_token', 'auth {}');
    await refused(srv('hs'), { auth: { name: 'alice' } }, 'missing_token', 'auth {name} (development login) with a key configured');
    await refused(srv('hs'), withToken(''), 'missing_token', 'auth {token: ""}');
    await refused(srv('rs'), {}, 'missing_token', 'RSA server, no token');
  });

  test('invalid_token: malformed tokens', async () => {
    const good = sign(claims());
    const cases = {
      'not a JWT': 'hello',
      'two segments': good.split('.').slice(0, 2).join('.'),
      'a.b.c.d': 'a.b.c.d',
      'a valid token with a fourth segment': `${good}.${good.split('.')[2]}`,
      'a.b.c (segments not base64 JSON)': 'a.b.c',
      'empty segments': '..',
      'standard base64 with padding': good.replace(/-/g, '+').replace(/_/g, '/') + '==',
      'header not JSON': `${b64u('{"alg":"HS256"')}.${good.split('.')[1]}.${good.split('.')[2]}`,
      'claims not an object': sign('[1,2,3]'),
      'claims not JSON': sign('{"sub":"x",'),
      'no sub': sign({ exp: nowS() + 60 }),
      'sub not a string': sign({ sub: 42, exp: nowS() + 60 }),
      'empty sub': sign({ sub: '', exp: nowS() + 60 }),
      'exp not a number': sign({ sub: 'x', exp: String(nowS() + 60) }),
      'nbf not a number': sign({ sub: 'x', nbf: 'soon' }),
      'a crit header': sign(claims(), { header: { crit: ['exp'] } }),
      'no alg': (() => { const t = sign(claims()).split('.'); return `${b64u('{"typ":"JWT"}')}.${t[1]}.${t[2]}`; })(),
      'a token of spaces and dots': '  .  .  ',
      'non-ASCII bytes': 'é.é.é',
    };
    for (const [what, token] of Object.entries(cases)) await refused(srv('hs'), withToken(token), 'invalid_token', what);
  });

  test('invalid_token: truncated tokens', async () => {
    const good = sign(claims());
    for (const cut of [1, 2, 5, 20]) {
      await refused(srv('hs'), withToken(good.slice(0, good.length - cut)), 'invalid_token', `the last ${cut} characters cut`);
    }
    await refused(srv('hs'), withToken(good.slice(0, good.lastIndexOf('.') + 1)), 'invalid_token', 'the signature cut off (trailing dot)');
    await refused(srv('hs'), withToken(good.slice(0, 30)), 'invalid_token', 'cut inside the claims');
    await refused(srv('hs'), withToken(good.slice(0, good.lastIndexOf('.'))), 'invalid_token', 'header.claims without the dot');
  });

  test('invalid_token: bad signatures', async () => {
    const c = claims();
    const good = sign(c);
    const [hd, pl, sg] = good.split('.');
    const flipped = Buffer.from(sg, 'base64url');
    flipped[5] ^= 1;
    await refused(srv('hs'), withToken(`${hd}.${pl}.${b64u(flipped)}`), 'invalid_token', 'one signature bit flipped');
    await refused(srv('hs'), withToken(sign(c, { key: OTHER_SECRET })), 'invalid_token', 'another secret');
    await refused(srv('hs'), withToken(sign(c, { key: HS_SECRET + '\n' })), 'invalid_token', 'the secret with the file\'s newline');
    const other = b64u(JSON.stringify({ ...c, sub: 'admin' }));
    await refused(srv('hs'), withToken(`${hd}.${other}.${sg}`), 'invalid_token', 'claims swapped under a valid signature');
    await refused(srv('hs'), withToken(sign(c, { alg: 'HS512' }).split('.').slice(0, 2).concat(sg).join('.')),
      'invalid_token', 'HS512 header with an HS256 signature');
  });

  test('invalid_token: alg none, in every spelling, with and without a signature', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await refused(srv('hs'), withToken(sign(claims(), { alg: 'none', header: { alg } })), 'invalid_token', `alg ${alg}, empty signature`);
      const t = sign(claims(), { alg: 'none', header: { alg } });
      await refused(srv('hs'), withToken(t + b64u(crypto.randomBytes(32))), 'invalid_token', `alg ${alg} with a signature`);
    }
    await refused(srv('rs'), withToken(sign(claims({ iss: ISSUER, aud: AUDIENCE }), { alg: 'none' })), 'invalid_token', 'alg none, RSA server');
    await refused(srv('es'), withToken(sign(claims(), { alg: 'none' })), 'invalid_token', 'alg none, EC server');
  });

  test('invalid_token: algorithm confusion and algorithms the key does not verify', async () => {
    const rc = claims({ iss: ISSUER, aud: AUDIENCE });
    // The classic attack: HS256 with the server's RSA public key (PEM text) as the HMAC secret.
    await refused(srv('rs'), withToken(sign(rc, { alg: 'HS256', key: RSA_PUB_PEM })), 'invalid_token', 'HS256 keyed with the RSA public key PEM');
    await refused(srv('rs'), withToken(sign(rc, { alg: 'HS256', key: RSA_PUB_PEM.trim() })), 'invalid_token', 'HS256 keyed with the trimmed PEM');
    const der = RSA.publicKey.export({ type: 'spki', format: 'der' });
    await refused(srv('rs'), withToken(sign(rc, { alg: 'HS256', key: der })), 'invalid_token', 'HS256 keyed with the RSA public key DER');
    await refused(srv('rs'), withToken(sign(rc, { alg: 'HS512', key: RSA_PUB_PEM })), 'invalid_token', 'HS512 keyed with the RSA PEM');
    await refused(srv('es'), withToken(sign(claims(), { alg: 'HS256', key: EC_PUB_PEM })), 'invalid_token', 'HS256 keyed with the EC public key PEM');
    await refused(srv('rs'), withToken(sign(rc, { alg: 'PS256', key: RSA.privateKey })), 'invalid_token', 'PS256 (not offered)');
    await refused(srv('rs'), withToken(sign(rc, { alg: 'ES256', key: EC.privateKey })), 'invalid_token', 'ES256 on the RSA server');
    await refused(srv('rs'), withToken(sign(rc, { alg: 'RS256', key: RSA_OTHER.privateKey })), 'invalid_token', 'RS256 by another RSA key');
    await refused(srv('es'), withToken(sign(claims(), { alg: 'RS256', key: RSA.privateKey })), 'invalid_token', 'RS256 on the EC server');
    await refused(srv('es'), withToken(sign(claims(), { alg: 'ES256', key: EC_OTHER.privateKey })), 'invalid_token', 'ES256 by another EC key');
    await refused(srv('es'), withToken(sign(claims(), { alg: 'ES256', key: EC.privateKey, der: true })), 'invalid_token', 'ES256 with a DER signature');
    { const t = sign(claims(), { alg: 'ES256', key: EC.privateKey }).split('.');
      await refused(srv('es'), withToken(`${b64u('{"alg":"ES384","typ":"JWT"}')}.${t[1]}.${t[2]}`), 'invalid_token', 'alg ES384 (not offered)'); }
    await refused(srv('hs'), withToken(sign(claims(), { alg: 'RS256', key: RSA.privateKey })), 'invalid_token', 'RS256 on the HMAC server');
    await refused(srv('hs'), withToken(sign(claims(), { alg: 'ES256', key: EC.privateKey })), 'invalid_token', 'ES256 on the HMAC server');
  });

  test('token_too_large: a 100 KB token, 8193 bytes; exactly 8192 bytes still verifies', async () => {
    await refused(srv('hs'), withToken(sign(claims({ pad: 'x'.repeat(100 * 1024) }))), 'token_too_large', '100 KB signed token');
    await refused(srv('hs'), withToken('A'.repeat(100 * 1024)), 'token_too_large', '100 KB of garbage');
    const exact = (n) => {
      for (const typ of ['JWT', 'jwt1', 'at+jwt']) { // header length varies the residue of the total
        for (let pad = 5000; pad < 7000; pad++) {
          const c = claims({ pad: 'y'.repeat(pad) });
          const t = sign(c, { header: { typ } });
          if (t.length === n) return { t, c };
          if (t.length > n) break;
        }
      }
      throw new Error(`could not build a token of ${n} bytes`);
    };
    const at = exact(8192);
    const { connected } = await connectOk(srv('hs'), withToken(at.t), 'a valid token of exactly 8192 bytes');
    assert.equal(connected.user.id, at.c.sub);
    await refused(srv('hs'), withToken(exact(8193).t), 'token_too_large', 'a valid token of 8193 bytes');
  });

  test('token_expired and token_not_yet_valid, with and without leeway', async () => {
    await refused(srv('hs'), withToken(sign(claims({ exp: nowS() - 3600 }))), 'token_expired', 'exp an hour ago');
    await refused(srv('hs'), withToken(sign(claims({ exp: nowS() - 31 - 2 }))), 'token_expired', 'exp just beyond the 30 s leeway');
    await refused(srv('hs'), withToken(sign(claims({ nbf: nowS() + 3600 }))), 'token_not_yet_valid', 'nbf in an hour');
    const rc = (extra) => claims({ iss: ISSUER, aud: AUDIENCE, ...extra });
    // --jwt-leeway 0 on the RSA server
    await refused(srv('rs'), withToken(sign(rc({ exp: nowS() - 3 }), { alg: 'RS256', key: RSA.privateKey })), 'token_expired', 'exp 3 s ago, leeway 0');
    await refused(srv('rs'), withToken(sign(rc({ nbf: nowS() + 5 }), { alg: 'RS256', key: RSA.privateKey })), 'token_not_yet_valid', 'nbf in 5 s, leeway 0');
    // A bad signature is reported as such, not as expired: nothing of unverified claims is trusted.
    await refused(srv('hs'), withToken(sign(claims({ exp: nowS() - 3600 }), { key: OTHER_SECRET })), 'invalid_token', 'expired and wrongly signed');
  });

  test('invalid_issuer and invalid_audience (string and array aud)', async () => {
    const rs = (c) => withToken(sign(c, { alg: 'RS256', key: RSA.privateKey }));
    await refused(srv('rs'), rs(claims({ aud: AUDIENCE })), 'invalid_issuer', 'no iss');
    await refused(srv('rs'), rs(claims({ iss: 'https://evil.example', aud: AUDIENCE })), 'invalid_issuer', 'another iss');
    await refused(srv('rs'), rs(claims({ iss: ISSUER + '/', aud: AUDIENCE })), 'invalid_issuer', 'iss with a trailing slash');
    await refused(srv('rs'), rs(claims({ iss: [ISSUER], aud: AUDIENCE })), 'invalid_issuer', 'iss as an array');
    await refused(srv('rs'), rs(claims({ iss: ISSUER })), 'invalid_audience', 'no aud');
    await refused(srv('rs'), rs(claims({ iss: ISSUER, aud: 'other' })), 'invalid_audience', 'another aud');
    await refused(srv('rs'), rs(claims({ iss: ISSUER, aud: AUDIENCE.toUpperCase() })), 'invalid_audience', 'aud in other case');
    await refused(srv('rs'), rs(claims({ iss: ISSUER, aud: ['a', 'b'] })), 'invalid_audience', 'aud array without ours');
    await refused(srv('rs'), rs(claims({ iss: ISSUER, aud: [] })), 'invalid_audience', 'empty aud array');
    await refused(srv('rs'), rs(claims({ iss: ISSUER, aud: [[AUDIENCE]] })), 'invalid_audience', 'ours nested one level deeper');
    await refused(srv('rs'), rs(claims({ iss: ISSUER, aud: { x: AUDIENCE } })), 'invalid_audience', 'aud an object');
    await connectOk(srv('rs'), rs(claims({ iss: ISSUER, aud: AUDIENCE })), 'aud string');
    await connectOk(srv('rs'), rs(claims({ iss: ISSUER, aud: [AUDIENCE] })), 'aud [ours]');
    await connectOk(srv('rs'), rs(claims({ iss: ISSUER, aud: ['x', 1, { a: 'b' }, AUDIENCE] })), 'aud with ours last among others');
    // Without --jwt-issuer / --jwt-audience nothing about them is checked.
    await connectOk(srv('hs'), withToken(sign(claims({ iss: 'anyone', aud: ['whoever'] }))), 'iss/aud not configured');
  });
});

// ---------------------------------------------------------------------------------------------
// Where the token comes from

describe('token sources', () => {
  test('Authorization: Bearer header of the handshake (extraHeaders), and the token query parameter', async () => {
    const c1 = claims({ name: 'Header' });
    const r1 = await connectOk(srv('hs'), { extraHeaders: { Authorization: `Bearer ${sign(c1)}` } }, 'Authorization header');
    assert.deepEqual(r1.connected.user, { id: c1.sub, name: 'Header' });
    const c2 = claims({ name: 'Query' });
    const r2 = await connectOk(srv('hs'), { query: { token: sign(c2) } }, 'token query parameter');
    assert.deepEqual(r2.connected.user, { id: c2.sub, name: 'Query' });
    const c3 = claims();
    await connectOk(srv('hs'), { extraHeaders: { Authorization: `bearer ${sign(c3)}` } }, 'lower-case "bearer" scheme');
    await refused(srv('hs'), { extraHeaders: { Authorization: `Bearer ${sign(claims(), { key: OTHER_SECRET })}` } }, 'invalid_token', 'bad header token');
    await refused(srv('hs'), { query: { token: 'a.b.c.d' } }, 'invalid_token', 'bad query token');
    await refused(srv('hs'), { query: { token: sign(claims({ exp: nowS() - 3600 })) } }, 'token_expired', 'expired query token');
    await refused(srv('hs'), { extraHeaders: { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } }, 'missing_token', 'Basic auth is no token');
  });

  test('order: the auth object, then the header, then the query', async () => {
    const good = () => sign(claims());
    const bad = sign(claims(), { key: OTHER_SECRET });
    await refused(srv('hs'), { auth: { token: bad }, extraHeaders: { Authorization: `Bearer ${good()}` } }, 'invalid_token',
      'a bad auth-object token wins over a good header');
    await connectOk(srv('hs'), { auth: { token: good() }, extraHeaders: { Authorization: `Bearer ${bad}` } }, 'a good auth-object token, a bad header');
    await connectOk(srv('hs'), { extraHeaders: { Authorization: `Bearer ${good()}` }, query: { token: bad } }, 'a good header, a bad query');
    await refused(srv('hs'), { extraHeaders: { Authorization: `Bearer ${bad}` }, query: { token: good() } }, 'invalid_token',
      'a bad header wins over a good query');
    const c = claims({ name: 'FromAuth' });
    const r = await connectOk(srv('hs'), { auth: { token: sign(c) }, query: { token: good() } }, 'auth object and query');
    assert.equal(r.connected.user.id, c.sub, 'the auth object\'s token names the user');
  });

  test('long-polling (transports [polling]): accepted via the auth object and the header, refused with its code', async () => {
    const c = claims({ name: 'Poller' });
    const r = await connectOk(srv('hs'), { transports: ['polling'], auth: { token: sign(c) } }, 'polling, auth object');
    assert.deepEqual(r.connected.user, { id: c.sub, name: 'Poller' });
    assert.equal(r.socket.io.engine.transport.name, 'polling');
    await settle(r.socket);
    await connectOk(srv('hs'), { transports: ['polling'], extraHeaders: { Authorization: `Bearer ${sign(claims())}` } }, 'polling, header');
    await refused(srv('hs'), { transports: ['polling'], auth: { token: sign(claims({ exp: nowS() - 3600 })) } }, 'token_expired', 'polling, expired');
    await refused(srv('hs'), { transports: ['polling'] }, 'missing_token', 'polling, no token');
    // Default transports (polling, then the upgrade) with a header token.
    const r2 = await connectOk(srv('hs'), { transports: ['polling', 'websocket'], extraHeaders: { Authorization: `Bearer ${sign(claims())}` } }, 'default transports, header');
    await settle(r2.socket);
  });
});

// ---------------------------------------------------------------------------------------------
// One user, several connections

test('a user with two connections is listed once in joined_room users and in /api/users (connections: 2)', async () => {
  const c = claims({ name: 'Twice' });
  const room = h.uniqueRoom('auth');
  const a = (await connectOk(srv('hs'), withToken(sign(c)), 'first connection')).socket;
  const b = (await connectOk(srv('hs'), withToken(sign({ ...c, iat: c.iat + 1 })), 'second connection')).socket;
  const j1 = await h.expectAnswer(a, 'join_room', { room }, 'joined_room');
  assert.deepEqual(j1.users, [{ id: c.sub, name: 'Twice' }], 'first join');
  const j2 = await h.expectAnswer(b, 'join_room', { room }, 'joined_room');
  assert.deepEqual(j2.users, [{ id: c.sub, name: 'Twice' }], 'second join: the user once');
  assert.equal(j2.count, 1, 'count');
  await settle(a);
  assert.equal(a.inbox.count('user_joined_room'), 0, `the user's other connection joining is no user_joined_room: ${a.inbox.summary()}`);

  const all = await adminGet(srv('hs'), '/api/users');
  assert.equal(all.status, 200);
  const mine = all.body.users.filter((u) => u.id === c.sub);
  assert.equal(mine.length, 1, `the user once in /api/users: ${show(all.body)}`);
  assert.equal(mine[0].connections, 2, 'connections');
  assert.equal(mine[0].name, 'Twice');
  assert.deepEqual(mine[0].rooms, [room], 'rooms, each once');
  const one = await adminGet(srv('hs'), `/api/users/${encodeURIComponent(c.sub)}`);
  assert.equal(one.status, 200);
  assert.equal(one.body.connections, 2);
  const rm = await adminGet(srv('hs'), `/api/rooms/${encodeURIComponent(room)}`);
  assert.deepEqual({ users: rm.body.users, count: rm.body.count, connections: rm.body.connections },
    { users: [{ id: c.sub, name: 'Twice' }], count: 1, connections: 2 }, '/api/rooms/{room}');
});

// ---------------------------------------------------------------------------------------------
// Expiry during a session

describe('token expiry during a session', () => {
  test(`exp passes: token_expired error; refresh_token keeps the connection past the grace (${GRACE_MS} ms), no refresh closes it after the grace`, { timeout: T(20000) }, async () => {
    // Both connections carry the same token (exp 2 s ahead); the one that does not refresh is the clock.
    const sub = uniqueSub('exp');
    const exp = Math.ceil(Date.now() / 1000) + 2;
    const token = sign({ sub, exp, name: 'Expiring' });
    const x = (await connectOk(srv('hs0'), withToken(token), 'refreshing connection')).socket;
    const y = (await connectOk(srv('hs0'), withToken(token), 'idle connection')).socket;
    const bound = T(exp * 1000 - Date.now() + 2000);
    const [ex, ey] = await Promise.all([
      x.inbox.take('error', (d) => d && d.code === 'token_expired', bound),
      y.inbox.take('error', (d) => d && d.code === 'token_expired', bound),
    ]);
    for (const [label, e] of [['x', ex], ['y', ey]]) {
      assert.equal(e.data.event, 'refresh_token', `${label}: the error's event`);
      assert.equal(typeof e.data.message, 'string', `${label}: the error's message`);
      assert.ok(e.at >= exp * 1000 - 50, `${label}: token_expired came ${exp * 1000 - e.at} ms before exp`);
      assert.ok(e.at <= exp * 1000 + T(1000), `${label}: token_expired came ${e.at - exp * 1000} ms after exp`);
    }
    // Refresh x with a fresh token for the same sub.
    const newExp = nowS() + 600;
    x.emit('refresh_token', { token: sign({ sub, exp: newExp, name: 'Expiring' }) });
    const answer = await x.inbox.take(['token_refreshed', 'error'], null, h.DEFAULT_WAIT);
    assert.equal(answer.name, 'token_refreshed', `refresh answer: ${show(answer.data)}`);
    assert.equal(answer.data.exp, newExp * 1000, 'token_refreshed.exp (ms since the epoch)');
    // y did not refresh: closed after the grace, as a server disconnect.
    const dy = await y.inbox.take('$disconnect', null, T(GRACE_MS + 3000));
    assert.equal(dy.data, 'io server disconnect', 'y: disconnect reason');
    const waited = dy.at - ey.at;
    assert.ok(waited >= GRACE_MS - 60, `y closed ${waited} ms after token_expired, before the ${GRACE_MS} ms grace`);
    assert.ok(waited <= GRACE_MS + T(1000), `y closed ${waited} ms after token_expired`);
    // x is still there once the grace is over, and stays.
    await settle(x);
    await new Promise((r) => setTimeout(r, 300)); // absence check: nothing may come in this window
    await settle(x);
    assert.ok(x.connected, 'x must still be connected');
    assert.equal(x.inbox.count('$disconnect'), 0, `x was disconnected: ${x.inbox.summary()}`);
    assert.equal(x.inbox.items.filter((it) => it.name === 'error' && !it.taken).length, 0, `x got another error: ${x.inbox.summary()}`);
    const users = await adminGet(srv('hs0'), `/api/users/${encodeURIComponent(sub)}`);
    assert.equal(users.body && users.body.connections, 1, `the refreshed connection in /api/users: ${show(users.body)}`);
  });

  test('refresh_token refusals: another sub (invalid_token), expired, wrongly signed, missing; the session stays', async () => {
    const sub = uniqueSub('ref');
    const s = (await connectOk(srv('hs0'), withToken(sign({ sub, exp: nowS() + 3600 })), 'connect')).socket;
    const expectRefreshError = async (data, code, what) => {
      const e = await h.expectError(s, 'refresh_token', data);
      assert.equal(e.code, code, `${what}: ${show(e)}`);
      assert.equal(e.event, 'refresh_token', `${what}: event`);
    };
    await expectRefreshError({ token: sign({ sub: uniqueSub('other'), exp: nowS() + 3600 }) }, 'invalid_token', 'another sub');
    await expectRefreshError({ token: sign({ sub: sub + 'x', exp: nowS() + 3600 }) }, 'invalid_token', 'a sub with a suffix');
    await expectRefreshError({ token: sign({ sub, exp: nowS() - 3600 }) }, 'token_expired', 'an expired token');
    await expectRefreshError({ token: sign({ sub, exp: nowS() + 3600 }, { key: OTHER_SECRET }) }, 'invalid_token', 'another secret');
    await expectRefreshError({ token: sign({ sub, exp: nowS() + 3600 }, { alg: 'none' }) }, 'invalid_token', 'alg none');
    await expectRefreshError({}, 'invalid_payload', 'no token field');
    await expectRefreshError({ token: 5 }, 'invalid_payload', 'token not a string');
    // The session is unchanged, and a good refresh still works.
    await settle(s);
    const ok = await h.expectAnswer(s, 'refresh_token', { token: sign({ sub, exp: nowS() + 7200 }) }, 'token_refreshed');
    assert.ok(ok.exp > Date.now() + 3600 * 1000, `exp ${ok.exp}`);
    assert.ok(s.connected);
  });

  test('after a refusal to another sub during the grace, the connection is still closed after the grace', { timeout: T(15000) }, async () => {
    const sub = uniqueSub('hijack');
    const exp = Math.ceil(Date.now() / 1000) + 1;
    const s = (await connectOk(srv('hs0'), withToken(sign({ sub, exp })), 'connect')).socket;
    const e = await s.inbox.take('error', (d) => d && d.code === 'token_expired', T(4000));
    const err = await h.expectError(s, 'refresh_token', { token: sign({ sub: uniqueSub('thief'), exp: nowS() + 3600 }) });
    assert.equal(err.code, 'invalid_token');
    const d = await s.inbox.take('$disconnect', null, T(GRACE_MS + 3000));
    assert.equal(d.data, 'io server disconnect');
    assert.ok(d.at - e.at >= GRACE_MS - 60, `closed ${d.at - e.at} ms after token_expired`);
  });
});

// ---------------------------------------------------------------------------------------------
// The jwt plugin's policy (scripts copy: required_role = "chat", banned_users = {"mallory", "eve"})

describe('plugins/jwt policy', () => {
  const tok = (c) => withToken(sign(c, { key: ENV_SECRET }));
  // The plugin's refusals: the code is checked here; the message separately (last test).
  const pluginRefusals = [];
  const refusedByPlugin = async (opts, code, what) => {
    const r = await tryConnect(srv('policy'), opts);
    assert.ok(r.error, `${what}: expected CONNECT_ERROR ${code}, got ${show(r.connected || r.closed)}`);
    assert.equal(r.error.data && r.error.data.code, code, `${what}: data.code of ${show(r.error)}`);
    pluginRefusals.push({ what, error: r.error });
    r.socket.disconnect();
  };

  test('required_role: the role claim must hold the role (string or list)', async () => {
    await connectOk(srv('policy'), tok(claims({ roles: ['chat'] })), 'roles [chat]');
    await connectOk(srv('policy'), tok(claims({ roles: ['reader', 'chat'] })), 'roles [reader, chat]');
    await connectOk(srv('policy'), tok(claims({ roles: 'chat' })), 'roles "chat"');
    await refusedByPlugin(tok(claims()), 'missing_role', 'no roles claim');
    await refusedByPlugin(tok(claims({ roles: ['reader'] })), 'missing_role', 'roles [reader]');
    await refusedByPlugin(tok(claims({ roles: 'chatter' })), 'missing_role', 'roles "chatter"');
    await refusedByPlugin(tok(claims({ roles: [] })), 'missing_role', 'roles []');
    await refusedByPlugin(tok(claims({ role: 'chat' })), 'missing_role', 'claim "role", not "roles"');
    await refusedByPlugin(tok(claims({ roles: { chat: true } })), 'missing_role', 'roles an object');
  });

  test('banned_users: refused whatever the token holds; other users pass', async () => {
    await refusedByPlugin(tok(claims({ sub: 'mallory', roles: ['chat'] })), 'banned', 'mallory');
    await refusedByPlugin(tok(claims({ sub: 'eve', roles: ['chat'], name: 'Not Eve' })), 'banned', 'eve');
    await refusedByPlugin(tok(claims({ sub: 'eve' })), 'banned', 'eve without the role');
    const r = await connectOk(srv('policy'), tok(claims({ sub: 'mallory2', roles: ['chat'] })), 'mallory2');
    assert.equal(r.connected.user.id, 'mallory2');
    // The C checks come first: an expired token of a banned user is token_expired.
    await refused(srv('policy'), tok(claims({ sub: 'mallory', roles: ['chat'], exp: nowS() - 3600 })), 'token_expired', 'mallory expired');
  });

  test('the plugin\'s refusals are CONNECT_ERROR {"message": "unauthorized", "data": {"code"}} like every other refusal (PROTOCOL.md §2)', () => {
    assert.ok(pluginRefusals.length >= 9, 'the two tests above ran');
    const wrong = pluginRefusals.filter((r) => r.error.message !== 'unauthorized');
    assert.deepEqual(wrong, [], 'refusals whose message is not "unauthorized"');
  });

  test('refresh_token applies the policy too: a fresh token without the required role is refused, one with it is taken', async () => {
    const sub = uniqueSub('role');
    const s = (await connectOk(srv('policy'), tok({ sub, exp: nowS() + 3600, roles: ['chat'] }), 'connect with the role')).socket;
    s.emit('refresh_token', { token: sign({ sub, exp: nowS() + 7200 }, { key: ENV_SECRET }) });
    const it = await s.inbox.take(['token_refreshed', 'error'], null, h.DEFAULT_WAIT);
    assert.equal(it.name, 'error', `a refresh without the role was answered ${it.name} ${show(it.data)}`);
    assert.equal(it.data.code, 'missing_role');
    const exp = nowS() + 7200;
    s.emit('refresh_token', { token: sign({ sub, exp, roles: ['chat'] }, { key: ENV_SECRET }) });
    const ok2 = await s.inbox.take(['token_refreshed', 'error'], null, h.DEFAULT_WAIT);
    assert.equal(ok2.name, 'token_refreshed', `a refresh with the role was answered ${ok2.name} ${show(ok2.data)}`);
    assert.equal(ok2.data.exp, exp * 1000);
    assert.ok(s.connected, 'still connected after both refreshes');
  });
});

// ---------------------------------------------------------------------------------------------
// A NUL byte in the user id (sub "a\u0000b", or a development name "a\u0000b"). C strings end at the
// NUL, Lua strings don't: the id must be one thing everywhere (or the token refused), the user must
// be gone once its last connection is, and the server must survive. Each case on its own server:
// a crash here must not take the other tests down.

async function nulUserScenario(server, opts, sub, what) {
  const r = await tryConnect(server, opts);
  if (r.error) { // refusing such an id is a fine answer
    assert.equal(r.error.message, 'unauthorized', `${what}: refusal ${show(r.error)}`);
    r.socket.disconnect();
    return 'refused';
  }
  assert.ok(r.connected, `${what}: ${show(r.closed)}`);
  // Every problem is collected, so that one run shows them all.
  const problems = [];
  if (sub !== null && r.connected.user.id !== sub) {
    problems.push(`the user id is ${show(r.connected.user.id)}, not the whole sub ${show(sub)}`);
  }
  await settle(r.socket);
  r.socket.disconnect();
  // Once the only connection is gone, so is the user (GET /api/status counts users).
  await h.waitFor(async () => {
    const st = await h.httpRaw(server.port, 'GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    return st.status === 200 && JSON.parse(st.body).users === 0;
  }, T(3000), 'users 0').catch(() => problems.push('the user is still counted in /api/status after its only connection closed'));
  const users = await h.httpRaw(server.port, 'GET /api/users HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
    .catch((e) => ({ status: `no answer (${e.message.slice(0, 80)})` }));
  if (users.status !== 200) problems.push(`GET /api/users afterwards: ${users.status}`);
  else if (JSON.parse(users.body).count !== 0) problems.push(`GET /api/users afterwards lists ${users.body}`);
  // The same id again.
  if (!server.exit) {
    const again = await tryConnect(server, opts).catch((e) => ({ error: e.message }));
    if (!again.connected) problems.push(`reconnecting with the same id: ${show(again.error || again.closed)}`);
    else again.socket.disconnect();
  }
  await h.assertAlive(server).catch(() => problems.push(`the server died: exit ${show(server.exit)}`));
  assert.deepEqual(problems, [], `${what}:\n  - ${problems.join("\n  - ")}\n${server.describe()}`);
  return 'accepted';
}

describe('a NUL byte in the user id', () => {
  test('JWT sub "x\\u0000y": the whole sub is the id (or the token is refused); the user goes away; the server survives', async () => {
    const own = await h.startServer({ args: ['--jwt-secret-file', HS_SECRET_FILE] });
    try {
      const sub = `nul-${crypto.randomBytes(3).toString('hex')}\u0000tail`;
      await nulUserScenario(own, withToken(sign({ sub, exp: nowS() + 3600 })), sub, 'sub with a NUL');
    } finally {
      for (const s of sockets) s.disconnect();
      if (own.exit) await own.stop(); else await own.stopClean();
    }
  });

  test('banned_users: sub "mallory\\u0000x" must not get in as "mallory"', async () => {
    const own = await h.startServer({ scripts: policyScripts, env: { SPACE_JWT_SECRET: ENV_SECRET } });
    try {
      const r = await tryConnect(own, withToken(sign({ sub: 'mallory\u0000x', roles: ['chat'], exp: nowS() + 3600 }, { key: ENV_SECRET })));
      if (r.connected) {
        assert.notEqual(r.connected.user.id, 'mallory', `a banned user got in by appending a NUL to the sub: ${show(r.connected.user)}`);
      }
    } finally {
      for (const s of sockets) s.disconnect();
      await own.stopClean();
    }
  });

  test('development mode, auth {name: "a\\u0000b"}: the user goes away and the same name connects again', async () => {
    const dev = await h.startServer({});
    try {
      await nulUserScenario(dev, { auth: { name: `nul${crypto.randomBytes(2).toString('hex')}\u0000b` } }, null, 'dev name with a NUL');
    } finally {
      for (const s of sockets) s.disconnect();
      if (dev.exit) await dev.stop(); else await dev.stopClean();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Development mode and unusable keys

describe('development mode and start-up', () => {
  test('without a key: a DEVELOPMENT MODE warning at start, auth {name} names the user', async () => {
    const dev = await h.startServer({});
    try {
      assert.match(dev.stderr, /DEVELOPMENT MODE/, `start warning\n${dev.describe()}`);
      const r = await connectOk(dev, { auth: { name: 'alice' } }, 'dev {name}');
      assert.equal(r.connected.user.name, 'alice');
      const r2 = await connectOk(dev, { auth: { name: 'alice' } }, 'dev {name} again');
      assert.equal(r2.connected.user.id, r.connected.user.id, 'the same name is the same user');
      const g1 = await connectOk(dev, {}, 'guest');
      const g2 = await connectOk(dev, {}, 'guest');
      assert.notEqual(g1.connected.user.id, g2.connected.user.id, 'guests are distinct users');
      // A token means nothing without a key; it does not error either.
      await connectOk(dev, withToken('a.b.c.d'), 'dev mode ignores a token');
    } finally {
      for (const s of sockets) s.disconnect();
      await dev.stopClean();
    }
  });

  test('unusable keys stop the start with exit 1 and one line saying why', async () => {
    const files = fs.mkdtempSync(path.join(TMP, 'files-'));
    const base = ['--scripts', h.SCRIPTS_DIR, '--host', '127.0.0.1', '--port', '0', '--files-dir', files];
    const short = path.join(TMP, 'short.secret');
    fs.writeFileSync(short, 'x'.repeat(31) + '\n');
    const p384 = path.join(TMP, 'p384.pem');
    fs.writeFileSync(p384, crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }));
    const priv = path.join(TMP, 'private.pem');
    fs.writeFileSync(priv, EC.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const junk = path.join(TMP, 'junk.pem');
    fs.writeFileSync(junk, 'not a key\n');
    const cases = [
      ['a 31-byte secret', ['--jwt-secret-file', short], /32/],
      ['a missing secret file', ['--jwt-secret-file', path.join(TMP, 'nope')], /nope/],
      ['a secret and a public key', ['--jwt-secret-file', HS_SECRET_FILE, '--jwt-public-key', RSA_PUB_FILE], /one JWT key/i],
      ['a P-384 key', ['--jwt-public-key', p384], /P-256/],
      ['a private key', ['--jwt-public-key', priv], /public key/i],
      ['not a PEM', ['--jwt-public-key', junk], /PEM/],
    ];
    for (const [what, args, re] of cases) {
      const r = await h.runServerToExit([...base, ...args], T(5000));
      assert.equal(r.timedOut, false, `${what}: the server started instead of refusing\n${r.stderr}`);
      assert.equal(r.code, 1, `${what}: exit code\n${r.stderr}`);
      assert.match(r.stderr, re, `${what}: the reason`);
      assert.ok(!/listening/.test(r.stderr), `${what}: must not listen`);
    }
  });
});
