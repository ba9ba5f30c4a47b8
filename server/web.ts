import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../core/errors.ts';
import { ROOT } from '../core/root.ts';

export const WEB_SRC = join(ROOT, 'web');
/** Where `npm run build` (also run by `npm ci`/`npm install`, as prepare) puts the web app. */
export const WEB_DIST = join(ROOT, 'dist', 'web');

export interface WebAssets {
  files: Map<string, { type: string; body: Buffer }>;
}

/**
 * Bundles the web app (web/main.ts and its modules, with OpenLayers, proj4 and their CSS) with esbuild into `outDir`,
 * with its index.html: no CDN, every asset from this server. esbuild loads only here.
 */
export async function bundleWeb(outDir: string = WEB_DIST): Promise<void> {
  const { build } = await import('esbuild');
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { app: join(WEB_SRC, 'main.ts') },
    bundle: true,
    minify: true,
    sourcemap: false,
    format: 'iife',
    target: 'es2020',
    outdir: outDir,
    loader: { '.css': 'css' },
    logLevel: 'error',
    legalComments: 'none',
  });
  copyFileSync(join(WEB_SRC, 'index.html'), join(outDir, 'index.html'));
}

/** The built web app in `dir`, for serving; a clear error when it was never built. */
export function loadWebAssets(dir: string = WEB_DIST): WebAssets {
  if (!existsSync(join(dir, 'app.js')) || !existsSync(join(dir, 'index.html'))) {
    throw new BadInputError('web_not_built', `${dir}: the web app is not built; run \`npm run build\``, { dir });
  }
  const files = new Map<string, { type: string; body: Buffer }>();
  files.set('/', { type: 'text/html; charset=utf-8', body: readFileSync(join(dir, 'index.html')) });
  files.set('/assets/app.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(join(dir, 'app.js')) });
  if (existsSync(join(dir, 'app.css')))
    files.set('/assets/app.css', { type: 'text/css; charset=utf-8', body: readFileSync(join(dir, 'app.css')) });
  return { files };
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
