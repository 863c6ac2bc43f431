// Signed URLs for variants and originals. Each is asked for once and cached until a minute
// before it expires; at most PARALLEL requests run at once, and a 429 is waited out.
import { ApiError, call } from '../lib/api.js';

const TTL = 600; // seconds asked for: the API's maximum
const MARGIN = 60e3; // a cached URL is not handed out in its last minute
const PARALLEL = 4;

const cache = new Map(); // "id/variant" -> { url, until }
const inflight = new Map(); // "id/variant" -> Promise
const waiting = [];
let running = 0;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pump() {
  while (running < PARALLEL && waiting.length) {
    const job = waiting.shift();
    running++;
    job
      .task()
      .then(job.resolve, job.reject)
      .finally(() => {
        running--;
        pump();
      });
  }
}

function queued(task) {
  return new Promise((resolve, reject) => {
    waiting.push({ task, resolve, reject });
    pump();
  });
}

// The call, repeated after Retry-After while the API answers 429 (at most 4 times).
async function patient(path) {
  for (let i = 0; ; i++) {
    try {
      return await call('GET', path, undefined, { ok: [202] });
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 429 || i >= 3) throw e;
      await sleep(1000 * (Number(e.headers.get('Retry-After')) || 1));
    }
  }
}

export function cachedUrl(id, variant) {
  const c = cache.get(id + '/' + variant);
  return c && c.until - MARGIN > Date.now() ? c.url : null;
}

export function forgetUrl(id, variant) {
  cache.delete(id + '/' + variant);
}

// A variant's state: { state: 'ready', url } | 'pending' (being made, or the image is still
// verifying) | 'failed' (never will be) | 'gone' (deleted, or not visible any more).
// `fresh` skips the cache and any request already under way (the variant just became ready).
export function variantUrl(id, variant, { fresh = false } = {}) {
  const key = id + '/' + variant;
  const url = fresh ? null : cachedUrl(id, variant);
  if (url) return Promise.resolve({ state: 'ready', url });
  if (!fresh && inflight.has(key)) return inflight.get(key);
  const path =
    variant === 'original'
      ? `/images/${id}?expires_in=${TTL}`
      : `/images/${id}/variants/${variant}?expires_in=${TTL}`;
  const p = queued(async () => {
    try {
      const r = await patient(path);
      if (r.status === 202) return { state: 'pending' };
      cache.set(key, { url: r.body.download_url, until: Date.now() + r.body.expires_in * 1000 });
      return { state: 'ready', url: r.body.download_url };
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) return { state: 'failed' };
      if (e instanceof ApiError && e.code === 'unknown_variant') return { state: 'failed' };
      if (e instanceof ApiError && e.status === 404) return { state: 'gone' };
      throw e;
    }
  }).finally(() => {
    if (inflight.get(key) === p) inflight.delete(key);
  });
  inflight.set(key, p);
  return p;
}
