// The gallery page: the caller's images (or those shared with them, or the trash) as a grid
// of thumbnails, paged by the API's cursors as the user scrolls, and kept current by the
// change stream: uploads from any device appear, deletions vanish, thumbnails fill in as the
// worker makes them, renames show.
//
// No change is missed between the list and the stream: the stream is opened first ("from
// now"), the list is loaded once its first event has arrived, and the changes that arrive
// meanwhile are held and applied on top of the list (applying one twice is harmless).
import './gallery.css';
import { call, forgetToken, liveStream, setToken, token, whoami } from './lib/api.js';
import { el } from './gallery/format.js';
import { Grid } from './gallery/grid.js';
import { fillIcons } from './gallery/icons.js';
import { Viewer, explain } from './gallery/viewer.js';

const STREAM_WAIT = 5000; // ms the list waits for the stream before loading anyway

const VIEWS = {
  photos: {
    src: '/images',
    label: 'Photos',
    count: (n, more) => `${n}${more ? '+' : ''} photo${n === 1 && !more ? '' : 's'}`,
    empty: [
      'No photos yet',
      'Upload some from this browser or with pixctl: they appear here as they arrive.',
    ],
    // a change puts an image in this view when this says so, and takes it out otherwise
    holds: (r) => r.owner_id === state.me && (r.status === 'active' || r.status === 'verifying'),
  },
  shared: {
    src: '/shared',
    label: 'Shared with me',
    count: (n, more) => `${n}${more ? '+' : ''} shared with you`,
    empty: [
      'Nothing shared with you yet',
      'When someone shares a photo with you, it shows up here.',
    ],
    holds: (r) => r.owner_id !== state.me && r.status === 'active',
  },
  trash: {
    src: '/images?status=deleted',
    label: 'Trash',
    count: (n, more) => `${n}${more ? '+' : ''} in the trash`,
    empty: ['The trash is empty', 'Deleted photos wait here until the retention window ends.'],
    holds: () => false, // a deleted image's sync entry carries only its id: see trashed()
  },
};

const state = {
  me: null,
  view: 'photos',
  next: null, // the next page's cursor
  loading: false,
  gen: 0, // bumped by each view switch: answers for an older view are dropped
  ready: false, // the view's first page is in: changes apply at once, else they are held
  held: [],
  deleting: new Set(), // deleted here: the stream's echo is not news
  listedAt: 0, // when the view's first page was asked for
  nowAt: Infinity, // when the stream last started from "now": a list asked for before is stale
  stream: null,
};
const $ = (s) => document.querySelector(s);
let grid;
let viewer;

async function boot() {
  fillIcons();
  const t = await token();
  keepApiHash();
  if (!t) return signin('');
  state.me = await whoami();
  showUser();
  $('#app').hidden = false;
  grid = new Grid($('#grid'), {
    onOpen: (id) => viewer.open(id),
    onRestore: restore,
    onChange: summary,
  });
  viewer = new Viewer($('#viewer'), { grid, me: state.me, toast, onDelete: trash });
  for (const b of document.querySelectorAll('[data-view]'))
    b.addEventListener('click', () => b.dataset.view !== state.view && show(b.dataset.view));
  $('#list-error button').addEventListener('click', () =>
    state.ready ? loadPage() : show(state.view),
  );
  new IntersectionObserver((es) => es.some((e) => e.isIntersecting) && loadPage(), {
    rootMargin: '800px',
  }).observe($('#sentinel'));
  await startLive();
  await show('photos');
  await openLinked();
}

// `#image=ID` (the uploader's result links): that image's viewer, once the list is in.
async function openLinked() {
  const id = new URLSearchParams(location.hash.slice(1)).get('image');
  if (!id) return;
  if (!grid.get(id)) {
    try {
      const { body } = await call('GET', '/images/' + encodeURIComponent(id) + '/metadata');
      grid.upsert(body);
    } catch (e) {
      return toast(explain(e, 'That image cannot be shown'));
    }
  }
  viewer.open(id);
}

