import type { Config } from '../config/env.ts';

/**
 * Fault-injection pause for the resilience tests (TUBAN_FAULT_PAUSE=detect:1500,diff:2000):
 * holds a stage at its most fragile point (results computed, not yet committed) so a test can
 * kill the worker exactly there: `detect` after the model, `vectorize` with polygons written but
 * not committed, `emit` inside the diff's transaction before patches are numbered and written,
 * `diff` after they are, before the commit. Unset in production: returns at once.
 */
export async function faultPause(config: Config, stage: 'detect' | 'vectorize' | 'emit' | 'diff'): Promise<void> {
  const spec = config.TUBAN_FAULT_PAUSE;
  if (!spec) return;
  const m = new RegExp(`(?:^|,)${stage}:(\\d+)`).exec(spec);
  if (m) await new Promise((r) => setTimeout(r, Number(m[1])));
}
