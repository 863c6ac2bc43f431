// Drives the uploader page (/app/) in headless Chromium for tests/integration/test_web_upload.py.
// Prints one JSON line: what the page showed and what it sent (every S3 PUT, with its part).
//
//   node tests/web/uploader.mjs files  --page URL --token JWT --files a,b,c [--api URL]
//        adds the files through the page's file input at once; waits until each is verified.
//   node tests/web/uploader.mjs resume --page URL --token JWT --file F [--parts-before 2]
//        starts F on a slowed network, reloads once `parts-before` part PUTs are done, adds F
//        again; reports the PUTs before and after the reload and what storage held between.
//   node tests/web/uploader.mjs etag   --page URL --token JWT --file F [--api URL]
//        uploads F, recording the ETags Uppy read from the part PUTs; then a part PUT of the
//        page's own (XHR to a presigned part URL) and the ETag header it can read.
//   --screenshot PATH (files): a picture of the page mid-upload (network slowed meanwhile).
import { args, deadline, launch, recordNetwork } from './browser.mjs';

const o = args();
const mode = process.argv[2];
deadline(Number(o.deadline || 90));

const pageUrl = () =>
  o.page + '#' + new URLSearchParams({ token: o.token, ...(o.api && { api: o.api }) });
const apiBase = () => o.api || new URL(o.page).origin;

// Waits until fn() (evaluated in the page) is truthy; returns its value.
async function until(page, fn, arg, secs, what) {
  const h = await page
    .waitForFunction(fn, { timeout: secs * 1000, polling: 100 }, arg)
    .catch(async (e) => {
      const files = await page
        .evaluate(() =>
          window.pixplaneUploader?.uppy.getFiles().map((f) => ({
            name: f.name,
            progress: f.progress,
            error: f.error,
            s3: f.s3Multipart,
          })),
        )
        .catch(() => null);
      throw new Error(`waited ${secs}s for ${what}: ${e.message}; files: ${JSON.stringify(files)}`);
    });
  return h.jsonValue();
}

// S3 PUTs seen on the network: {part (null for a one-PUT upload), status, key}.
function puts(log) {
  const api = apiBase();
  return log
    .filter((e) => e.method === 'PUT' && !e.url.startsWith(api))
    .map((e) => {
      const u = new URL(e.url);
      const part = u.searchParams.get('partNumber');
      return { part: part === null ? null : Number(part), status: e.status, key: u.pathname };
    });
}

async function openPage(browser, consoleLog) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 900 });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleLog.push(m.text());
  });
  page.on('pageerror', (e) => consoleLog.push('pageerror: ' + e.message));
  page.on('dialog', (d) => d.accept()); // "leave the page?" while uploading: yes
  return page;
}

async function load(page) {
  await page.goto(pageUrl(), { waitUntil: 'load' });
  await until(page, () => !!window.pixplaneUploader, null, 15, 'the uploader to start');
}

async function addFiles(page, paths) {
  const input = await page.waitForSelector('#dashboard input[type=file]:not([webkitdirectory])', {
    timeout: 10000,
  });
  await input.uploadFile(...paths);
}

const resultsInPage = () =>
  [...document.querySelectorAll('#results li')].map((li) => ({
    name: li.querySelector('.name').textContent,
    image_id: li.dataset.imageId,
    status: li.dataset.status,
    deduplicated: li.dataset.deduplicated === 'true',
    link: li.querySelector('a.open').href,
  }));

async function waitVerified(page, n, secs) {
  return until(
    page,
    (n) => {
      const r = [...document.querySelectorAll('#results li')];
      if (r.some((li) => li.dataset.status === 'failed')) return 'failed';
      return r.length >= n && r.every((li) => li.dataset.status === 'verified');
    },
    n,
    secs,
    `${n} verified results`,
  );
}

// Slows the page's uploads to bytesPerSec (-1: no limit) so that a moment mid-upload can be caught.
const throttle = (page, bytesPerSec) =>
  page.emulateNetworkConditions({ download: -1, upload: bytesPerSec, latency: 0 });

async function files(browser, out) {
  const page = await openPage(browser, out.console);
  const log = recordNetwork(page);
  await load(page);
  const paths = o.files.split(',');
  if (o.screenshot) await throttle(page, 8 * 1024 * 1024);
  await addFiles(page, paths);
  if (o.screenshot) {
    // mid-upload: the small files done, the big one moving
    await until(
      page,
      (n) => {
        const big = window.pixplaneUploader.uppy.getFiles().find((f) => f.size > 8 << 20);
        const p = big?.progress.percentage;
        return document.querySelectorAll('#results li').length >= n && p >= 25 && p <= 85;
      },
      paths.length - 1,
      40,
      'the small files done and the big one at 25-85 %',
    );
    await page.screenshot({ path: o.screenshot });
    await throttle(page, -1);
  }
  const ok = await waitVerified(page, paths.length, Number(o.wait || 45));
  out.results = await page.evaluate(resultsInPage);
  out.ok = ok === true;
  out.puts = puts(log);
  // a result's link opens that image in the gallery's viewer (the token is in sessionStorage)
  const last = out.results[out.results.length - 1];
  await page.goto(last.link, { waitUntil: 'load' });
  const title = await page.waitForFunction(
    () => document.querySelector('#viewer[open] #v-title')?.textContent,
    { timeout: 15000 },
  );
  out.linked = { image_id: last.image_id, title: await title.jsonValue() };
}

