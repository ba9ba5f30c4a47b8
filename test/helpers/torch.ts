import { execFileSync, spawnSync } from 'node:child_process';

/** The training's Python: TUBAN_PYTHON, else Debian's /usr/bin/python3. */
const PYTHON = process.env.TUBAN_PYTHON ?? '/usr/bin/python3';

/** Whether the training's Python has torch, numpy and Pillow: the training tests need it. */
export const hasTorch = spawnSync(PYTHON, ['-c', 'import torch, numpy, PIL'], { stdio: 'ignore' }).status === 0;

/**
 * Runs one of the model's scripts (`models/siam-unet-lite/<script>`) with the training's Python; throws, with
 * the script's stderr in the message, when it exits non-zero.
 */
export function modelScript(script: string, ...args: string[]): Buffer {
  return pythonScript(`models/siam-unet-lite/${script}`, ...args);
}

/** Runs a Python script (a path from the repository's root) with the training's Python, as `modelScript`. */
export function pythonScript(path: string, ...args: string[]): Buffer {
  return execFileSync(PYTHON, [path, ...args], { stdio: 'pipe' });
}
