'use strict';
// The web page (examples/web) in a real browser: Debian's chromium, driven headless by playwright-core
// (which downloads no browser of its own), against the real server serving the page with --static.
//   - two pages (a desktop and a phone-sized one) sign in, join a room, see each other in the
//     people list and chat both ways;
//   - one drops a PNG on the conversation, the other sees the preview and downloads identical bytes;
//   - a message over the length rule shows its refusal (the message marked, the error shown);
//   - the page served from another origin (?server=URL) chats through --cors-origin;
//   - the server stops: both pages show the reconnect state; it starts again on the same port: both
//     reconnect, rejoin the room, and chat again;
//   - JWT mode: a name alone is refused with a plain message, the token field signs in;
//   - admin.html: the token typed in, users and rooms with members listed, an emit reaches the room,
//     a reload succeeds and then shows file:line for broken scripts, a kick disconnects a page.
// Screenshots of the pages go to $SPACE_TEST_OUTPUT (ctest: <build>/test-output/browser), or a temp
// dir printed in the log. The page needs examples/web/vendor/ (bash .ci/install puts it there).
// Run: node --test spec/browser/  (binary from $SPACE_SERVER, scripts from $SPACE_SCRIPTS)

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const h = require('../e2e/harness');

const { T } = h;
const CHROMIUM = process.env.SPACE_CHROMIUM || '/usr/bin/chromium';
const WEB = path.join(h.REPO, 'examples', 'web');
const BUNDLE = path.join(WEB, 'vendor', 'socket.io.esm.min.js');
const ADMIN_TOKEN = crypto.randomBytes(24).toString('hex');
const WAIT = T(10000);

let chromium = null;
try {
  ({ chromium } = require('playwright-core'));
} catch (_) { /* reported by the skip below */ }
const missing = !chromium ? 'playwright-core is not installed (npm ci in spec/)'
  : !fs.existsSync(CHROMIUM) ? `no browser at ${CHROMIUM} (apt-get install chromium)`
    : !fs.existsSync(BUNDLE) ? `${BUNDLE} is missing (bash .ci/install copies it)` : null;
// In CI everything is installed by .ci/install: a missing part is a failure there, not a skip.
if (missing && process.env.CI) throw new Error(`the browser test cannot run: ${missing}`);

// An HS256 JWT, signed here.
function hs256(claims, secret) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

// A w x h PNG of one colour, made here so the test carries no binary file.
function makePng(w, hgt, [r, g, b]) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(hgt, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const row = Buffer.alloc(1 + w * 3);
  for (let x = 0; x < w; x++) row.set([r, g, b], 1 + x * 3);
  const raw = Buffer.concat(Array.from({ length: hgt }, () => row));
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

let outDir;
let scripts;
let srv;
let port;
let pageSrv; // serves the page from another origin, for the --cors-origin step
let browser;
const contexts = [];

function serverOpts() {
  return {
    scripts,
    args: ['--static', WEB, '--cors-origin', pageSrv.url, ...(port ? ['--port', String(port)] : [])],
    env: { SPACE_ADMIN_TOKEN: ADMIN_TOKEN },
  };
}

async function shot(page, name, fullPage = false) {
  const file = path.join(outDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

async function openPage(viewport) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.log = log;
  return page;
}

async function signIn(page, name, url = `${srv.url}/`) {
  await page.goto(url);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.locator('#status[data-state="online"]', { hasText: `Connected as ${name}` }).waitFor({ timeout: WAIT });
}

async function join(page, room) {
  await page.getByLabel('Room to join').fill(room);
  await page.getByLabel('Room to join').press('Enter');
  await page.locator('#room-title', { hasText: room }).waitFor({ timeout: WAIT });
}

async function say(page, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByLabel('Message', { exact: true }).press('Enter');
}

function message(page, who, text) {
  return page.locator('#messages li.msg', { has: page.locator('.who', { hasText: who }) }).filter({ hasText: text });
}

function people(page) {
  return page.locator('#people li');
}

before(async () => {
  if (missing) return;
  outDir = process.env.SPACE_TEST_OUTPUT
    ? path.resolve(process.env.SPACE_TEST_OUTPUT)
    : fs.mkdtempSync(path.join(os.tmpdir(), 'space-browser-'));
  fs.mkdirSync(outDir, { recursive: true });
  console.log(`# screenshots in ${outDir}`);
  scripts = h.copyScripts(null);
  pageSrv = await h.startServer({ args: ['--static', WEB] });
  srv = await h.startServer(serverOpts());
  port = srv.port;
  // launch() runs the browser on a fresh temporary profile of its own, removed when it closes.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: WAIT * 3,
  });
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  if (browser) {
    await browser.close();
  }
  if (srv) await srv.stopClean();
  if (pageSrv) await pageSrv.stopClean();
  if (scripts) fs.rmSync(scripts, { recursive: true, force: true });
});

