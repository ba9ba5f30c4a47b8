import type { Config } from '../config/env.ts';

export type FaultStage = 'detect' | 'vectorize' | 'candidates' | 'emit' | 'diff';

/**
 * Fault-injection pause for the resilience tests (TUBAN_FAULT_PAUSE=detect:1500,diff:2000):
 * holds a stage at its most fragile point (results computed, not yet committed) so a test can
 * kill the worker exactly there: `detect` after the model, `vectorize` with polygons written but
 * not committed, `candidates` with a slice of the diff's candidates written, not committed, `emit`
 * inside a district's transaction before its patches are numbered and written, `diff` after they all
 * are, before the batch is closed. Unset in production: returns at once.
 */
export async function faultPause(config: Config, stage: FaultStage): Promise<void> {
  const spec = config.TUBAN_FAULT_PAUSE;
  if (!spec) return;
  const m = new RegExp(`(?:^|,)${stage}:(\\d+)`).exec(spec);
  if (m) await new Promise((r) => setTimeout(r, Number(m[1])));
}