// Opens the stream; resolves on its first event (the cursor "now"), or after STREAM_WAIT.
function startLive() {
  return new Promise((resolve) => {
    let fresh = true; // the next event is the first of a stream opened from "now"
    setTimeout(resolve, STREAM_WAIT); // the list goes first; reloaded once the stream is up
    state.stream = liveStream(
      (d) => {
        if (fresh) {
          fresh = false;
          state.nowAt = performance.now();
          resolve();
          if (state.ready && state.listedAt < state.nowAt) return show(state.view);
        }
        if (!state.ready) state.held.push(d);
        else apply(d);
      },
      (s) => {
        if (s === 'resync') fresh = true; // the stream lost its place: it starts over from now
        liveState(s);
      },
    );
  });
}

function liveState(s) {
  const live = $('#live');
  live.dataset.state = s;
  live.querySelector('.live-label').textContent =
    { live: 'Live', reconnecting: 'Reconnecting…', resync: 'Catching up…' }[s] || s;
  live.title =
    s === 'live'
      ? 'Changes from every device show up here as they happen'
      : 'Reconnecting to live updates';
}

function apply(d) {
  const v = VIEWS[state.view];
  for (const r of [...d.added, ...d.updated]) {
    if (v.holds(r)) {
      grid.upsert(r, { live: true });
      if (grid.get(r.image_id)) viewer.changed(grid.get(r.image_id));
    } else if (grid.remove(r.image_id)) {
      if (!state.deleting.has(r.image_id)) viewer.gone(r.image_id);
      if (r.status === 'failed') toast(`“${r.name}” failed verification and was not stored.`);
    }
  }
  const gone = d.deleted.map((x) => x.image_id);
  if (state.view === 'trash') {
    if (gone.some((id) => !grid.get(id))) trashed();
    return;
  }
  for (const id of gone) {
    grid.remove(id);
    if (!state.deleting.has(id)) viewer.gone(id);
  }
}

// Images just deleted (anywhere) join the trash view: its first page, merged in.
let trashTimer = null;
function trashed() {
  clearTimeout(trashTimer);
  trashTimer = setTimeout(async () => {
    const gen = state.gen;
    try {
      const { body } = await call('GET', '/images?status=deleted');
      if (gen === state.gen) for (const r of body.images) grid.upsert(r, { live: true });
    } catch {
      /* the next visit loads it */
    }
  }, 300);
}

async function show(view) {
  const gen = ++state.gen;
  state.view = view;
  state.ready = false;
  state.next = null;
  viewer.close();
  for (const b of document.querySelectorAll('[data-view]'))
    b.setAttribute('aria-pressed', String(b.dataset.view === view));
  $('#grid').setAttribute('aria-label', VIEWS[view].label);
  $('#view-note').hidden = view !== 'trash';
  document.title = `${VIEWS[view].label} · pixplane`;
  grid.clear(view);
  state.listedAt = performance.now();
  await loadPage(true);
  if (gen !== state.gen) return; // another view was asked for meanwhile
  if (state.listedAt < state.nowAt && state.nowAt !== Infinity) return show(view);
  state.ready = true;
  const held = state.held;
  state.held = [];
  held.forEach(apply);
  summary();
}