// One browser session walks through the steps in order (each needs the one before); a failing step
// stops the walk, names itself and attaches both pages' console logs and screenshots.
async function step(name, fn) {
  console.log(`# step: ${name}`);
  try {
    await fn();
  } catch (e) {
    e.message = `step "${name}": ${e.message}`;
    throw e;
  }
}

test('two pages chat, share a picture, see refusals, survive a server restart; the admin page', { skip: missing || false, timeout: T(120000) }, async () => {
  const alice = await openPage({ width: 1180, height: 760 });
  const bob = await openPage({ width: 390, height: 844 }); // a phone
  const room = `web-${crypto.randomBytes(3).toString('hex')}`;
  const pages = { alice, bob };
  try {
    await step('sign in and join a room; each sees the other in the people list', async () => {
      await signIn(alice, 'alice');
      await signIn(bob, 'bob');
      await join(alice, room);
      await join(bob, room);
      for (const p of [alice, bob]) {
        await people(p).filter({ hasText: 'alice' }).waitFor({ timeout: WAIT });
        await people(p).filter({ hasText: 'bob' }).waitFor({ timeout: WAIT });
      }
      assert.equal(await people(alice).count(), 2);
      // the page asked for history; this server has none (unknown_event): nothing is shown for it
      assert.equal(await alice.locator('#errors .error').count(), 0, await alice.locator('#errors').innerText());
      assert.equal(await alice.locator('#messages li').count(), 0);
    });

    await step('chat both ways, with who and when', async () => {
      await say(alice, 'hello bob');
      await message(bob, 'alice', 'hello bob').waitFor({ timeout: WAIT });
      await say(bob, 'hi alice, from a phone');
      await message(alice, 'bob', 'hi alice, from a phone').waitFor({ timeout: WAIT });
      const time = await message(alice, 'bob', 'hi alice').locator('time').getAttribute('datetime');
      assert.ok(Math.abs(Date.parse(time) - Date.now()) < 600000, `a time: ${time}`);
      // the sender's own message is confirmed (no "sending…" left on it)
      await alice.locator('#messages li.msg.mine:not(.sending)', { hasText: 'hello bob' }).waitFor({ timeout: WAIT });
    });

    const png = makePng(48, 32, [59, 91, 219]);
    await step('a PNG dropped on one page: the other sees the preview and downloads the same bytes', async () => {
      await alice.evaluate(({ b64, name }) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type: 'image/png' }));
        const zone = document.querySelector('#drop-zone');
        zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, { b64: png.toString('base64'), name: 'square.png' });
      const img = bob.locator('#messages li.msg img[alt="square.png"]');
      await img.waitFor({ timeout: WAIT });
      await h.waitFor(() => img.evaluate((i) => i.complete && i.naturalWidth === 48 && i.naturalHeight === 32),
        WAIT, 'the preview to load');
      await alice.locator('#messages li.msg.mine img[alt="square.png"]').waitFor({ timeout: WAIT });
      const [download] = await Promise.all([
        bob.waitForEvent('download', { timeout: WAIT }),
        bob.locator('#messages a.download', { hasText: 'square.png' }).click(),
      ]);
      assert.equal(download.suggestedFilename(), 'square.png');
      const got = fs.readFileSync(await download.path());
      assert.ok(got.equals(png), `downloaded ${got.length} bytes, sent ${png.length}`);
    });

    await step('a file picked with the file field goes too', async () => {
      await bob.locator('#file').setInputFiles({ name: 'note.txt', mimeType: 'text/plain', buffer: Buffer.from('plain note\n') });
      await alice.locator('#messages a.download', { hasText: 'note.txt' }).waitFor({ timeout: WAIT });
      await bob.locator('#messages li.msg.mine a.download', { hasText: 'note.txt' }).waitFor({ timeout: WAIT });
    });

    await step('a refused message shows why', async () => {
      await say(alice, 'x'.repeat(4001));
      await alice.locator('#messages li.msg.failed .state', { hasText: 'not sent' }).waitFor({ timeout: WAIT });
      await alice.locator('#errors .error[data-code="message_too_long"]').waitFor({ timeout: WAIT });
      await shot(alice, 'alice-chat');
      await shot(bob, 'bob-chat-phone');
      await alice.keyboard.press('Escape');
    });

    await step('the page from another origin talks to the server through --cors-origin', async () => {
      const carol = await openPage({ width: 800, height: 600 });
      pages.carol = carol;
      await signIn(carol, 'carol', `${pageSrv.url}/?server=${encodeURIComponent(srv.url)}`);
      assert.equal(await carol.getByLabel('Server').inputValue(), srv.url);
      await join(carol, room);
      await say(carol, 'hello from another origin');
      await message(alice, 'carol', 'hello from another origin').waitFor({ timeout: WAIT });
      const img = carol.locator('#messages img[alt="square.png"]');
      await say(alice, 'welcome carol');
      await message(carol, 'alice', 'welcome carol').waitFor({ timeout: WAIT });
      // The page asks for the room's history on joining: the picture shared before carol came.
      await img.first().waitFor({ timeout: WAIT });
      await carol.context().close();
      delete pages.carol;
      await people(alice).filter({ hasText: 'carol' }).waitFor({ state: 'detached', timeout: WAIT });
    });

    await step('a server restart: the reconnect state, then back in the room', async () => {
      await srv.stopClean();
      for (const p of [alice, bob]) {
        await p.locator('#status[data-state="reconnecting"]').waitFor({ timeout: WAIT });
      }
      await shot(alice, 'alice-reconnecting');
      await shot(bob, 'bob-reconnecting-phone');
      srv = await h.startServer(serverOpts());
      for (const p of [alice, bob]) {
        await p.locator('#status[data-state="online"]').waitFor({ timeout: T(30000) });
        await people(p).filter({ hasText: 'alice' }).waitFor({ timeout: WAIT });
        await people(p).filter({ hasText: 'bob' }).waitFor({ timeout: WAIT });
      }
      await say(bob, 'still here after the restart');
      await message(alice, 'bob', 'still here after the restart').waitFor({ timeout: WAIT });
      await shot(alice, 'alice-reconnected');
    });

    await step('JWT mode: a name is refused plainly, the token field signs in', async () => {
      const secret = crypto.randomBytes(32).toString('hex');
      const jwtSrv = await h.startServer({ args: ['--static', WEB], env: { SPACE_JWT_SECRET: secret } });
      try {
        const dave = await openPage({ width: 800, height: 600 });
        pages.dave = dave;
        await dave.goto(`${jwtSrv.url}/`);
        await dave.getByLabel('Name', { exact: true }).fill('dave');
        await dave.getByRole('button', { name: 'Connect' }).click();
        await dave.locator('#errors .error[data-code="missing_token"]', { hasText: 'sign in with a token' }).waitFor({ timeout: WAIT });
        assert.equal(await dave.locator('#status').getAttribute('data-state'), 'offline');
        await shot(dave, 'jwt-sign-in-refused');
        await dave.getByLabel('Token', { exact: true }).waitFor({ timeout: WAIT }); // the page switched to the token field
        const now = Math.floor(Date.now() / 1000);
        await dave.getByLabel('Token', { exact: true }).fill(hs256({ sub: 'u-dave', name: 'Dave T.', iat: now, exp: now + 600 }, secret));
        await dave.getByRole('button', { name: 'Connect' }).click();
        await dave.locator('#status[data-state="online"]', { hasText: 'Connected as Dave T.' }).waitFor({ timeout: WAIT });
        await join(dave, 'jwt-room');
        await people(dave).filter({ hasText: 'Dave T.' }).waitFor({ timeout: WAIT });
        await dave.context().close();
        delete pages.dave;
      } finally {
        await jwtSrv.stopClean();
      }
    });

    await step('admin.html: token, users and rooms, emit, reload and its error, kick', async () => {
      const admin = await openPage({ width: 1180, height: 900 });
      await admin.goto(`${srv.url}/admin.html`);
      await admin.getByLabel('Admin token').fill('wrong-token-0123456789');
      await admin.getByRole('button', { name: 'Load', exact: true }).click();
      await admin.locator('#errors .error', { hasText: 'wrong or missing admin token' }).waitFor({ timeout: WAIT });
      await admin.getByLabel('Admin token').fill(ADMIN_TOKEN);
      await admin.getByRole('button', { name: 'Load', exact: true }).click();
      await admin.locator('#users tr', { hasText: 'dev:alice' }).waitFor({ timeout: WAIT });
      await admin.locator('#users tr', { hasText: 'dev:bob' }).waitFor({ timeout: WAIT });
      const row = admin.locator('#rooms tr', { hasText: room });
      await row.waitFor({ timeout: WAIT });
      assert.match(await row.innerText(), /alice/);
      assert.match(await row.innerText(), /bob/);
      // nothing of the token outside the page's memory
      assert.ok(!admin.url().includes(ADMIN_TOKEN));
      const stored = await admin.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
      assert.ok(!stored.includes(ADMIN_TOKEN));

      await admin.getByLabel('Room', { exact: true }).fill(room);
      await admin.getByLabel('Data (JSON)').fill('{"text": "maintenance at 18:00"}');
      await admin.getByRole('button', { name: 'Emit', exact: true }).click();
      await admin.locator('#emit-result', { hasText: 'Sent to 2 connections' }).waitFor({ timeout: WAIT });
      await bob.locator('#messages li.notice', { hasText: 'maintenance at 18:00' }).waitFor({ timeout: WAIT });

      await admin.getByRole('button', { name: 'Reload scripts' }).click();
      await admin.locator('#reload-result.ok', { hasText: 'Reloaded' }).waitFor({ timeout: WAIT });
      const rules = path.join(scripts, 'rules.lua');
      fs.writeFileSync(rules, fs.readFileSync(rules, 'utf8').replace('max_length = 4000', 'max_length = "4000"'));
      await admin.getByRole('button', { name: 'Reload scripts' }).click();
      await admin.locator('#reload-result.bad', { hasText: /rules\.lua:\d+/ }).waitFor({ timeout: WAIT });
      await shot(admin, 'admin', true);

      await admin.getByRole('button', { name: 'Disconnect bob' }).click();
      await bob.locator('#status[data-state="offline"]', { hasText: 'Disconnected by the server' }).waitFor({ timeout: WAIT });
      await admin.locator('#users tr', { hasText: 'dev:bob' }).waitFor({ state: 'detached', timeout: WAIT });
      pages.admin = admin;
    });
  } catch (e) {
    for (const [name, p] of Object.entries(pages)) {
      await shot(p, `failure-${name}`).catch(() => {});
      e.message += `\n--- ${name} page log ---\n${p.log.join('\n')}`;
    }
    e.message += `\n${srv.describe()}`;
    throw e;
  }
  for (const [name, p] of Object.entries(pages)) {
    assert.deepEqual(p.log.filter((l) => l.startsWith('[pageerror]')), [], `${name}: errors in the page`);
  }
});
