// Driver for bench/web/run: one file through the uploader page (/app/) in headless Chromium,
// timed by phase (hashing: file added -> POST /uploads; upload: -> the answer of complete;
// verification: -> the page shows "verified"), with the browser's memory sampled all along:
// the sum of RSS and PSS (/proc/PID/smaps_rollup) of Chromium's processes every 150 ms, the
// JS heap (page.metrics()) every 500 ms. Prints one JSON line.
//   node bench/web/upload.mjs --page URL --token JWT --file F [--timeout 1800]
import { readdirSync, readFileSync } from 'node:fs';
import { args, deadline, launch } from '../../tests/web/browser.mjs';

const o = args();
deadline(Number(o.timeout || 1800));
const MIB = 1 << 20;

// The browser's process and all its descendants.
function tree(root) {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  const all = [root];
  for (let i = 0; i < all.length; i++) all.push(...(kids.get(all[i]) || []));
  return all;
}

function memory(root) {
  let rss = 0;
  let pss = 0;
  for (const pid of tree(root)) {
    try {
      const s = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      rss += Number(/^Rss:\s+(\d+)/m.exec(s)[1]);
      pss += Number(/^Pss:\s+(\d+)/m.exec(s)[1]);
    } catch {
      // gone meanwhile
    }
  }
  return { rss: rss * 1024, pss: pss * 1024 };
}

const browser = await launch();
const root = browser.process().pid;
const page = await browser.newPage();
const t = {};
let phase = 'idle';
const peak = {};
const note = (key, v) => {
  peak[phase] ??= { rss: 0, pss: 0, heap: 0 };
  peak[phase][key] = Math.max(peak[phase][key], v);
};
const sampler = setInterval(() => {
  const m = memory(root);
  note('rss', m.rss);
  note('pss', m.pss);
}, 150);
let heapBusy = false;
const heapSampler = setInterval(async () => {
  if (heapBusy) return;
  heapBusy = true;
  try {
    note('heap', (await page.metrics()).JSHeapUsedSize);
  } catch {
    // the page is navigating
  }
  heapBusy = false;
}, 500);

page.on('request', (req) => {
  if (req.method() === 'POST' && /\/uploads$/.test(req.url()) && !t.session) {
    t.session = Date.now();
    phase = 'upload';
  }
  if (req.method() === 'PUT' && !t.first_put) t.first_put = Date.now();
});
page.on('requestfinished', (req) => {
  if (req.method() === 'POST' && /\/complete$/.test(req.url()) && !t.complete) {
    t.complete = Date.now();
    phase = 'verify';
  }
});
page.on('pageerror', (e) => console.error('page error:', e.message));

const out = { file_bytes: null };
let code = 0;
try {
  await page.goto(`${o.page}#token=${o.token}`, { waitUntil: 'load' });
  await page.waitForFunction(() => !!window.pixplaneUploader, { timeout: 15000 });
  await new Promise((r) => setTimeout(r, 1000)); // a baseline of the idle page
  const input = await page.waitForSelector('#dashboard input[type=file]:not([webkitdirectory])');
  phase = 'hash';
  t.add = Date.now();
  await input.uploadFile(o.file);
  await page.waitForFunction(
    () => {
      const li = document.querySelector('#results li');
      if (li?.dataset.status === 'failed') throw new Error('verification failed');
      return li?.dataset.status === 'verified';
    },
    { timeout: Number(o.timeout || 1800) * 1000, polling: 200 },
  );
  t.verified = Date.now();
  out.file_bytes = await page.evaluate(() => window.pixplaneUploader.uppy.getFiles()[0].size);
  out.image_id = await page.evaluate(() => document.querySelector('#results li').dataset.imageId);
} catch (e) {
  out.error = String(e.stack || e);
  code = 1;
}
clearInterval(sampler);
clearInterval(heapSampler);
const s = (a, b) => (t[a] && t[b] ? Math.round(t[b] - t[a]) / 1000 : null);
Object.assign(out, {
  hash_s: s('add', 'session'),
  upload_s: s('session', 'complete'),
  to_complete_s: s('add', 'complete'),
  verify_s: s('complete', 'verified'),
  to_verified_s: s('add', 'verified'),
  peak_mib: Object.fromEntries(
    Object.entries(peak).map(([k, v]) => [
      k,
      {
        rss: +(v.rss / MIB).toFixed(1),
        pss: +(v.pss / MIB).toFixed(1),
        js_heap: +(v.heap / MIB).toFixed(1),
      },
    ]),
  ),
});
await browser.close();
console.log(JSON.stringify(out));
process.exit(code);
