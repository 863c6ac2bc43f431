// The uploader page (/app/): Uppy's Dashboard over pixplane upload sessions.
//
// Uppy is pinned to 5 (@uppy/core 5.2.0, @uppy/dashboard 5.1.1, @uppy/aws-s3 5.1.0) on
// purpose: @uppy/aws-s3 6.0.0 removed the custom createMultipartUpload / signPart / listParts /
// completeMultipartUpload / abortMultipartUpload functions (only signRequest, getCredentials and
// Companion remain). pixplane needs them: the server plans the chunks, signs only its own
// session's parts, lists what storage holds for a resume, and verifies, deduplicates and
// commits at complete; a browser that signs raw S3 requests would skip all of that.
import Uppy from '@uppy/core';
import Dashboard from '@uppy/dashboard';
import '@uppy/core/css/style.min.css';
import '@uppy/dashboard/css/style.min.css';
import './index.css';
import { fillIcons } from './gallery/icons.js';
import { ApiError, call, fmtBytes, forgetToken, setToken, token, whoami } from './lib/api.js';
import * as memory from './upload/memory.js';
import { installPixplane } from './upload/pixplane.js';
import { installPreviews } from './upload/preview.js';

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  for (const c of children) if (c != null) e.append(c);
  return e;
}

// Links between the pages keep `#api=` (an API on another origin).
function pageLink(page, params = {}) {
  const h = new URLSearchParams(location.hash.slice(1));
  const q = new URLSearchParams();
  if (h.get('api')) q.set('api', h.get('api'));
  for (const [k, v] of Object.entries(params)) q.set(k, v);
  const s = q.toString();
  return page + (s ? '#' + s : '');
}

const galleryLink = (imageId) => pageLink('gallery.html', { image: imageId });

function showSignin(message) {
  $('app').hidden = true;
  $('who').hidden = true;
  $('signin').hidden = false;
  $('signin-error').hidden = !message;
  $('signin-error').textContent = message || '';
}

// ---- results: one row per finished file ----

const results = new Map(); // fileID -> {name, size, preview, r}

function renderResults() {
  const list = $('results');
  list.replaceChildren();
  for (const [fileID, { name, size, preview, r }] of [...results].reverse()) {
    const badges = [
      el('span', { className: 'badge ' + r.status, textContent: r.status }),
      r.deduplicated
        ? el('span', {
            className: 'badge dedup',
            textContent: 'deduplicated',
            title: 'Already stored: nothing was sent',
          })
        : null,
    ];
    const li = el(
      'li',
      { className: 'result' },
      el('div', { className: 'thumb' }, preview ? el('img', { src: preview, alt: '' }) : null),
      el(
        'div',
        { className: 'info' },
        el('div', { className: 'name', textContent: name, title: name }),
        el('div', { className: 'badges' }, ...badges),
        el(
          'div',
          { className: 'meta' },
          el('span', { textContent: fmtBytes(size) }),
          el('code', { className: 'id', textContent: r.image_id, title: 'image id' }),
        ),
        r.error ? el('div', { className: 'error', textContent: r.error }) : null,
      ),
      el('a', {
        className: 'open',
        href: galleryLink(r.image_id),
        target: '_blank', // this page keeps uploading
        rel: 'noopener',
        textContent: 'Open',
      }),
    );
    Object.assign(li.dataset, {
      fileId: fileID,
      imageId: r.image_id,
      status: r.status,
      deduplicated: !!r.deduplicated,
    });
    list.append(li);
  }
  $('results-count').textContent = results.size;
  $('results-empty').hidden = results.size > 0;
}

// ---- unfinished uploads left by an earlier visit ----

