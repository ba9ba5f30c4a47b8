/**
 * What the real-imagery benchmarks (scripts/bench-real.ts, scripts/bench-followup.ts) share: the
 * GDAL runs that turn the LEVIR-CD pairs into GeoTIFFs, and a schema of their own on the real
 * PostgreSQL/PostGIS and Redis with the town layer loaded, removed again afterwards.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/env.ts';
import type { Db } from '../store/db.ts';
import { TOWN, UTM_14N, sceneCommands, townLayer, type RealPair, type RealScene } from './bench-real.plan.ts';

/** Runs GDAL for every pair's PNGs and every scene's months (bench-real.plan.ts says which commands). */
export function warpScenes(pairs: RealPair[], scenes: RealScene[]): void {
  for (const f of [...pairs.flatMap((p) => Object.values(p.tif)), ...scenes.flatMap((sc) => Object.values(sc.tif))])
    mkdirSync(dirname(f), { recursive: true });
  for (const c of sceneCommands(scenes)) {
    try {
      execFileSync(c.program, c.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      throw new Error(
        `${c.program} ${c.args.join(' ')} failed: ${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim()}`,
      );
    }
  }
}

export interface BenchSchema {
  config: Config;
  db: Db;
  /** Drops the schema and the Redis keys (unless keep), and closes the database. */
  close: (keep: boolean, say: (line: string) => void) => Promise<void>;
}

/**
 * A migrated schema and a queue prefix of their own (DATABASE_URL, default the machine's test
 * database; REDIS_URL), storing in UTM 14N, with the town layer over the pairs imported. `env`
 * adds settings (TUBAN_*) for this schema's batches.
 */
export async function openBenchSchema(
  name: string,
  work: string,
  modelDir: string,
  pairs: RealPair[],
  env: Record<string, string> = {},
): Promise<BenchSchema> {
  const { loadConfig } = await import('../config/env.ts');
  const { openDb } = await import('../store/db.ts');
  const { migrate } = await import('../store/migrate.ts');
  const { importLayer } = await import('../store/layers.ts');
  const id = `${name}_${randomBytes(3).toString('hex')}`;
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    TUBAN_DB_SCHEMA: `tuban_bench_${id}`,
    TUBAN_QUEUE_PREFIX: `tuban-bench-${id}`,
    TUBAN_DATA_DIR: join(work, `data-${id}`),
    TUBAN_LOG_LEVEL: 'warn',
    TUBAN_MODEL_DIR: modelDir,
    TUBAN_STORAGE_SRID: String(UTM_14N.epsg),
    TUBAN_DISTRICT_CODE: TOWN.districtCode,
    ...env,
  });
  const db = await openDb(config);
  const close = async (keep: boolean, say: (line: string) => void) => {
    if (keep) say(`kept schema ${config.TUBAN_DB_SCHEMA} and Redis keys ${config.TUBAN_QUEUE_PREFIX}:*`);
    else {
      await db.raw(`drop schema if exists ${config.TUBAN_DB_SCHEMA} cascade`);
      const { Redis } = await import('ioredis');
      const redis = new Redis(config.REDIS_URL);
      const keys = await redis.keys(`${config.TUBAN_QUEUE_PREFIX}:*`);
      for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
      redis.disconnect();
    }
    await db.destroy();
  };
  try {
    await migrate(db, config);
    mkdirSync(config.dataDir, { recursive: true });
    const townFile = join(config.dataDir, 'town.geojson');
    writeFileSync(townFile, JSON.stringify(townLayer(pairs)));
    const town = await importLayer(db, townFile, 'town');
    if (town.imported !== 1) throw new Error(`the town layer was not imported: ${JSON.stringify(town.rejected)}`);
  } catch (err) {
    await close(false, () => {});
    throw err;
  }
  return { config, db, close };
}
