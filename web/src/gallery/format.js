// Small display helpers.
export { fmtBytes } from '../lib/api.js';

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const STEPS = [
  [60, 'second'],
  [60, 'minute'],
  [24, 'hour'],
  [7, 'day'],
  [4.35, 'week'],
  [12, 'month'],
  [Infinity, 'year'],
];

// "2 minutes ago", "yesterday", ...
export function ago(iso) {
  let d = (Date.parse(iso) - Date.now()) / 1000;
  if (Math.abs(d) < 45) return 'just now';
  for (const [n, unit] of STEPS) {
    if (Math.abs(d) < n) return rtf.format(Math.round(d), unit);
    d /= n;
  }
  return '';
}

export function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...kids.filter((k) => k !== null && k !== undefined && k !== false));
  return e;
}
