import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder of tuban's package.json: where sql/, config/, models/ and dist/ lie, whether this
 * module runs from its TypeScript source (core/) or bundled into the compiled CLI (dist/cli/).
 */
function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tuban') return dir;
    if (dirname(dir) === dir) throw new Error(`tuban's package.json not found above ${from}`);
  }
}

export const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
