import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const WEB_SRC = join(ROOT, 'web');

export interface WebAssets {
  files: Map<string, { type: string; body: Buffer }>;
}

/**
 * Bundles the web app (web/app.ts with OpenLayers, proj4 and their CSS) with esbuild into
 * `outDir` and loads it for serving: no CDN, every asset from this server.
 */
export async function buildWebAssets(outDir: string): Promise<WebAssets> {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { app: join(WEB_SRC, 'app.ts') },
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
  const files = new Map<string, { type: string; body: Buffer }>();
  files.set('/', { type: 'text/html; charset=utf-8', body: readFileSync(join(WEB_SRC, 'index.html')) });
  files.set('/assets/app.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(join(outDir, 'app.js')) });
  if (existsSync(join(outDir, 'app.css')))
    files.set('/assets/app.css', { type: 'text/css; charset=utf-8', body: readFileSync(join(outDir, 'app.css')) });
  return { files };
}
