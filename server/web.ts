import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { BadInputError } from '../core/errors.ts';
import { ROOT } from '../core/root.ts';

const WEB_SRC = join(ROOT, 'web');
/** Where `npm run build` (also run by `npm ci`/`npm install`, as prepare) puts the web app. */
export const WEB_DIST = join(ROOT, 'dist', 'web');

/** One file the server sends, with its encodings made once. */
export interface WebFile {
  type: string;
  body: Buffer;
  br: Buffer | null;
  gzip: Buffer | null;
  /** Strong validator of the body (quoted, as the header carries it). */
  etag: string;
  /** Cached for a year (its name changes with its content) or revalidated on every load. */
  immutable: boolean;
}

export interface WebAssets {
  files: Map<string, WebFile>;
}

/**
 * Bundles the web app (web/main.ts and its modules, with OpenLayers, proj4 and their CSS) and its
 * service worker (web/sw.ts) with esbuild into `outDir`, with its index.html, manifest and icon, and
 * their brotli and gzip encodings at full strength: no CDN, every asset from this server. esbuild
 * loads only here.
 */
export async function bundleWeb(outDir: string = WEB_DIST): Promise<void> {
  const { build } = await import('esbuild');
  mkdirSync(outDir, { recursive: true });
  const common = {
    bundle: true,
    minify: true,
    sourcemap: false,
    target: 'es2020',
    outdir: outDir,
    logLevel: 'error' as const,
    legalComments: 'none' as const,
  };
  await build({ ...common, entryPoints: { app: join(WEB_SRC, 'main.ts') }, format: 'iife', loader: { '.css': 'css' } });
  await build({ ...common, entryPoints: { sw: join(WEB_SRC, 'sw.ts') }, format: 'iife' });
  for (const f of ['index.html', 'manifest.webmanifest', 'icon.svg']) copyFileSync(join(WEB_SRC, f), join(outDir, f));
  for (const f of ['app.js', 'app.css']) {
    if (!existsSync(join(outDir, f))) continue;
    const body = readFileSync(join(outDir, f));
    writeFileSync(join(outDir, `${f}.br`), brotli(body, 11));
    writeFileSync(join(outDir, `${f}.gz`), gzipSync(body, { level: 9 }));
  }
}

const brotli = (body: Buffer, quality: number) =>
  brotliCompressSync(body, {
    params: { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
  });
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * The built web app in `dir`, for serving; a clear error when it was never built. The bundle and its
 * CSS are served under names that carry their content's hash (/assets/app.1a2b3c4d5e6f.js), cached
 * for a year; the page, the manifest and the service worker are revalidated by ETag on every load,
 * and the page names the hashed files, so a new build reaches every phone on its next load.
 */
export function loadWebAssets(dir: string = WEB_DIST): WebAssets {
  if (!existsSync(join(dir, 'app.js')) || !existsSync(join(dir, 'index.html'))) {
    throw new BadInputError('web_not_built', `${dir}: the web app is not built; run \`npm run build\``, { dir });
  }
  const files = new Map<string, WebFile>();
  const add = (path: string, type: string, body: Buffer, immutable: boolean, encoded?: string) => {
    // text compressed once here (the build's files when it made them, else at a quick setting)
    const text = /^(text|application\/(javascript|json|manifest))|svg/.test(type) && body.length > 1024;
    const br = encoded && existsSync(`${encoded}.br`) ? readFileSync(`${encoded}.br`) : text ? brotli(body, 5) : null;
    const gzip = encoded && existsSync(`${encoded}.gz`) ? readFileSync(`${encoded}.gz`) : text ? gzipSync(body) : null;
    files.set(path, { type, body, br, gzip, etag: `"${sha(body).slice(0, 32)}"`, immutable });
  };
  const hashed: Record<string, string> = {};
  for (const [name, type] of [
    ['app.js', 'text/javascript; charset=utf-8'],
    ['app.css', 'text/css; charset=utf-8'],
  ] as const) {
    if (!existsSync(join(dir, name))) continue;
    const body = readFileSync(join(dir, name));
    const [stem, ext] = name.split('.');
    hashed[name] = `/assets/${stem}.${sha(body).slice(0, 12)}.${ext}`;
    add(hashed[name], type, body, true, join(dir, name));
  }
  const page = readFileSync(join(dir, 'index.html'), 'utf8')
    .replace('/assets/app.css', hashed['app.css'] ?? '/assets/app.css')
    .replace('/assets/app.js', hashed['app.js']);
  add('/', 'text/html; charset=utf-8', Buffer.from(page), false);
  if (existsSync(join(dir, 'manifest.webmanifest')))
    add('/manifest.webmanifest', 'application/manifest+json', readFileSync(join(dir, 'manifest.webmanifest')), false);
  if (existsSync(join(dir, 'icon.svg'))) add('/icon.svg', 'image/svg+xml', readFileSync(join(dir, 'icon.svg')), false);
  if (existsSync(join(dir, 'sw.js'))) {
    // the worker learns the shell it keeps from the build it belongs to: a new build is a new worker
    const shell = ['/', ...Object.values(hashed), '/manifest.webmanifest', '/icon.svg'];
    const version = sha(shell.join('\n')).slice(0, 12);
    const head = `self.TUBAN_SHELL=${JSON.stringify(shell)};self.TUBAN_VERSION=${JSON.stringify(version)};\n`;
    add(
      '/sw.js',
      'text/javascript; charset=utf-8',
      Buffer.concat([Buffer.from(head), readFileSync(join(dir, 'sw.js'))]),
      false,
    );
  }
  return { files };
}

/** The encoding to send for an Accept-Encoding header: brotli, then gzip, else none (q=0 refuses one). */
export function pickEncoding(accept: string | undefined, file: WebFile): 'br' | 'gzip' | null {
  const offered = new Map<string, number>();
  for (const part of (accept ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)).find(Boolean);
    offered.set(name, q ? Number(q[1]) : 1);
  }
  const ok = (name: string) => (offered.get(name) ?? offered.get('*') ?? 0) > 0;
  if (file.br && ok('br')) return 'br';
  if (file.gzip && ok('gzip')) return 'gzip';
  return null;
}

/** The folders the web bundle is built from: the app, and the API's answer types and the catalogue it imports. */
const WEB_INPUTS = ['web', 'api', 'i18n'];

/** Web sources changed after the bundle in `dir` was built (a developer forgot `npm run build`), by name. */
export function staleWebSources(dir: string = WEB_DIST): string[] {
  const built = statSync(join(dir, 'app.js')).mtimeMs;
  return WEB_INPUTS.flatMap((d) =>
    readdirSync(join(ROOT, d), { recursive: true, encoding: 'utf8' })
      .map((f) => join(d, f))
      .filter((f) => statSync(join(ROOT, f)).isFile() && statSync(join(ROOT, f)).mtimeMs > built),
  );
}

/** Bundles into `outDir` and loads the result: the tests serve the web app as it is in the tree. */
export async function buildWebAssets(outDir: string): Promise<WebAssets> {
  await bundleWeb(outDir);
  return loadWebAssets(outDir);
}
