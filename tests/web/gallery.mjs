// Drives the gallery page in Chromium for tests/integration/test_web_gallery.py and prints one
// JSON line of what it saw; pytest checks the outcome through the API on its own.
//
//   node tests/web/gallery.mjs --api URL --token JWT --pixctl PATH --out DIR
//        --expect N --upload FILE --rm ID --rename ID --new-name NAME --share-with USER
//
// 1. The page lists the N images already uploaded, and their thumbnails load.
// 2. With the page open: `pixctl upload FILE` appears (and its thumbnail loads once the
//    worker made it), `pixctl rm ID` vanishes.
// With --restart: prints {"pause":"restart"} and waits for a line on stdin while pytest
//    restarts the API and, meanwhile, uploads and deletes through another server; the page
//    reconnects and shows both ({"added":ID,"removed":ID} on that line).
// 3. Through the UI, on image --rename: open it (preview loads), rename, share, download the
//    original, delete; in the trash, restore it.
// Screenshots in DIR: gallery.png (the grid), gallery-live.png (pixctl's upload arriving),
// gallery-viewer.png, gallery-trash.png, gallery-mobile.png (a phone's width).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { args, deadline, launch, recordNetwork } from './browser.mjs';

const o = args();
deadline(Number(o.deadline || 80));
const out = { steps: {} };
const t0 = Date.now();
const step = (name, extra = {}) => (out.steps[name] = { at_ms: Date.now() - t0, ...extra });

function pixctl(...argv) {
  const p = spawnSync(o.pixctl, argv, {
    env: { ...process.env, PIXPLANE_API_URL: o.api, PIXPLANE_TOKEN: o.token, PIXCTL_QUIET: 'true' },
    encoding: 'utf8',
    timeout: 30000,
  });
  if (p.status !== 0) throw new Error(`pixctl ${argv.join(' ')}: exit ${p.status}: ${p.stderr}`);
  return p.stdout;
}

const browser = await launch();
const page = await browser.newPage();
const net = recordNetwork(page);
const problems = [];
let apiDown = false; // while pytest restarts the API, a refused connection is expected
page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
page.on('console', (m) => {
  if (apiDown && /ERR_CONNECTION_REFUSED/.test(m.text())) return;
  if (m.type() === 'error' || /Content Security Policy|Refused to/.test(m.text()))
    problems.push('console: ' + m.text());
});
await page.setViewport({ width: 1280, height: 860 });
const liveStates = []; // every state the live indicator went through
await page.exposeFunction('pixLiveState', (st) => liveStates.push(st));
await page.evaluateOnNewDocument(() =>
  document.addEventListener('DOMContentLoaded', () => {
    const live = document.querySelector('#live');
    new MutationObserver(() => window.pixLiveState(live.dataset.state)).observe(live, {
      attributeFilter: ['data-state'],
    });
  }),
);
const downloads = mkdtempSync(join(tmpdir(), 'pixplane-gallery-dl-'));
const cdp = await page.createCDPSession();
await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });

const tileSel = (id) => `#grid li[data-id="${id}"]`;
const thumbLoaded = (id) =>
  page.waitForFunction(
    (sel) => {
      const img = document.querySelector(sel + ' img');
      return img && img.complete && img.naturalWidth > 0;
    },
    { timeout: 30000 },
    tileSel(id),
  );

