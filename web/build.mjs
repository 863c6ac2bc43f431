// Builds the browser pages into web/dist (not committed): one bundle per page, its CSS,
// and the HTML. `make web` runs it; the API serves web/dist at /app/.
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const out = join(here, 'dist');
const pages = readdirSync(src).filter((f) => f.endsWith('.html'));

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: pages.map((p) => join(src, p.replace(/\.html$/, '.js'))),
  outdir: out,
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  logLevel: 'warning',
});
for (const f of readdirSync(src).filter((f) => /\.(html|svg|ico)$/.test(f)))
  cpSync(join(src, f), join(out, f));