async function renderUnfinished() {
  const open = [];
  for (const p of memory.pending().slice(0, 20)) {
    try {
      const s = (await call('GET', `/uploads/${p.id}`)).body;
      if (s.status === 'uploading')
        open.push({ ...p, done: s.uploaded_chunks.length, total: s.chunk_count });
      else if (s.status !== 'verifying' && s.status !== 'completing') memory.forgetSession(p.id);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) memory.forgetSession(p.id);
    }
  }
  const list = $('unfinished-list');
  list.replaceChildren(
    ...open.map((p) => {
      const discard = el('button', { type: 'button', className: 'link', textContent: 'Discard' });
      discard.addEventListener('click', async () => {
        memory.forgetSession(p.id);
        await call('DELETE', `/uploads/${p.id}`).catch(() => {});
        renderUnfinished();
      });
      const li = el(
        'li',
        {},
        el('span', { className: 'name', textContent: p.name }),
        el('span', {
          className: 'sub',
          textContent: `${fmtBytes(p.size)} · ${p.done} of ${p.total} parts stored`,
        }),
        discard,
      );
      li.dataset.sessionId = p.id;
      return li;
    }),
  );
  $('unfinished').hidden = open.length === 0;
}

function dropUnfinished(sessionId) {
  const li = document.querySelector(`#unfinished-list li[data-session-id="${sessionId}"]`);
  if (li) li.remove();
  $('unfinished').hidden = $('unfinished-list').children.length === 0;
}

// ---- the uploader ----

function startUppy() {
  const uppy = new Uppy({
    autoProceed: true,
    restrictions: { allowedFileTypes: ['image/*'] },
  });
  uppy.use(Dashboard, {
    inline: true,
    target: '#dashboard',
    width: '100%',
    height: 400,
    theme: 'auto',
    note: 'Images only. Large files are fine: they are sent in parts and resume after a reload.',
    proudlyDisplayPoweredByUppy: false,
    hideUploadButton: true, // autoProceed: a file starts when added
    showLinkToFileUploadResult: true,
    showProgressDetails: true,
    fileManagerSelectionType: 'files',
    disableThumbnailGenerator: true,
  });
  installPreviews(uppy);
  installPixplane(uppy, { link: galleryLink });

  uppy.on('pixplane:result', (fileID, r) => {
    const f = uppy.getFile(fileID);
    const prev = results.get(fileID);
    results.set(fileID, {
      name: f?.name ?? prev?.name,
      size: f?.size ?? prev?.size,
      preview: f?.preview ?? prev?.preview,
      r,
    });
    if (f?.s3Multipart?.uploadId) dropUnfinished(f.s3Multipart.uploadId);
    renderResults();
  });
  uppy.on('thumbnail:generated', (file, preview) => {
    const x = results.get(file.id);
    if (x) {
      x.preview = preview;
      renderResults();
    }
  });
  uppy.on('upload-error', (file, err) => {
    if (err instanceof ApiError && err.status === 401) {
      forgetToken();
      showSignin('The token was refused (expired?). Paste a new one to continue.');
    }
  });
  // leaving stops the uploads (they resume when the same files are added again): ask first
  window.addEventListener('beforeunload', (ev) => {
    const busy = uppy
      .getFiles()
      .some(
        (f) =>
          !f.error && (f.progress.preprocess || (f.progress.uploadStarted && !f.progress.complete)),
      );
    if (busy) ev.preventDefault();
  });
  window.pixplaneUploader = { uppy }; // for integrators and the browser tests
  return uppy;
}

async function start() {
  const user = await whoami();
  memory.setOwner(user);
  $('user').textContent = user || 'signed in';
  $('avatar').textContent = (user || '?').slice(0, 1).toUpperCase();
  $('who').hidden = false;
  $('signin').hidden = true;
  $('app').hidden = false;
  startUppy();
  renderUnfinished();
}

async function boot() {
  fillIcons(); // the gallery's line icons
  $('nav-gallery').href = pageLink('gallery.html');
  $('nav-upload').href = pageLink('./');
  $('signout').addEventListener('click', () => {
    forgetToken();
    location.reload();
  });
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('signin-token').value.trim();
    if (t.split('.').length !== 3) {
      showSignin('That does not look like a JWT (three dot-separated parts).');
      return;
    }
    setToken(t);
    if (window.pixplaneUploader)
      location.reload(); // a new token for a running page
    else start();
  });
  window.addEventListener('hashchange', () => {
    if (/(^#|&)token=/.test(location.hash)) location.reload(); // a link with a new token
  });
  if (await token()) start();
  else showSignin();
}

boot();
