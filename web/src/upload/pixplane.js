// pixplane upload sessions driven by Uppy 5's @uppy/aws-s3 (see index.js for why Uppy 5).
//
// For each file, in order:
// 1. preprocessor: resume the file's session when it has one that is still open (a retry,
//    or the same file added again after a page reload); otherwise hash the file (streaming
//    SHA-256 over Blob.slice), open a session declaring that hash (POST /uploads) and answer
//    the dedup challenge. A proven file is done: no byte is sent. The session goes into
//    file.s3Multipart, so the uploader resumes it (listParts first) instead of creating one.
// 2. uploader (@uppy/aws-s3): sessions of more than one chunk are S3 multipart uploads:
//    createMultipartUpload -> the session, signPart -> POST /uploads/{id}/chunks/urls
//    (chunk n = PartNumber - 1), listParts -> GET /uploads/{id}, completeMultipartUpload ->
//    POST /uploads/{id}/complete, abortMultipartUpload -> DELETE /uploads/{id}. One-chunk
//    sessions have no multipart upload: one PUT to chunk 0's URL (getUploadParameters).
// 3. a one-chunk session is completed once its PUT is done (the postprocessor waits for it).
// A complete answers 200 (verified) or 202 (verifying in the background: polled until the
// server has read the bytes back). Results go out as uppy.emit('pixplane:result', fileID, r)
// with r = {image_id, status: 'verifying' | 'verified' | 'failed', deduplicated, sha256, error}.
import AwsS3 from '@uppy/aws-s3';
import { ApiError, call } from '../lib/api.js';
import { proof, sha256 } from './hash.js';
import * as memory from './memory.js';

export const PARALLEL = 6; // requests at once per page (part PUTs, signing, listing)
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000]; // per part PUT and per signing
const OPEN = 'uploading';

// Per file, keyed by its Blob (Uppy keeps the same one for the file's lifetime, retries
// included): {session, sha256, result}.
const state = new WeakMap();

function stateOf(file) {
  const data = file.data ?? file;
  if (!state.has(data)) state.set(data, {});
  return state.get(data);
}

function sessionOf(file) {
  const s = stateOf(file).session;
  if (!s) throw new Error('no upload session for ' + (file.name || 'this file'));
  return s;
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });

// call() with retries on what may pass: network errors, 429 (Retry-After), 502-504.
async function api(method, path, body, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call(method, path, body, opts);
    } catch (e) {
      const passing =
        e instanceof ApiError ? [429, 502, 503, 504].includes(e.status) : e.name === 'TypeError';
      if (!passing || attempt >= 4 || opts.signal?.aborted) throw e;
      const after = Number(e.headers?.get?.('Retry-After'));
      await sleep(after > 0 ? after * 1000 : 500 * 2 ** attempt, opts.signal);
    }
  }
}

function randomKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('');
}

