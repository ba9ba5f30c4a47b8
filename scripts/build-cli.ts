// `npm run build` (and `npm ci`/`npm install`, as prepare): the CLI compiled into dist/cli, so that
// `npx tuban` starts without compiling TypeScript (bin/tuban.mjs falls back to the sources through
// tsx when dist/cli is missing or older than them). Packages stay external: node_modules is loaded as is.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { ROOT } from '../core/root.ts';

export const CLI_DIST = join(ROOT, 'dist', 'cli');

const t0 = performance.now();
rmSync(CLI_DIST, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: [
    { in: 'cli/main.ts', out: 'main' },
    // the threads the code starts by URL next to itself (export/pdf.run.ts, export/chip.pool.ts, pipeline/io/model.session.ts)
    { in: 'export/pdf.worker.ts', out: 'pdf.thread' },
    { in: 'export/chip.worker.ts', out: 'chip.thread' },
  ],
  outdir: CLI_DIST,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
mkdirSync(CLI_DIST, { recursive: true });
copyFileSync(join(ROOT, 'pipeline/io/model.thread.mjs'), join(CLI_DIST, 'model.thread.mjs'));
console.log(`CLI built into ${CLI_DIST} in ${Math.round(performance.now() - t0)} ms`);
