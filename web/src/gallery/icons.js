// Line icons (24 px grid, drawn with the current text colour), built as SVG elements so the
// page needs no inline markup from strings.
const PATHS = {
  close: 'M6 6l12 12M18 6L6 18',
  prev: 'M15 5l-7 7 7 7',
  next: 'M9 5l7 7-7 7',
  download: 'M12 4v11M7 10l5 5 5-5M5 19h14',
  rename: 'M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4',
  trash: 'M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6',
  restore: 'M4 12a8 8 0 1 0 2.3-5.6M4 4v5h5',
  share:
    'M16 8a3 3 0 1 0 0-.01M6 15a3 3 0 1 0 0-.01M16 22a3 3 0 1 0 0-.01M8.6 13.5l4.8-3M8.6 16.5l4.8 3',
  image: 'M4 5h16v14H4zM4 16l5-5 4 4 2-2 5 5M15.5 9.5a1 1 0 1 0 0-.01',
  clock: 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM12 7v5l3 2',
  alert: 'M12 3l10 18H2L12 3zM12 10v5M12 18v.01',
  copy: 'M9 9h11v11H9zM5 15H4V4h11v1',
  check: 'M5 12l5 5 9-10',
  logout: 'M15 4h4v16h-4M10 8l-4 4 4 4M6 12h10',
  upload: 'M12 20V9M7 14l5-5 5 5M5 5h14',
  users: 'M9 11a4 4 0 1 0 0-.01M2 21c0-4 3-6 7-6s7 2 7 6M17 4a4 4 0 0 1 0 7M22 21c0-3-1.5-5-4-5.6',
  photos: 'M3 5h14v12H3zM7 21h14V9M3 14l4-4 3 3 2-2 5 5',
};

const NS = 'http://www.w3.org/2000/svg';

export function icon(name, cls = 'icon') {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const p = document.createElementNS(NS, 'path');
  p.setAttribute('d', PATHS[name]);
  svg.append(p);
  return svg;
}

// Fills every <span data-icon="NAME"> placeholder of the static HTML.
export function fillIcons(root = document) {
  for (const el of root.querySelectorAll('[data-icon]')) {
    el.replaceWith(icon(el.dataset.icon, ('icon ' + el.className).trim()));
  }
}