try {
  await page.goto(`${o.api}/app/gallery.html#token=${o.token}`, { waitUntil: 'load' });
  out.url_after_load = page.url(); // the token left the address bar

  // 1. the list and its thumbnails
  await page.waitForFunction(
    (n) => {
      const imgs = [...document.querySelectorAll('#grid li[data-id] img')];
      return imgs.length >= n && imgs.every((i) => i.complete && i.naturalWidth > 0);
    },
    { timeout: 30000 },
    Number(o.expect),
  );
  await page.waitForSelector('#live[data-state="live"]', { timeout: 15000 });
  out.tiles = await page.$$eval('#grid li[data-id]', (ls) =>
    ls.map((li) => ({
      id: li.dataset.id,
      thumb: li.dataset.thumb,
      w: li.querySelector('img').naturalWidth,
    })),
  );
  out.count_text = await page.$eval('#count', (e) => e.textContent);
  step('listed');
  await new Promise((r) => setTimeout(r, 400)); // the fade-in
  await page.screenshot({ path: join(o.out, 'gallery.png') });

  // 2. changes from another device, no reload
  const up = JSON.parse(pixctl('upload', '--json', o.upload).trim().split('\n').pop());
  out.uploaded = { id: up.image_id, sha256: up.sha256 };
  step('pixctl_upload');
  await page.waitForSelector(tileSel(up.image_id), { timeout: 15000 });
  out.uploaded.first = await page.$eval('#grid li[data-id]', (li) => li.dataset.id); // at the top
  out.uploaded.state_on_arrival = await page.$eval(tileSel(up.image_id), (li) => li.dataset.thumb);
  step('upload_appeared');
  await new Promise((r) => setTimeout(r, 450)); // its arrival animation
  await page.screenshot({ path: join(o.out, 'gallery-live.png') });
  await thumbLoaded(up.image_id);
  step('upload_thumb_loaded');

  pixctl('rm', o.rm);
  step('pixctl_rm');
  await page.waitForSelector(tileSel(o.rm), { hidden: true, timeout: 15000 });
  step('rm_vanished');

  if (o.restart) {
    const stdin = createInterface({ input: process.stdin });
    const line = new Promise((resolve) => stdin.once('line', resolve));
    apiDown = true;
    console.log(JSON.stringify({ pause: 'restart' }));
    const { added, removed } = JSON.parse(await line);
    stdin.close();
    step('api_restarted');
    await page.waitForSelector(tileSel(added), { timeout: 30000 });
    await page.waitForSelector(tileSel(removed), { hidden: true, timeout: 30000 });
    await thumbLoaded(added);
    await page.waitForSelector('#live[data-state="live"]', { timeout: 10000 });
    apiDown = false;
    out.restart = { added, removed };
    step('caught_up');
  }

  // 3. the viewer, on one image
  const id = o.rename;
  await page.click(tileSel(id) + ' .tile-open');
  await page.waitForSelector('#viewer[open]', { timeout: 5000 });
  await page.waitForFunction(
    () => {
      const i = document.querySelector('#v-img');
      return i.complete && i.naturalWidth > 0 && document.querySelector('#viewer.has-preview');
    },
    { timeout: 20000 },
  );
  await page.waitForSelector('[data-f="variants"] .chip', { timeout: 10000 });
  out.viewer = await page.evaluate(() => ({
    title: document.querySelector('#v-title').textContent,
    sha256: document.querySelector('[data-f="sha256"]').textContent,
    preview_w: document.querySelector('#v-img').naturalWidth,
    variants: [...document.querySelectorAll('[data-f="variants"] .chip')].map((c) => c.textContent),
  }));
  await new Promise((r) => setTimeout(r, 400));
  await page.screenshot({ path: join(o.out, 'gallery-viewer.png') });
  step('viewer');

  await page.click('#viewer .v-rename-btn');
  await page.$eval('#v-rename-input', (i) => (i.value = ''));
  await page.type('#v-rename-input', o['new-name']);
  await page.click('#v-rename button[type="submit"]');
  await page.waitForFunction(
    (n) => {
      const t = document.querySelector('#v-title');
      return t.textContent === n && !t.hidden;
    },
    { timeout: 10000 },
    o['new-name'],
  );
  step('renamed');

  await page.type('#v-share-input', o['share-with']);
  await page.click('#v-share button[type="submit"]');
  await page.waitForFunction(
    () => /^Shared with/.test(document.querySelector('#v-share-msg').textContent),
    { timeout: 10000 },
  );
  step('shared');

  await page.click('#viewer .v-download');
  const done = () => readdirSync(downloads).filter((f) => !f.endsWith('.crdownload'));
  const got = await waitFor(done, 15000);
  out.download = {
    name: got[0],
    sha256: createHash('sha256').update(readFileSync(join(downloads, got[0]))).digest('hex'),
  };
  step('downloaded');

  await page.click('#viewer .v-delete');
  await page.waitForSelector(tileSel(id), { hidden: true, timeout: 10000 });
  out.toast_after_delete = await page.$eval('#toasts', (t) => t.textContent);
  await page.keyboard.press('Escape');
  await page.waitForSelector('#viewer[open]', { hidden: true, timeout: 5000 });
  step('deleted');

  await page.click('[data-view="trash"]');
  await page.waitForSelector(tileSel(id), { timeout: 10000 });
  out.trash = await page.$$eval('#grid li[data-id]', (ls) => ls.map((li) => li.dataset.id));
  await page.screenshot({ path: join(o.out, 'gallery-trash.png') });
  await page.click(tileSel(id) + ' .tile-restore');
  await page.waitForSelector(tileSel(id), { hidden: true, timeout: 10000 });
  step('restored');

  await page.click('[data-view="photos"]');
  await page.waitForSelector(tileSel(id), { timeout: 10000 });
  await thumbLoaded(id);
  out.back = await page.$eval(tileSel(id) + ' .tile-name', (e) => e.textContent);
  step('back_in_photos');
  out.live_state = await page.$eval('#live', (e) => e.dataset.state);
  await page.setViewport({ width: 390, height: 844 }); // isMobile would reload the page
  await new Promise((r) => setTimeout(r, 400));
  await page.screenshot({ path: join(o.out, 'gallery-mobile.png') });
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.error = String(e && e.stack ? e.stack : e);
  await page.screenshot({ path: join(o.out, 'gallery-failure.png') }).catch(() => {});
}

out.live_states = liveStates;
out.problems = problems;
out.requests = net.map((e) => ({ method: e.method, url: e.url, status: e.status, type: e.type }));
out.seconds = (Date.now() - t0) / 1000;
await browser.close();
console.log(JSON.stringify(out));

async function waitFor(fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v && v.length) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
