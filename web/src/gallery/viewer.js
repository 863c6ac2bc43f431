// The open image: its preview (the small thumbnail, blurred, until the preview loads), its
// metadata, and the owner's actions (download, rename, delete, share).
import { ApiError, call } from '../lib/api.js';
import { el, fmtBytes, when } from './format.js';
import { THUMB } from './grid.js';
import { cachedUrl, variantUrl } from './urls.js';

const PREVIEW = 'preview';

export class Viewer {
  constructor(dialog, { grid, me, toast, onDelete }) {
    this.d = dialog;
    this.grid = grid;
    this.me = me;
    this.toast = toast;
    this.onDelete = onDelete;
    this.id = null;
    this.seq = 0;
    this.$ = (s) => dialog.querySelector(s);
    this.$('.v-close').addEventListener('click', () => this.close());
    this.$('.v-prev').addEventListener('click', () => this.step(-1));
    this.$('.v-next').addEventListener('click', () => this.step(1));
    this.$('.v-download').addEventListener('click', () => this.download());
    this.$('.v-rename-btn').addEventListener('click', () => this.renaming(true));
    this.$('.v-rename-cancel').addEventListener('click', () => this.renaming(false));
    this.$('#v-rename').addEventListener('submit', (ev) => this.rename(ev));
    this.$('.v-delete').addEventListener('click', () => this.remove());
    this.$('#v-share').addEventListener('submit', (ev) => this.share(ev));
    this.$('#v-img').addEventListener('load', () => this.d.classList.add('has-preview'));
    dialog.addEventListener('close', () => {
      this.id = null;
      this.d.querySelector('#v-img').removeAttribute('src');
    });
    dialog.addEventListener('keydown', (ev) => {
      if (ev.target.closest('input, textarea')) return;
      if (ev.key === 'ArrowLeft') this.step(-1);
      if (ev.key === 'ArrowRight') this.step(1);
    });
    this.$('#v-rename-input').addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape') return;
      ev.preventDefault(); // Escape leaves the rename, not the viewer
      this.renaming(false);
    });
    // a click beside the picture closes, as on the backdrop
    dialog.addEventListener('click', (ev) => {
      if (ev.target === dialog || ev.target.classList.contains('v-stage')) this.close();
    });
  }

  open(id) {
    const rec = this.grid.get(id);
    if (!rec) return;
    this.id = id;
    const seq = ++this.seq;
    this.d.classList.remove('has-preview');
    this.d.classList.toggle('is-owner', rec.owner_id === this.me);
    this.renaming(false);
    this.msg('');
    this.$('#v-share-msg').textContent = '';
    this.$('#v-share-input').value = '';
    this.$('[data-f="variants"]').textContent = '…';
    this.fill(rec);
    const thumb = cachedUrl(id, THUMB);
    const t = this.$('#v-thumb');
    if (thumb) t.src = thumb;
    else t.removeAttribute('src');
    const img = this.$('#v-img');
    img.removeAttribute('src');
    img.alt = rec.name;
    this.wait('Loading…');
    this.navState();
    if (!this.d.open) this.d.showModal();
    this.loadPreview(seq, false);
    this.loadMeta(seq);
  }

  close() {
    if (this.d.open) this.d.close();
  }

  step(dir) {
    const n = this.id && this.grid.neighbor(this.id, dir);
    if (n) this.open(n);
  }

  navState() {
    this.$('.v-prev').hidden = !this.grid.neighbor(this.id, -1);
    this.$('.v-next').hidden = !this.grid.neighbor(this.id, 1);
  }

  wait(text) {
    const w = this.$('#v-wait');
    w.textContent = text;
    w.hidden = !text;
  }

  msg(text, bad = false) {
    const m = this.$('.v-msg');
    m.textContent = text;
    m.classList.toggle('bad', bad);
  }

  async loadPreview(seq, fresh) {
    const rec = this.grid.get(this.id);
    if (rec && rec.status === 'verifying') return this.wait('Verifying the upload…');
    let r;
    try {
      r = await variantUrl(this.id, PREVIEW, { fresh });
    } catch (e) {
      r = { state: 'error', e };
    }
    if (seq !== this.seq) return;
    if (r.state === 'ready') {
      this.$('#v-img').src = r.url;
      this.wait('');
    } else if (r.state === 'pending') {
      this.wait('Making the preview…');
    } else if (r.state === 'failed') {
      this.wait('No preview for this file — download it to see it.');
    } else {
      this.wait(r.state === 'gone' ? 'This photo is no longer here.' : 'The preview did not load.');
    }
  }

  async loadMeta(seq) {
    try {
      const { body } = await call('GET', `/images/${this.id}/metadata`);
      if (seq === this.seq) this.fill(body);
    } catch {
      /* the grid's record is shown; the variants stay unknown */
    }
  }

  fill(m) {
    this.$('#v-title').textContent = m.name;
    this.$('.v-sub').textContent = `${fmtBytes(m.size)} · ${when(m.created_at)}`;
    const f = (k, v) => {
      this.$(`[data-f="${k}"]`).textContent = v;
    };
    f('size', `${fmtBytes(m.size)} (${m.size.toLocaleString()} bytes)`);
    f('mime_type', m.mime_type);
    f('created_at', when(m.created_at));
    f('status', m.status);
    f('visibility', m.visibility);
    f('owner_id', m.owner_id);
    f('sha256', m.sha256 || '— (not verified yet)');
    if (m.variants === undefined) return; // a list record: the metadata call brings them
    const chips = this.$('[data-f="variants"]');
    // the metadata has a list; a sync entry a map of type -> state
    const vs = Array.isArray(m.variants)
      ? m.variants.map((v) => [v.variant_type, v.status])
      : Object.entries(m.variants);
    const chip = ([type, st]) =>
      el('span', { class: 'chip ' + st, text: `${type.replace('_', ' ')} · ${st}` });
    chips.replaceChildren(...vs.map(chip));
    if (!vs.length) chips.textContent = '—';
  }

  // A live change to the open image (its record, already merged by the grid).
  changed(rec) {
    if (!this.d.open || rec.image_id !== this.id) return;
    this.fill(rec);
    if (!this.d.classList.contains('has-preview')) this.loadPreview(this.seq, true);
    this.navState();
  }

  gone(id) {
    if (this.id === id && this.d.open) {
      this.close();
      this.toast('That photo was deleted on another device.');
    }
  }

  renaming(on) {
    const f = this.$('#v-rename');
    const was = !f.hidden;
    f.hidden = !on;
    this.$('#v-title').hidden = on;
    if (was && !on) this.$('.v-rename-btn').focus();
    if (on) {
      const i = this.$('#v-rename-input');
      i.value = this.$('#v-title').textContent;
      i.focus();
      const dot = i.value.lastIndexOf('.');
      i.setSelectionRange(0, dot > 0 ? dot : i.value.length);
    }
  }

  async rename(ev) {
    ev.preventDefault();
    const id = this.id;
    const name = this.$('#v-rename-input').value.trim();
    if (!name) return;
    try {
      await call('PATCH', `/images/${id}`, { name });
      const rec = this.grid.get(id);
      if (rec) this.grid.upsert({ ...rec, name });
      if (this.id === id) {
        this.renaming(false);
        this.$('#v-title').textContent = name;
        this.$('#v-img').alt = name;
        this.msg('Renamed.');
      }
    } catch (e) {
      this.msg(explain(e, 'Could not rename'), true);
    }
  }

  async download() {
    const id = this.id;
    this.msg('Preparing the download…');
    try {
      const r = await variantUrl(id, 'original');
      if (r.state === 'pending') throw new Error('the upload is still being verified');
      if (r.state !== 'ready') throw new Error('not available');
      const a = el('a', { href: r.url, download: '' });
      document.body.append(a);
      a.click();
      a.remove();
      this.msg('Download started.');
    } catch (e) {
      this.msg(explain(e, 'Could not download'), true);
    }
  }

  async remove() {
    const id = this.id;
    const next = this.grid.neighbor(id, 1) || this.grid.neighbor(id, -1);
    if (await this.onDelete(id)) {
      if (next) this.open(next);
      else this.close();
    }
  }

  async share(ev) {
    ev.preventDefault();
    const input = this.$('#v-share-input');
    const out = this.$('#v-share-msg');
    const user = input.value.trim();
    const id = this.id;
    if (!user) return;
    out.classList.remove('bad');
    try {
      await call('POST', `/images/${id}/shares`, { user_id: user });
      const rec = this.grid.get(id); // sharing makes a private image "shared"
      const visibility = rec && rec.visibility === 'public' ? 'public' : 'shared';
      if (rec) this.grid.upsert({ ...rec, visibility });
      if (id !== this.id) return;
      out.textContent = `Shared with ${user}.`;
      input.value = '';
      this.$('[data-f="visibility"]').textContent = visibility;
    } catch (e) {
      out.textContent = explain(e, 'Could not share');
      out.classList.add('bad');
    }
  }
}

// A user-facing sentence for a failed action.
export function explain(e, what) {
  if (!(e instanceof ApiError)) return `${what}: ${e.message || 'network error'}.`;
  const why = {
    image_verifying: 'the upload is still being verified; try again in a moment',
    share_limit_reached: 'the sharing limit is reached',
    rate_limited: 'too many requests; wait a second',
    not_found: 'it no longer exists',
    forbidden: 'only the owner can do that',
  }[e.code];
  return `${what}: ${why || e.message}.`;
}
