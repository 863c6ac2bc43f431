// What survives a page reload: for each file being uploaded, its fingerprint (user, name,
// size, last modified) -> the upload session and the file's sha256, in localStorage. When the
// same file is added again, the session is resumed (only the missing chunks are sent) and
// the file is not hashed again; the server still checks the hash at complete.
const KEY = 'pixplane.uploads';
let owner = '';

export function setOwner(user) {
  owner = user || '';
}

function load() {
  let all = {};
  try {
    all = JSON.parse(localStorage.getItem(KEY)) || {};
  } catch {
    all = {};
  }
  const now = Date.now();
  for (const [k, v] of Object.entries(all)) if (!(Date.parse(v.expires) > now)) delete all[k];
  return all;
}

function save(all) {
  try {
    localStorage.setItem(KEY, JSON.stringify(all));
  } catch {
    // storage full or disabled: resuming after a reload is lost, nothing else
  }
}

function fingerprint(file) {
  return JSON.stringify([owner, file.name, file.size, file.data?.lastModified ?? 0]);
}

export function recall(file) {
  return load()[fingerprint(file)] || null;
}

export function remember(file, session, sha256) {
  const all = load();
  all[fingerprint(file)] = {
    id: session.upload_session_id,
    sha256,
    name: file.name,
    size: file.size,
    expires: session.expires_at,
  };
  save(all);
}

export function forget(file) {
  const all = load();
  delete all[fingerprint(file)];
  save(all);
}

export function forgetSession(id) {
  const all = load();
  for (const [k, v] of Object.entries(all)) if (v.id === id) delete all[k];
  save(all);
}

// This user's unfinished uploads: [{id, name, size}].
export function pending() {
  return Object.entries(load())
    .filter(([k]) => JSON.parse(k)[0] === owner)
    .map(([, v]) => v);
}