async function loadPage(first = false) {
  if (!first && (state.loading || !state.ready || grid.complete)) return;
  const gen = state.gen;
  state.loading = true;
  $('#more').hidden = first;
  $('#list-error').hidden = true;
  summary();
  try {
    const src = VIEWS[state.view].src;
    const sep = src.includes('?') ? '&' : '?';
    const q = state.next ? sep + 'cursor=' + encodeURIComponent(state.next) : '';
    const { body } = await call('GET', src + q); // pages of the API's size (PIXPLANE_PAGE_SIZE)
    if (gen !== state.gen) return;
    state.next = body.next_cursor;
    grid.complete = !body.next_cursor;
    for (const r of body.images) grid.upsert(r);
  } catch (e) {
    if (gen !== state.gen) return;
    if (e.status === 401)
      return signin('That token was refused (expired, or for another server). Paste a fresh one.');
    const err = $('#list-error');
    err.querySelector('.list-error-text').textContent = explain(e, 'Could not load the list');
    err.hidden = false;
  } finally {
    if (gen === state.gen) {
      state.loading = false;
      $('#more').hidden = true;
      summary();
    }
  }
  // a page that does not fill the screen: the sentinel is still in view, ask for the next
  if (gen === state.gen && !grid.complete && $('#list-error').hidden)
    requestAnimationFrame(() => {
      if ($('#sentinel').getBoundingClientRect().top < innerHeight + 800) loadPage();
    });
}

function summary() {
  const n = grid.count();
  const v = VIEWS[state.view];
  const settled = !state.loading && grid.complete;
  $('#count').textContent = n ? v.count(n, !grid.complete) : '';
  const empty = $('#empty');
  empty.hidden = !(settled && n === 0);
  empty.querySelector('.empty-title').textContent = v.empty[0];
  empty.querySelector('.empty-text').textContent = v.empty[1];
  empty.querySelector('.empty-action').hidden = state.view !== 'photos';
}

// Soft delete, with an undo.
async function trash(id) {
  const rec = grid.get(id);
  state.deleting.add(id);
  try {
    await call('DELETE', `/images/${id}`);
  } catch (e) {
    state.deleting.delete(id);
    toast(explain(e, 'Could not delete'));
    return false;
  }
  grid.remove(id);
  toast(`Moved “${rec.name}” to the trash.`, { label: 'Undo', run: () => restore(id, rec) });
  return true;
}

async function restore(id, rec = grid.get(id)) {
  state.deleting.delete(id);
  try {
    await call('POST', `/images/${id}/restore`);
  } catch (e) {
    toast(explain(e, 'Could not restore'));
    return;
  }
  const back = rec && { ...rec, status: 'active' };
  if (state.view === 'trash') grid.remove(id);
  else if (back && VIEWS[state.view].holds(back)) grid.upsert(back, { live: true });
  toast(`Restored “${rec ? rec.name : 'the photo'}”.`);
}

function toast(text, action) {
  const t = el('div', { class: 'toast' }, el('span', { text })); // #toasts is a live region
  const done = () => {
    t.classList.add('is-leaving');
    setTimeout(() => t.remove(), 200);
  };
  if (action) {
    const b = el('button', { type: 'button', class: 'toast-action', text: action.label });
    b.addEventListener('click', () => {
      action.run();
      done();
    });
    t.append(b);
  }
  $('#toasts').append(t);
  setTimeout(done, action ? 8000 : 4500);
}

function showUser() {
  const who = $('#who');
  who.hidden = false;
  who.querySelector('.who-name').textContent = state.me || 'signed in';
  who.querySelector('.avatar').textContent = (state.me || '?').slice(0, 1).toUpperCase();
  $('#signout').addEventListener('click', () => {
    forgetToken();
    location.reload();
  });
}

function signin(error) {
  if (state.stream) state.stream.close();
  $('#app').hidden = true;
  $('#live').hidden = true;
  $('#signin').hidden = false;
  $('#signin-error').textContent = error;
  $('#signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken($('#signin-token').value);
    location.reload();
  });
  $('#signin-token').focus();
}

// Links between the pages keep `#api=` (an API on another origin), not the token.
function keepApiHash() {
  const api = new URLSearchParams(location.hash.slice(1)).get('api');
  if (!api) return;
  for (const a of document.querySelectorAll('a[data-keep-hash]'))
    a.href = a.getAttribute('href') + '#' + new URLSearchParams({ api });
}

boot().catch((e) => {
  console.error(e);
  toast('Something went wrong: ' + e.message);
});
