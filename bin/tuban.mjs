#!/usr/bin/env node
// Entry point for `npx tuban`: the compiled CLI (dist/cli, built by `npm run build`, which npm ci and
// npm install run as prepare) when it is newer than every source file; else the TypeScript sources
// through tsx's loader, so an edit takes effect without a build (the start is then about a second slower).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'cli', 'main.mjs');
const SOURCES = [
  'api',
  'cli',
  'config',
  'core',
  'export',
  'i18n',
  'imagery',
  'map',
  'pipeline',
  'server',
  'store',
  'training',
  'workers',
  'workflow',
];

/** The newest modification time of the sources the CLI is built from (ms). */
function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|mjs)$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of SOURCES) if (existsSync(join(root, d))) walk(join(root, d));
  return newest;
}

if (existsSync(compiled) && statSync(compiled).mtimeMs >= newestSource()) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
