import { spawnSync } from 'node:child_process';

/** Whether the training's Python (TUBAN_PYTHON, else Debian's /usr/bin/python3) has torch, numpy and Pillow: the training tests need it. */
export const hasTorch =
  spawnSync(process.env.TUBAN_PYTHON ?? '/usr/bin/python3', ['-c', 'import torch, numpy, PIL'], { stdio: 'ignore' })
    .status === 0;
