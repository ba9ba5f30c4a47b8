import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Limits that a loaded machine does not trip (a run at load 13 once timed out at 120 s/180 s): a
    // scenario that hangs still fails, after 10 minutes; speed is measured in scripts/bench-*, not here.
    testTimeout: 600_000,
    hookTimeout: 900_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
