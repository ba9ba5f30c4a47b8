#!/usr/bin/env node
// `npm run demo`: make sure packages and Redis are there, then run scripts/demo.ts.
// Plain JavaScript on purpose: it must run before `npm ci` has installed tsx.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

if (!existsSync(join(root, 'node_modules', 'tsx')) || !existsSync(join(root, 'node_modules', 'onnxruntime-node'))) {
  console.log('== Installing packages (npm ci)');
  // onnxruntime-node's install script downloads CUDA binaries from outside the npm registry; the CPU build ships in the package.
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], {
    stdio: 'inherit',
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });
}

const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const port = Number(redisUrl.port || 6379);
const host = redisUrl.hostname || '127.0.0.1';

function answers() {
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => {
      s.write('PING\r\n');
    });
    s.setTimeout(1500, () => {
      s.destroy();
      resolve(false);
    });
    s.on('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH'));
    });
    s.on('error', () => resolve(false));
  });
}

if (!(await answers())) {
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const isLocal = ['127.0.0.1', 'localhost', '::1'].includes(host);
  if (which.status === 0 && isLocal) {
    console.log(`== Starting redis-server on port ${port} (nothing saved to disk)`);
    execFileSync('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'yes',
    ]);
    for (let i = 0; i < 50 && !(await answers()); i++) await new Promise((r) => setTimeout(r, 100));
  }
  if (!(await answers())) {
    console.error(`Redis does not answer at ${redisUrl.href}.`);
    console.error(
      isLocal
        ? "Install it (Debian: 'apt-get install redis-server') and run the demo again, or set REDIS_URL to a running Redis."
        : 'Start that Redis, or set REDIS_URL to one that runs.',
    );
    process.exit(1);
  }
}

const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
