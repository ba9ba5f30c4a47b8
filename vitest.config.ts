import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Limits that a loaded machine does not trip (a run at load 13 once timed out at 120 s/180 s): a
    // scenario that hangs still fails, after 10 minutes; speed is measured in scripts/bench-*, not here.
    testTimeout: 600_000,
    hookTimeout: 900_000,
    // expect.poll waits up to 60 s by default (vitest's is 1 s): a page or a job that is slow because the
    // machine is busy is not a failure; one that never comes still is
    expect: { poll: { timeout: 60_000 } },
    pool: 'forks',
    maxWorkers: 2,
  },
});