// The upload session of the page's only file, from Uppy's state.
const sessionOf = (page) =>
  page.evaluate(() => window.pixplaneUploader.uppy.getFiles()[0]?.s3Multipart?.uploadId || null);

async function resume(browser, out) {
  const page = await openPage(browser, out.console);
  const log = recordNetwork(page);
  await load(page);
  await throttle(page, Number(o.rate || 16 * 1024 * 1024));
  await addFiles(page, [o.file]);
  const want = Number(o['parts-before'] || 2);
  const t0 = Date.now();
  while (puts(log).filter((p) => p.status === 200).length < want) {
    if (Date.now() - t0 > 40000)
      throw new Error('no part PUTs finished in 40 s: ' + JSON.stringify(puts(log)));
    await new Promise((r) => setTimeout(r, 50));
  }
  out.session = await sessionOf(page);
  await page.reload({ waitUntil: 'load' });
  await until(
    page,
    () => !!window.pixplaneUploader,
    null,
    15,
    'the uploader to start after the reload',
  );
  // what storage holds now (stable: a PUT cut off by the reload may still land), asked by the
  // driver itself, not the page
  let stored = null;
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 300));
    const r = await fetch(`${apiBase()}/uploads/${out.session}`, {
      headers: { Authorization: 'Bearer ' + o.token },
    });
    const s = await r.json();
    const now = JSON.stringify(s.uploaded_chunks);
    out.chunk_count = s.chunk_count;
    if (now === stored) break;
    stored = now;
  }
  out.stored_at_resume = JSON.parse(stored).map((n) => n + 1);
  // the old page's PUTs, all of them (the new page has sent none: it has no file yet); those
  // not answered 200 were cut off by the reload
  const before = puts(log);
  out.before_done = before.filter((p) => p.status === 200).map((p) => p.part);
  out.before_other = before.filter((p) => p.status !== 200).map((p) => p.part);
  log.length = 0;
  out.unfinished_shown = await until(
    page,
    () => document.querySelectorAll('#unfinished-list li').length,
    null,
    10,
    'the unfinished list',
  );
  await throttle(page, -1);
  await addFiles(page, [o.file]);
  out.session_after = await until(
    page,
    () => window.pixplaneUploader.uppy.getFiles()[0]?.s3Multipart?.uploadId,
    null,
    10,
    'the session',
  );
  const ok = await waitVerified(page, 1, Number(o.wait || 45));
  out.ok = ok === true;
  out.results = await page.evaluate(resultsInPage);
  out.after = puts(log);
}

// A part PUT from the page itself: chunk 0 of a new session for F, through XHR, reading ETag.
async function etag(browser, out) {
  const page = await openPage(browser, out.console);
  const log = recordNetwork(page);
  await load(page);
  const parts = [];
  await page.exposeFunction('pixplaneTestPart', (p) => parts.push(p));
  await page.evaluate(() =>
    window.pixplaneUploader.uppy.on('s3-multipart:part-uploaded', (f, p) =>
      window.pixplaneTestPart(p),
    ),
  );
  await addFiles(page, [o.file]);
  const ok = await waitVerified(page, 1, Number(o.wait || 45));
  out.ok = ok === true;
  out.results = await page.evaluate(resultsInPage);
  out.uppy_parts = parts; // {PartNumber, ETag} as Uppy read them from the PUT answers
  out.puts = puts(log);
  out.api_origins = [
    ...new Set(
      log
        .filter((e) => ['xhr', 'fetch'].includes(e.type) && !e.url.includes('X-Amz-Signature'))
        .map((e) => new URL(e.url).origin),
    ),
  ];
  out.xhr = await page.evaluate(
    async (api, token) => {
      const h = { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' };
      const size = 6 * 1024 * 1024;
      const body = JSON.stringify({
        file_name: 'etag.jpg',
        file_size: 2 * size,
        mime_type: 'image/jpeg',
      });
      const s = await (await fetch(api + '/uploads', { method: 'POST', headers: h, body })).json();
      const u = await (
        await fetch(`${api}/uploads/${s.upload_session_id}/chunks/urls`, {
          method: 'POST',
          headers: h,
          body: JSON.stringify({ chunk_numbers: [0] }),
        })
      ).json();
      const x = new XMLHttpRequest();
      x.open('PUT', u.urls[0].url);
      await new Promise((resolve, reject) => {
        x.onload = resolve;
        x.onerror = () => reject(new Error('the PUT failed (CORS?)'));
        x.send(new Blob([new Uint8Array(u.urls[0].size)]));
      });
      await fetch(`${api}/uploads/${s.upload_session_id}`, { method: 'DELETE', headers: h });
      return { status: x.status, etag: x.getResponseHeader('ETag'), chunk_size: s.chunk_size };
    },
    apiBase(),
    o.token,
  );
}

const out = { mode, console: [] };
const browser = await launch();
let code = 0;
try {
  await { files, resume, etag }[mode](browser, out);
} catch (e) {
  out.error = String(e.stack || e);
  code = 1;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(code);
