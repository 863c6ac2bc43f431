// The grid of one view (photos, shared, trash): its records, in the API's order (newest
// first), one tile each, and each tile's thumbnail, asked for once the tile nears the screen.
import { ago, el, fmtBytes } from './format.js';
import { icon } from './icons.js';
import { cachedUrl, forgetUrl, variantUrl } from './urls.js';

export const THUMB = 'thumbnail_small';

// What a tile shows while it has no picture (data-thumb on the tile).
const WAITING = {
  loading: ['image', ''],
  pending: ['clock', 'Making thumbnail…'],
  verifying: ['clock', 'Verifying…'],
  failed: ['alert', 'No preview'],
  error: ['alert', 'Not loaded'],
  none: ['image', ''],
};

export class Grid {
  constructor(ul, { onOpen, onRestore, onChange }) {
    this.ul = ul;
    this.onOpen = onOpen;
    this.onRestore = onRestore;
    this.onChange = onChange;
    this.items = new Map(); // image_id -> record
    this.mode = 'photos';
    this.complete = false; // every page is loaded
    this.seen = new IntersectionObserver((es) => this.nearScreen(es), { rootMargin: '400px' });
    ul.addEventListener('click', (ev) => this.click(ev));
  }

  clear(mode) {
    this.mode = mode;
    this.items.clear();
    this.complete = false;
    this.seen.disconnect();
    this.ul.replaceChildren();
    this.ul.dataset.mode = mode;
    this.onChange();
  }

  get(id) {
    return this.items.get(id);
  }

  tile(id) {
    return this.ul.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  }

  count() {
    return this.items.size;
  }

  // Adds or refreshes a record. `live`: it came from the change stream (animated in; left out
  // when it sorts below the last loaded page, which will bring it).
  upsert(rec, { live = false } = {}) {
    const id = rec.image_id;
    const old = this.items.get(id);
    const li = old && this.tile(id);
    if (old && li) {
      const merged = { ...old, ...rec };
      this.items.set(id, merged);
      if (merged.name !== old.name) forgetUrl(id, 'original'); // its signed URL names the file
      this.caption(li, merged);
      const shown = li.querySelector('img').getAttribute('src') && merged.status === 'active';
      if (li._near && !shown && thumbChanged(old, merged))
        this.loadThumb(li, becameReady(old, merged));
      return;
    }
    let last = this.ul.lastElementChild;
    while (last && !last.dataset.id) last = last.previousElementSibling; // skip a leaving tile
    if (live && !this.complete && last && older(rec, this.items.get(last.dataset.id))) return;
    this.items.set(id, rec);
    const t = this.makeTile(rec);
    if (live) {
      t.classList.add('is-new');
      this.place(t, rec);
    } else {
      this.ul.append(t); // a page: the API's order, after everything loaded so far
    }
    this.seen.observe(t);
    this.onChange();
  }

  remove(id) {
    const li = this.tile(id);
    if (!this.items.delete(id) || !li) return false;
    this.seen.unobserve(li);
    li.classList.add('is-leaving');
    li.removeAttribute('data-id'); // gone for lookups and for the tests at once
    setTimeout(() => li.remove(), 180);
    this.onChange();
    return true;
  }

  // The neighbouring image in grid order (dir -1 or 1), for the viewer's previous/next.
  neighbor(id, dir) {
    const li = this.tile(id);
    let n = li && (dir < 0 ? li.previousElementSibling : li.nextElementSibling);
    while (n && !n.dataset.id) n = dir < 0 ? n.previousElementSibling : n.nextElementSibling;
    return n ? n.dataset.id : null;
  }

  // A live arrival goes before the first tile that is not newer (an upload: the top).
  place(t, rec) {
    let before = this.ul.firstElementChild;
    while (before && (!before.dataset.id || older(rec, this.items.get(before.dataset.id))))
      before = before.nextElementSibling;
    this.ul.insertBefore(t, before);
  }

  makeTile(rec) {
    const trash = this.mode === 'trash';
    const li = el('li', { class: 'tile', 'data-id': rec.image_id, 'data-thumb': 'loading' });
    // a trashed image is not opened: its tile is no button
    const open = el(trash ? 'div' : 'button', { class: 'tile-open' });
    if (!trash) open.type = 'button';
    const ph = el('span', { class: 'ph', 'aria-hidden': 'true' }, icon('image'));
    ph.append(el('span', { class: 'ph-text' }));
    const img = el('img', { alt: '', decoding: 'async', draggable: 'false' });
    open.append(ph, img);
    img.addEventListener('load', () => this.setThumb(li, 'ready'));
    img.addEventListener('error', () => this.thumbError(li));
    const cap = el('div', { class: 'tile-cap' });
    cap.append(el('span', { class: 'tile-name' }), el('span', { class: 'tile-sub' }));
    li.append(open, cap);
    if (trash) {
      const b = el('button', { type: 'button', class: 'btn small tile-restore' });
      b.append(icon('restore'), 'Restore');
      li.append(b);
    }
    this.caption(li, rec);
    return li;
  }

