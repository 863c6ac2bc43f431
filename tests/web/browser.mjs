// Shared by the browser tests: launches Debian's Chromium headless through puppeteer-core
// (from web/node_modules) and records what the page sends on the network.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'web', 'package.json'));
const puppeteer = require('puppeteer-core');

export const CHROMIUM = process.env.PIXPLANE_CHROMIUM || '/usr/bin/chromium';

export async function launch() {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    protocolTimeout: 600000,
  });
}

// Every request the page makes: {method, url, status, resourceType}; status filled on answer.
export function recordNetwork(page) {
  const log = [];
  const byReq = new Map();
  page.on('request', (req) => {
    const e = { method: req.method(), url: req.url(), status: null, type: req.resourceType() };
    byReq.set(req, e);
    log.push(e);
  });
  page.on('requestfinished', (req) => {
    const e = byReq.get(req);
    if (e && req.response()) e.status = req.response().status();
  });
  page.on('requestfailed', (req) => {
    const e = byReq.get(req);
    if (e) e.status = 'failed: ' + (req.failure() ? req.failure().errorText : '?');
  });
  return log;
}

// Command-line options --name value into an object.
export function args(argv = process.argv.slice(2)) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) continue;
    const k = argv[i].slice(2);
    o[k] = argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : true;
  }
  return o;
}

// Fails the process if the whole run takes longer than `secs` (every test loop is bounded).
export function deadline(secs) {
  const t = setTimeout(() => {
    console.error(`deadline of ${secs}s passed`);
    process.exit(3);
  }, secs * 1000);
  t.unref();
}
