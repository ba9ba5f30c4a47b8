import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { listPatches } from '../store/batch.ts';
import { importLayer } from '../store/layers.ts';
import { runBatch, type WorldBox } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';

/**
 * Registered buildings are evidence, not legality (issue 28): on the fixture month, a registered
 * footprint under the western 40 % of one new building (the rest added: an extension) and one under
 * all of another (rebuilt on the spot) leave both as patches, classed, with their overlap and the
 * area outside; the permitted buildings stay out. TUBAN_BUILDING_POLICY=subtract erases them as before.
 */
describe('changes on registered buildings', () => {
  const fixturesDir = inject('fixturesDir');
  const truth = JSON.parse(readFileSync(join(fixturesDir, 'truth.geojson'), 'utf8')) as {
    features: { properties: { id: string }; geometry: { coordinates: number[][][] } }[];
  };
  const box = (id: string): WorldBox => {
    const ring = truth.features.find((f) => f.properties.id === id)!.geometry.coordinates[0];
    const xs = ring.map((p) => p[0]),
      ys = ring.map((p) => p[1]);
    return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  };
  let run: Run | undefined;
  afterEach(async () => {
    if (run) await cleanup(run.db, run.config);
    run = undefined;
  });

  /** A fresh run whose building layer also holds the two registered footprints, then its March batch. */
  async function marchWithRegister(overrides: Record<string, string> = {}) {
    run = await freshRun(fixturesDir, overrides);
    const [rx0, ry0, rx1, ry1] = box('residential');
    const [sx0, sy0, sx1, sy1] = box('seam');
    const rect = (x0: number, y0: number, x1: number, y1: number) => ({
      type: 'Feature',
      properties: {},
      geometry: {
        type: 'Polygon',
        coordinates: [
          [
            [x0, y0],
            [x1, y0],
            [x1, y1],
            [x0, y1],
            [x0, y0],
          ],
        ],
      },
    });
    const file = join(run.config.dataDir, 'registered.geojson');
    writeFileSync(
      file,
      JSON.stringify({
        type: 'FeatureCollection',
        crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::4548' } },
        features: [
          rect(rx0, ry0, rx0 + 0.4 * (rx1 - rx0), ry1), // the west 40 % of `residential`
          rect(sx0 - 0.5, sy0 - 0.5, sx1 + 0.5, sy1 + 0.5), // all of `seam`
        ],
      }),
    );
    expect((await importLayer(run.db, file, 'building')).imported).toBe(2);
    const summary = await runBatch(run.db, run.config, '2024-03', '2024-02');
    const patches = await listPatches(run.db, '2024-03');
    const at = (id: string) => {
      const [x0, y0, x1, y1] = box(id);
      return patches.find(
        (p) => Math.abs(Number(p.x) - (x0 + x1) / 2) < 8 && Math.abs(Number(p.y) - (y0 + y1) / 2) < 8,
      );
    };
    return { summary, patches, at };
  }

  it('keeps them as patches, classed extension and on_building, with overlap and area outside', async () => {
    const { summary, patches, at } = await marchWithRegister();
    // the five unpermitted buildings, as without a register; the two permitted ones stay out
    expect(patches).toHaveLength(5);
    expect(summary.newByRelation).toEqual({ new: 3, extension: 1, on_building: 1 });

    const ext = at('residential')!;
    expect(ext.building_relation).toBe('extension');
    const [rx0, ry0, rx1, ry1] = box('residential');
    const registered = 0.4 * (rx1 - rx0) * (ry1 - ry0);
    // the detected outline follows the building to a pixel or two
    expect(Number(ext.registered_building_m2)).toBeGreaterThan(registered * 0.85);
    expect(Number(ext.registered_building_m2)).toBeLessThan(registered * 1.05);
    expect(Number(ext.extension_m2)).toBeCloseTo(Number(ext.area_m2) - Number(ext.registered_building_m2), 0);

    const on = at('seam')!;
    expect(on.building_relation).toBe('on_building');
    // the outline takes in the shadow on the ground beside the footprint
    expect(Number(on.registered_building_m2) / Number(on.area_m2)).toBeGreaterThan(0.75);
    expect(Number(on.extension_m2)).toBeCloseTo(Number(on.area_m2) - Number(on.registered_building_m2), 0);

    const fresh = at('farmland')!;
    expect(fresh.building_relation).toBe('new');
    expect(Number(fresh.registered_building_m2)).toBe(0);
    expect(Number(fresh.extension_m2)).toBe(Number(fresh.area_m2));

    const batch = await run!.db('batch').where({ id: summary.batchId }).first();
    expect(batch.params).toMatchObject({ buildingPolicy: 'classify', onBuildingShare: 0.5 });
    expect(batch.params.minMeanProbByRelation).toEqual({ extension: 0, on_building: 0 });
  });

  it('a registered building is not a permit: with TUBAN_BUILDING_POLICY=subtract it is erased as before', async () => {
    const { summary, patches, at } = await marchWithRegister({ TUBAN_BUILDING_POLICY: 'subtract' });
    // the rebuilt one vanishes under its footprint; the extension keeps only its part outside (grown by the legal buffer)
    expect(patches).toHaveLength(4);
    expect(at('seam')).toBeUndefined();
    const [rx0, ry0, rx1, ry1] = box('residential');
    const ext = patches.find(
      (p) => Math.abs(Number(p.y) - (ry0 + ry1) / 2) < 8 && Number(p.x) > rx0 && Number(p.x) < rx1,
    );
    expect(ext).toBeDefined();
    // what is left lies east of the registered footprint grown by the legal buffer (1.5 m)
    const [{ xmin }] = (
      await run!.db.raw('select ST_XMin(geom) as xmin from patch where code = ?', [String(ext!.code)])
    ).rows;
    expect(xmin).toBeGreaterThan(rx0 + 0.4 * (rx1 - rx0) + 1.5 - 0.6);
    // cut 1.5 m clear of the footprint, the rest no longer meets it: new, as every patch read before
    expect(ext!.building_relation).toBe('new');
    const batch = await run!.db('batch').where({ id: summary.batchId }).first();
    expect(batch.params.buildingPolicy).toBe('subtract');
  });
});