async function getSession(id, signal) {
  try {
    return (await api('GET', `/uploads/${id}`, undefined, { signal })).body;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

export function installPixplane(uppy, { link = () => null } = {}) {
  const controllers = new Map(); // fileID -> AbortController of its preprocessing

  const report = (file, r) => {
    stateOf(file).result = r;
    uppy.emit('pixplane:result', file.id, r);
  };

  const adopt = (file, session, hash) => {
    Object.assign(stateOf(file), { session, sha256: hash });
    const id = session.upload_session_id;
    uppy.setFileState(file.id, { s3Multipart: { key: id, uploadId: id } });
  };

  // A file that needs no upload (proven, or completed before a reload): done in Uppy's state,
  // so the uploader skips it (@uppy/utils filterFilesToUpload).
  const markUploaded = (file, answer) => {
    const f = uppy.getFile(file.id);
    uppy.setFileState(f.id, {
      progress: {
        ...f.progress,
        uploadStarted: f.progress.uploadStarted || Date.now(),
        bytesUploaded: 0,
        bytesTotal: f.size,
      },
    });
    uppy.emit('upload-success', uppy.getFile(f.id), {
      status: 200,
      body: answer,
      uploadURL: link(answer.image_id),
    });
  };

  // Follows a session until its image is verified or failed; reports each state.
  const follow = async (file, id, answer) => {
    const base = { image_id: answer.image_id, deduplicated: !!answer.deduplicated };
    report(file, { ...base, status: 'verifying', sha256: null });
    const deadline = Date.now() + 30 * 60 * 1000;
    let wait = 500;
    while (Date.now() < deadline) {
      await sleep(wait);
      wait = Math.min(wait * 1.5, 5000);
      let s;
      try {
        s = await getSession(id);
      } catch {
        continue;
      }
      if (!s) return;
      if (s.status === 'completed' || s.status === 'failed') memory.forgetSession(id);
      if (s.status === 'completed')
        return report(file, { ...base, status: 'verified', sha256: s.sha256 });
      if (s.status === 'failed')
        return report(file, {
          ...base,
          status: 'failed',
          error: s.error?.message || 'verification failed',
        });
    }
  };

  // POST /uploads/{id}/complete until the image exists (200, or 202 with image_id). A file
  // stays remembered while its image is verified: added again after a reload, it is found.
  const complete = async (file, signal) => {
    const st = stateOf(file);
    const id = st.session.upload_session_id;
    const body = st.sha256 ? { sha256: st.sha256 } : undefined;
    for (let i = 0; ; i++) {
      const r = await api('POST', `/uploads/${id}/complete`, body, { signal });
      if (r.status === 200) {
        memory.forgetSession(id);
        const { image_id, deduplicated, sha256: hash } = r.body;
        report(file, { image_id, status: 'verified', deduplicated: !!deduplicated, sha256: hash });
        return r.body;
      }
      if (r.body?.image_id) {
        follow(file, id, r.body);
        return r.body;
      }
      if (i >= 120) throw new Error(`the upload is still ${r.body?.status || 'being completed'}`);
      // another request is completing it
      await sleep(1000 * (Number(r.headers.get('Retry-After')) || 1), signal);
    }
  };

  // Opens a session for the file, or takes the one it has when that is still of use.
  const prepare = async (file, signal) => {
    const st = stateOf(file);
    const known = st.session?.upload_session_id || memory.recall(file)?.id;
    if (known) {
      const s = await getSession(known, signal);
      const hash = st.sha256 || memory.recall(file)?.sha256;
      if (s && s.status === OPEN && s.file_size === file.size) {
        adopt(file, s, hash);
        return;
      }
      if (s && ['completing', 'verifying', 'completed'].includes(s.status)) {
        adopt(file, s, hash);
        const r = await complete(file, signal); // the same image again, no bytes
        markUploaded(file, r);
        return;
      }
      memory.forget(file); // gone, aborted, expired or failed: start over
      Object.assign(st, { session: null, sha256: s?.status === 'failed' ? null : st.sha256 });
    }
    if (!st.sha256) {
      const progress = (value) =>
        uppy.emit('preprocess-progress', uppy.getFile(file.id) || file, {
          mode: 'determinate',
          message: 'Hashing (SHA-256)',
          value,
        });
      st.sha256 = await sha256(file.data, progress, signal);
    }
    const { body } = await api(
      'POST',
      '/uploads',
      { file_name: file.name, file_size: file.size, mime_type: file.type, sha256: st.sha256 },
      { headers: { 'Idempotency-Key': randomKey() }, signal },
    );
    memory.remember(file, body, st.sha256);
    adopt(file, body, st.sha256);
    if (!body.dedup_challenge) return;
    uppy.emit('preprocess-progress', uppy.getFile(file.id), {
      mode: 'indeterminate',
      message: 'Looking for a stored copy',
    });
    const answer = await proof(file.data, body.dedup_challenge, signal);
    try {
      const r = await api(
        'POST',
        `/uploads/${body.upload_session_id}/proof`,
        { proof: answer },
        { signal },
      );
      memory.forget(file);
      report(file, {
        image_id: r.body.image_id,
        status: 'verified',
        deduplicated: true,
        sha256: r.body.sha256,
      });
      markUploaded(file, r.body);
    } catch (e) {
      // refused (or no challenge left): the file is uploaded
      if (!(e instanceof ApiError) || (e.status !== 403 && e.status !== 409)) throw e;
    }
  };

  const preprocess = async (fileIDs) => {
    for (const id of fileIDs) {
      const file = uppy.getFile(id);
      if (!file || file.progress.uploadComplete) continue;
      const ctl = new AbortController();
      controllers.set(id, ctl);
      try {
        await prepare(file, ctl.signal);
      } catch (err) {
        if (uppy.getFile(id) && !ctl.signal.aborted)
          uppy.emit('upload-error', uppy.getFile(id), err);
      } finally {
        controllers.delete(id);
        if (uppy.getFile(id)) uppy.emit('preprocess-complete', uppy.getFile(id));
      }
    }
  };

  // A one-chunk file is completed as soon as its PUT is done (not after the whole batch).
  const completeOne = (f) => {
    const st = stateOf(f);
    st.completing ??= (async () => {
      uppy.emit('postprocess-progress', f, { mode: 'indeterminate', message: 'Completing' });
      try {
        const r = await complete(f);
        uppy.setFileState(f.id, { uploadURL: link(r.image_id) });
      } catch (err) {
        if (uppy.getFile(f.id)) uppy.emit('upload-error', uppy.getFile(f.id), err);
      } finally {
        st.completing = null;
      }
      if (uppy.getFile(f.id)) uppy.emit('postprocess-complete', uppy.getFile(f.id));
    })();
    return st.completing;
  };
  const needsComplete = (f) =>
    f && !f.error && f.progress.uploadComplete && stateOf(f).session && !stateOf(f).result;
  uppy.on('upload-success', (f) => {
    const file = uppy.getFile(f.id);
    if (needsComplete(file)) completeOne(file);
    else if (file?.progress.postprocess) uppy.emit('postprocess-complete', file); // done already
  });
  const postprocess = async (fileIDs) => {
    const files = fileIDs.map((id) => uppy.getFile(id)).filter(needsComplete);
    await Promise.all(files.map(completeOne));
  };

  const stop = (file) => controllers.get(file.id)?.abort();
  uppy.on('file-removed', (file) => {
    stop(file);
    const s = stateOf(file).session;
    // a removed file's session is aborted by the uploader once it has started; not before
    if (s && !file.progress.uploadStarted && !stateOf(file).result)
      api('DELETE', `/uploads/${s.upload_session_id}`).catch(() => {});
    if (s) memory.forgetSession(s.upload_session_id);
  });

  uppy.addPreProcessor(preprocess);
  uppy.addPostProcessor(postprocess);
  uppy.use(AwsS3, {
    limit: PARALLEL,
    retryDelays: RETRY_DELAYS,
    shouldUseMultipart: (file) => sessionOf(file).chunk_count > 1,
    getChunkSize: (data) => sessionOf(data).chunk_size, // Uppy must cut the server's chunks
    createMultipartUpload: (file) => {
      const id = sessionOf(file).upload_session_id;
      return { key: id, uploadId: id };
    },
    signPart: async (file, { uploadId, partNumber, signal }) => {
      const { body } = await api(
        'POST',
        `/uploads/${uploadId}/chunks/urls`,
        { chunk_numbers: [partNumber - 1] },
        { signal },
      );
      return { method: 'PUT', url: body.urls[0].url, expires: body.expires_in };
    },
    listParts: async (file, { uploadId, signal }) => {
      const s = (await api('GET', `/uploads/${uploadId}`, undefined, { signal })).body;
      if (s.status !== OPEN) throw new Error(`the upload session is ${s.status}`);
      const size = (n) => (n < s.chunk_count - 1 ? s.chunk_size : s.file_size - n * s.chunk_size);
      // the server lists the parts itself at complete: the ETag is not needed
      return s.uploaded_chunks.map((n) => ({ PartNumber: n + 1, Size: size(n), ETag: '"x"' }));
    },
    completeMultipartUpload: async (file, { signal }) => {
      const r = await complete(uppy.getFile(file.id) || file, signal);
      return { ...r, location: link(r.image_id) };
    },
    abortMultipartUpload: async (file, { uploadId }) => {
      memory.forgetSession(uploadId);
      try {
        await api('DELETE', `/uploads/${uploadId}`);
      } catch (e) {
        if (!(e instanceof ApiError) || ![404, 409].includes(e.status)) throw e;
      }
    },
    getUploadParameters: async (file, { signal }) => {
      const id = sessionOf(file).upload_session_id;
      const { body } = await api(
        'POST',
        `/uploads/${id}/chunks/urls`,
        { chunk_numbers: [0] },
        { signal },
      );
      return { method: 'PUT', url: body.urls[0].url, headers: {} };
    },
  });
}
