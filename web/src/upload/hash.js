// SHA-256 of files in the browser, streamed from Blob.slice(): a 1 GiB file is never in
// memory at once (the stream hands out pieces of about 1 MiB; reading runs ahead of the
// hashing by a piece or so).
import { createSHA256 } from 'hash-wasm';

// Feeds bytes [start, end) of blob to the hasher.
async function feed(h, blob, start, end, onBytes, signal) {
  const reader = blob.slice(start, end).stream().getReader();
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      signal?.throwIfAborted();
      h.update(value);
      n += value.length;
      onBytes(n);
    }
  } finally {
    reader.releaseLock();
  }
  if (n !== end - start) throw new Error('the file changed while it was read');
}

// The hex SHA-256 of the whole blob; onProgress(fraction) as it goes.
export async function sha256(blob, onProgress = () => {}, signal) {
  const h = await createSHA256();
  let last = 0;
  h.init();
  await feed(
    h,
    blob,
    0,
    blob.size,
    (n) => {
      if (n - last >= 8 << 20 || n === blob.size) {
        last = n;
        onProgress(n / blob.size);
      }
    },
    signal,
  );
  return h.digest('hex');
}

// The answer to a dedup challenge (docs/openapi.yaml, POST /uploads/{id}/proof): the hex
// SHA-256 of the nonce text followed by the bytes of each range, in order.
export async function proof(blob, challenge, signal) {
  const h = await createSHA256();
  h.init();
  h.update(challenge.nonce);
  for (const r of challenge.ranges) {
    if (r.offset < 0 || r.length < 0 || r.offset + r.length > blob.size)
      throw new Error('the challenge asks for bytes beyond the file');
    await feed(h, blob, r.offset, r.offset + r.length, () => {}, signal);
  }
  return h.digest('hex');
}