  caption(li, rec) {
    const sub =
      this.mode === 'trash'
        ? 'Deleted ' + ago(rec.updated_at)
        : this.mode === 'shared'
          ? 'From ' + rec.owner_id
          : fmtBytes(rec.size) + ' · ' + ago(rec.created_at);
    li.querySelector('.tile-name').textContent = rec.name;
    li.querySelector('.tile-sub').textContent = sub;
    li.querySelector('.tile-open').setAttribute('aria-label', `${rec.name}, ${sub}`);
    li.title = rec.name;
    const r = li.querySelector('.tile-restore');
    if (r) r.setAttribute('aria-label', 'Restore ' + rec.name);
  }

  setThumb(li, state) {
    li.dataset.thumb = state;
    const [ic, text] = WAITING[state] || WAITING.loading;
    const ph = li.querySelector('.ph');
    ph.firstElementChild.replaceWith(icon(ic));
    ph.querySelector('.ph-text').textContent = text;
  }

  nearScreen(entries) {
    for (const e of entries) {
      if (!e.isIntersecting || e.target._near) continue;
      e.target._near = true;
      this.loadThumb(e.target);
    }
  }

  // Shows the tile's thumbnail, or why there is none yet. A later call wins over an earlier
  // one still waiting for its answer. `fresh`: the variant just became ready.
  async loadThumb(li, fresh = false) {
    const id = li.dataset.id;
    const rec = id && this.items.get(id);
    if (!rec) return;
    const seq = (li._seq = (li._seq || 0) + 1);
    if (this.mode === 'trash') {
      // a deleted image's variants are hidden; a URL signed before the delete still works
      const url = cachedUrl(id, THUMB);
      if (url) this.show(li, url);
      else this.setThumb(li, 'none');
      return;
    }
    const v = rec.variants && rec.variants[THUMB];
    if (rec.status === 'verifying') return this.setThumb(li, 'verifying');
    if (rec.status === 'failed' || v === 'failed') return this.setThumb(li, 'failed');
    if (v === 'pending') return this.setThumb(li, 'pending');
    if (li.dataset.thumb !== 'ready') this.setThumb(li, 'loading');
    let r;
    try {
      r = await variantUrl(id, THUMB, { fresh });
    } catch {
      r = { state: 'error' };
    }
    if (li._seq !== seq || li.dataset.id !== id) return;
    if (r.state === 'ready') this.show(li, r.url);
    else if (r.state === 'gone') this.remove(id);
    else this.setThumb(li, r.state);
    if (r.state === 'error' && (li._retries = (li._retries || 0) + 1) <= 3)
      setTimeout(() => this.loadThumb(li), 3000 * li._retries);
  }

  show(li, url) {
    const img = li.querySelector('img');
    if (img.getAttribute('src') === url) return;
    img.src = url;
  }

  // A cached URL that no longer loads (expired, say) is asked for again, once.
  thumbError(li) {
    const id = li.dataset.id;
    if (!id) return;
    forgetUrl(id, THUMB);
    if (this.mode === 'trash') return this.setThumb(li, 'none');
    if (li._reloaded) return this.setThumb(li, 'error');
    li._reloaded = true;
    this.loadThumb(li, true);
  }

  click(ev) {
    const li = ev.target.closest('li.tile');
    if (!li || !li.dataset.id) return;
    if (ev.target.closest('.tile-restore')) this.onRestore(li.dataset.id);
    else if (ev.target.closest('button.tile-open')) this.onOpen(li.dataset.id);
  }
}

// created_at has whole seconds: a tie is not "older"
function older(a, b) {
  return Date.parse(a.created_at) < Date.parse(b.created_at);
}

function thumbChanged(a, b) {
  return a.status !== b.status || (a.variants || {})[THUMB] !== (b.variants || {})[THUMB];
}

function becameReady(a, b) {
  return (b.variants || {})[THUMB] === 'ready' && (a.variants || {})[THUMB] !== 'ready';
}
