// Builds Parley's front end into dist/ (or the folder given as the first argument), which the .NET build embeds in the
// server (src/Parley.Server/Parley.Server.csproj, target WebBuild; docs/web.md):
//   dist/assets/<entry>-<hash>.js|.css   bundles with content hashes in their names: served as immutable
//   dist/<page>/index.html               each page, its asset references rewritten to the hashed names: served no-cache
//   dist/guest/parley-guest.js           the guest library under a stable name, for customers' sites (no-cache)
// A page is a folder with an index.html and a main.js entry; the HTML names its assets as %main.js% and %main.css%.
import { build } from 'esbuild';
import { mkdir, readFile, readdir, rm, writeFile, copyFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(root, 'dist'));
const pages = [];
for (const entry of await readdir(root, { withFileTypes: true })) {
  if (!entry.isDirectory() || entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
  const dir = path.join(root, entry.name);
  if (await exists(path.join(dir, 'index.html')) && await exists(path.join(dir, 'main.js'))) pages.push(entry.name);
}

// A clean folder: a stale hashed file must not ride along into the server.
await rm(out, { recursive: true, force: true });
await mkdir(path.join(out, 'assets'), { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: Object.fromEntries(pages.map((p) => [p, `${p}/main.js`])),
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  // No source maps (they would triple what the server carries); licence comments stay, at the end of each bundle.
  legalComments: 'eof',
  outdir: path.join(out, 'assets'),
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});

// Each page's entry output (and its CSS bundle), by entry point.
const outputs = {};
for (const [file, info] of Object.entries(result.metafile.outputs)) {
  if (!info.entryPoint) continue;
  const page = info.entryPoint.split('/')[0];
  outputs[page] = { js: '/assets/' + path.basename(file), css: info.cssBundle ? '/assets/' + path.basename(info.cssBundle) : null };
}
for (const page of pages) {
  const html = await readFile(path.join(root, page, 'index.html'), 'utf8');
  const { js, css } = outputs[page];
  const rendered = html.replace(/%main\.js%/g, js).replace(/%main\.css%/g, () => {
    if (!css) throw new Error(`${page}/index.html names %main.css% but ${page}/main.js imports no CSS`);
    return css;
  });
  if (/%[\w.]+%/.test(rendered)) throw new Error(`${page}/index.html: unknown placeholder ${rendered.match(/%[\w.]+%/)[0]}`);
  await mkdir(path.join(out, page), { recursive: true });
  await writeFile(path.join(out, page, 'index.html'), rendered);
}
// The guest library on its own, unbundled (it imports nothing), for <script type="module"> on a customer's site.
await mkdir(path.join(out, 'guest'), { recursive: true });
await copyFile(path.join(root, 'guest', 'parley-guest.js'), path.join(out, 'guest', 'parley-guest.js'));
console.log(`web: built ${pages.join(', ')} into ${path.relative(process.cwd(), out) || '.'}`);

async function exists(file) {
  try { await stat(file); return true; } catch { return false; }
}
