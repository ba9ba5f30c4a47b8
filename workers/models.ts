import type { Config } from '../config/env.ts';
import { BadInputError } from '../core/errors.ts';
import type { ChangeModel } from '../pipeline/change.model.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import type { Db } from '../store/db.ts';
import { findModel } from '../store/models.ts';

/**
 * The models a long-running worker may need besides the one it started with: a batch launched after a
 * promotion (`tuban model promote`) names the new model, and a worker started before it loads that
 * model from the register on the batch's first part, once, and keeps it until it stops.
 */
export function modelShelf(
  db: Db,
  config: Config,
): { named(name: string, version: string): Promise<ChangeModel>; close(): Promise<void> } {
  const loaded = new Map<string, Promise<ChangeModel>>();
  return {
    named(name, version) {
      const key = `${name} ${version}`;
      let m = loaded.get(key);
      if (!m) {
        m = (async () => {
          const row = await findModel(db, name, version);
          if (!row)
            throw new BadInputError(
              'unknown_model',
              `the batch ran ${key}, which this worker was not started with and the model register does not hold: start the worker with TUBAN_MODEL_DIR naming it`,
              { model: key },
            );
          return OnnxChangeModel.load(row.dir, { intraOpThreads: config.TUBAN_ORT_THREADS });
        })();
        m.catch(() => loaded.delete(key));
        loaded.set(key, m);
      }
      return m;
    },
    async close() {
      for (const m of loaded.values()) await m.then((x) => x.close()).catch(() => undefined);
      loaded.clear();
    },
  };
}
