// Previews for the Dashboard, in place of Uppy's thumbnail generator (which decodes the full
// image and scales it in steps on the main thread: seconds for a 25-megapixel photo, while
// the same thread hashes). createImageBitmap decodes off the main thread and scales in one
// step. Files over MAX get no preview: decoding one reads all of it into memory.
const MAX = 48 << 20;
const WIDTH = 280;

async function render(file) {
  const bmp = await createImageBitmap(file.data, { resizeWidth: WIDTH, resizeQuality: 'medium' });
  const c = document.createElement('canvas');
  c.width = bmp.width;
  c.height = bmp.height;
  c.getContext('2d').drawImage(bmp, 0, 0);
  bmp.close();
  const blob = await new Promise((resolve) => c.toBlob(resolve, 'image/jpeg', 0.8));
  return blob ? URL.createObjectURL(blob) : null;
}

export function installPreviews(uppy) {
  const queue = [];
  let busy = false;
  const run = async () => {
    busy = true;
    while (queue.length) {
      const f = uppy.getFile(queue.shift());
      if (!f) continue;
      const url = await render(f).catch(() => null);
      if (url && uppy.getFile(f.id)) {
        uppy.setFileState(f.id, { preview: url });
        uppy.emit('thumbnail:generated', uppy.getFile(f.id), url);
      } else if (url) {
        URL.revokeObjectURL(url);
      }
    }
    busy = false;
  };
  uppy.on('file-added', (f) => {
    if (!f.data || f.size > MAX || !/^image\//.test(f.type)) return;
    queue.push(f.id);
    if (!busy) run();
  });
  uppy.on('file-removed', (f) => {
    if (f.preview?.startsWith('blob:')) URL.revokeObjectURL(f.preview);
  });
}
