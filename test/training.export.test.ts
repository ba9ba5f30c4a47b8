import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { exportTrainingChips, type TrainingExport } from '../training/chips.ts';
import { runBatch } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { hasTorch, modelScript } from './helpers/torch.ts';

/** Verified patches → before/after chips with the verdict as label, in the layout eval and training read. */
describe('training export from verified patches', () => {
  /** A training run of two steps on small crops: the script reads the folder, trains and writes its record. */
  const TWO_STEPS = ['--steps', '2', '--batch', '2', '--crop', '64', '--threads', '1'];
  /** export.py's settings for the committed model (its manifest's thresholds, the flip). */
  const COMMITTED_EXPORT = ['--flip', '--threshold', '0.45', '--min-mean-prob', '0.6', '--interior-threshold', '0.8'];
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  let out: string;
  let result: TrainingExport;
  const codes: Record<string, string> = {};

  beforeAll(async () => {
    run = await freshRun(fixturesDir);
    await runBatch(run.db, run.config, '2024-03', '2024-02');
    const patches = await run.db('patch').select('code', 'area_m2').orderBy('code');
    expect(patches.length).toBe(5);
    [codes.illegal, codes.legal, codes.falseChange, codes.shadow, codes.preExisting] = patches.map((p) => p.code);
    const set = (code: string, fields: Record<string, unknown>) => run.db('patch').where({ code }).update(fields);
    await set(codes.illegal, { status: 'illegal', verification_result: 'illegal' });
    await set(codes.legal, { status: 'legal', verification_result: 'legal', permit_ref: 'P-1' });
    await set(codes.falseChange, { status: 'false_change', verification_result: 'false_change' });
    await set(codes.shadow, { status: 'dismissed', dismiss_reason: 'shadow' });
    await set(codes.preExisting, { status: 'pre_existing', verification_result: 'pre_existing' });
    out = mkdtempSync(join(tmpdir(), 'tuban-training-'));
    result = await exportTrainingChips(run.db, { month: '2024-03', outDir: out });
  });
  afterAll(async () => {
    rmSync(out, { recursive: true, force: true });
    await cleanup(run.db, run.config);
  });

  it('exports one chip per verified patch with its label, and leaves out pre-existing and unverified ones', async () => {
    expect(result.skipped).toEqual([]);
    const byCode = Object.fromEntries(result.chips.map((c) => [c.code, c]));
    expect(Object.keys(byCode).sort()).toEqual([codes.illegal, codes.legal, codes.falseChange, codes.shadow].sort());
    expect(byCode[codes.illegal].label).toBe('change');
    expect(byCode[codes.legal].label).toBe('change');
    expect(byCode[codes.falseChange].label).toBe('no_change');
    expect(byCode[codes.shadow]).toMatchObject({ label: 'no_change', verdict: 'dismissed: shadow' });
    for (const sub of ['A', 'B', 'label'])
      expect(readdirSync(join(out, sub)).sort()).toEqual(result.chips.map((c) => c.name).sort());
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.chips.length).toBe(4);
    expect(manifest.chips[0].beforeTiles[0]).toMatch(/2024-02/);
  });

  it('rasterises the verified polygon as the label, at the patch area, and nothing over a false change', async () => {
    for (const code of [codes.illegal, codes.legal]) {
      const chip = result.chips.find((c) => c.code === code)!;
      const { area_m2 } = await run.db('patch').where({ code }).first('area_m2');
      expect((await sharp(join(out, 'label', chip.name)).metadata()).channels).toBe(1);
      const { data, info } = await sharp(join(out, 'label', chip.name))
        .extractChannel(0)
        .raw()
        .toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual(chip.sizePx);
      const ones = data.reduce((s, v) => s + (v === 255 ? 1 : 0), 0);
      expect(data.every((v) => v === 0 || v === 255)).toBe(true);
      // the chip may hold another verified change nearby; the patch itself must be all of its own area
      expect(ones * 0.25).toBeGreaterThanOrEqual(area_m2 * 0.95);
      expect(chip.changePixels).toBe(ones);
    }
    for (const code of [codes.falseChange, codes.shadow]) {
      const chip = result.chips.find((c) => c.code === code)!;
      const { data } = await sharp(join(out, 'label', chip.name))
        .extractChannel(0)
        .raw()
        .toBuffer({ resolveWithObject: true });
      const [cx, cy] = [chip.sizePx[0] / 2, chip.sizePx[1] / 2];
      expect(data[cy * chip.sizePx[0] + cx]).toBe(0);
    }
  });

  it('marks where the label is known: every verified outline with a ring around it, not the unjudged ground', async () => {
    const grey = async (sub: string, name: string) =>
      (
        await sharp(join(out, sub, name))
          .extractChannel(0)
          .raw()
          .toBuffer({ resolveWithObject: true })
      ).data;
    for (const chip of result.chips) {
      const [label, known, own] = await Promise.all(['label', 'known', 'own'].map((sub) => grey(sub, chip.name)));
      const count = (m: Buffer, f: (i: number) => boolean) => m.reduce((n, v, i) => n + (v === 255 && f(i) ? 1 : 0), 0);
      // the patch itself and every change pixel are known; the ring adds ground around them; most of the chip is not known
      expect(count(own, (i) => known[i] !== 255)).toBe(0);
      expect(count(label, (i) => known[i] !== 255)).toBe(0);
      const knownPx = count(known, () => true);
      expect(knownPx).toBeGreaterThan(count(own, () => true));
      expect(knownPx).toBeLessThan(known.length / 2);
    }
  });

  it('with quietM, also marks the ground that far from every patch of the month as known, and nothing nearer', async () => {
    const quietDir = mkdtempSync(join(tmpdir(), 'tuban-training-quiet-'));
    try {
      const quietM = 10;
      const quiet = await exportTrainingChips(run.db, { month: '2024-03', outDir: quietDir, quietM });
      expect(quiet.quietM).toBe(quietM);
      expect(quiet.chips.map((c) => c.name)).toEqual(result.chips.map((c) => c.name));
      const grey = async (dir: string, sub: string, name: string) =>
        (
          await sharp(join(dir, sub, name))
            .extractChannel(0)
            .raw()
            .toBuffer({ resolveWithObject: true })
        ).data;
      const { srid } = result.chips[0];
      for (const chip of quiet.chips) {
        const [label, label0, known, known0] = await Promise.all([
          grey(quietDir, 'label', chip.name),
          grey(out, 'label', chip.name),
          grey(quietDir, 'known', chip.name),
          grey(out, 'known', chip.name),
        ]);
        // the label is the verdicts' alone; what was known stays known; most of the chip is now known
        expect(label.equals(label0)).toBe(true);
        expect(known0.every((v, i) => v !== 255 || known[i] === 255)).toBe(true);
        const added = [...known.keys()].filter((i) => known[i] === 255 && known0[i] !== 255);
        expect(added.length).toBeGreaterThan(known.length / 2);
        // every pixel the quiet ground added lies at least quietM from every patch of the month (within a pixel)
        const [w] = chip.sizePx;
        const sample = added.filter((_, k) => k % Math.ceil(added.length / 400) === 0);
        const points = sample.map((i) => [
          chip.boundsWorld[0] + ((i % w) + 0.5) * chip.gsdM,
          chip.boundsWorld[3] - (Math.floor(i / w) + 0.5) * chip.gsdM,
        ]);
        const { rows } = await run.db.raw(
          `select min(ST_Distance(ST_Transform(ST_SetSRID(ST_MakePoint(x, y), ?::int), ST_SRID(p.geom)), p.geom)) as d
           from unnest(?::float8[], ?::float8[]) as pt(x, y)
           join patch p on p.month = '2024-03'
           group by x, y order by d limit 1`,
          [srid, points.map((q) => q[0]), points.map((q) => q[1])],
        );
        expect(Number(rows[0].d)).toBeGreaterThan(quietM - 1.5 * chip.gsdM);
        // and what stays unknown is near a patch: the unverified one, or beyond a verified outline's ring
        const unknown = [...known.keys()].filter((i) => known[i] !== 255);
        expect(unknown.length).toBeGreaterThan(0);
        const far = await run.db.raw(
          `select max(d) as d from (
             select min(ST_Distance(ST_Transform(ST_SetSRID(ST_MakePoint(x, y), ?::int), ST_SRID(p.geom)), p.geom)) as d
             from unnest(?::float8[], ?::float8[]) as pt(x, y)
             join patch p on p.month = '2024-03'
             group by x, y) s`,
          [
            srid,
            unknown.map((i) => chip.boundsWorld[0] + ((i % w) + 0.5) * chip.gsdM),
            unknown.map((i) => chip.boundsWorld[3] - (Math.floor(i / w) + 0.5) * chip.gsdM),
          ],
        );
        expect(Number(far.rows[0].d)).toBeLessThan(quietM + 1.5 * chip.gsdM);
      }
    } finally {
      rmSync(quietDir, { recursive: true, force: true });
    }
  });

  it("cuts the after chip from the month's imagery at the right place, pixel for pixel", async () => {
    const chip = result.chips.find((c) => c.code === codes.illegal)!;
    const { data } = await sharp(join(out, 'B', chip.name))
      .raw()
      .toBuffer({ resolveWithObject: true });
    const row = chip.sizePx[1] / 2;
    const rowY = chip.boundsWorld[3] - (row + 0.5) * chip.gsdM; // world y of the centre row's pixel centres
    let compared = 0;
    for (const tile of chip.afterTiles) {
      const src = await GeoTiffSource.open(tile);
      try {
        const gt = src.info.geoTransform;
        const y = Math.floor((gt[3] - rowY) / -gt[5]);
        if (y < 0 || y >= src.info.heightPx) continue;
        const x0 = Math.round((chip.boundsWorld[0] - gt[0]) / gt[1]);
        const cols = [...Array(chip.sizePx[0]).keys()].filter((c) => x0 + c >= 0 && x0 + c < src.info.widthPx);
        if (!cols.length) continue;
        const [r] = await src.readWindow({ x: x0 + cols[0], y, width: cols.length, height: 1 }, [0]);
        expect(cols.filter((c, i) => data[(row * chip.sizePx[0] + c) * 3] !== r[i]).length).toBe(0);
        compared += cols.length;
      } finally {
        await src.close();
      }
    }
    expect(compared).toBe(chip.sizePx[0]);
  });

  it('refuses a month that is not YYYY-MM, naming the option', async () => {
    await expect(exportTrainingChips(run.db, { month: '2024-3', outDir: out })).rejects.toThrow(
      /--month "2024-3" is not a month/,
    );
    await expect(exportTrainingChips(run.db, { month: '2024-03', since: '2024-05', outDir: out })).rejects.toThrow(
      /--since 2024-05 is after --month 2024-03/,
    );
  });

  it.skipIf(!hasTorch)('is read by the training script as a labelled folder (needs python3-torch)', () => {
    const runDir = mkdtempSync(join(tmpdir(), 'tuban-train-'));
    try {
      modelScript('train.py', '--data', out, '--mix', '1,0,0', ...TWO_STEPS, '--out', runDir);
      const record = JSON.parse(readFileSync(join(runDir, 'training.json'), 'utf8'));
      expect(record.trainingData).toEqual([{ folder: out.split('/').pop(), scale: 1, pairs: 4 }]);
      expect(record.steps).toBe(2);
    } finally {
      rmSync(runDir, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasTorch)(
    'trains the refinement step at its own learning rate, and refuses the rate without the step (needs python3-torch)',
    () => {
      const runDir = mkdtempSync(join(tmpdir(), 'tuban-refine-'));
      const train = (...extra: string[]) =>
        modelScript('train.py', '--data', out, ...TWO_STEPS, '--eval-every', '0', '--out', runDir, ...extra);
      try {
        train('--refine', '4', '--refine-lr', '10');
        const record = JSON.parse(readFileSync(join(runDir, 'training.json'), 'utf8'));
        expect(record.architecture).toMatchObject({ refine: 4, refineLr: 10 });
        expect(() => train('--refine-lr', '10')).toThrow(
          /--refine-lr 10: expected a multiple > 0, and a refinement step/,
        );
      } finally {
        rmSync(runDir, { recursive: true, force: true });
      }
    },
    120_000,
  );

  // A wider net starts from the committed weights widened (Net2Net): before any step, it draws nearly the same masks.
  it.skipIf(!hasTorch)(
    'widens the default model nearly without changing its answers, and refuses to narrow it (needs python3-torch)',
    async () => {
      const runDir = mkdtempSync(join(tmpdir(), 'tuban-widen-'));
      const modelDir = mkdtempSync(join(tmpdir(), 'tuban-wide-model-'));
      const train = (widths: string, ...extra: string[]) =>
        modelScript(
          'train.py',
          '--data',
          out,
          '--widths',
          widths,
          '--init',
          'models/siam-unet-lite/weights.npz',
          '--threads',
          '1',
          '--eval-every',
          '0',
          '--out',
          runDir,
          ...extra,
        );
      try {
        expect(() => train('8,32,64,96', '--steps', '0')).toThrow(
          /--widths 8,32,64,96 with --init models\/siam-unet-lite\/weights.npz: weights of widths \[16, 32, 64, 96\] can be widened, stage by stage, not made \[8, 32, 64, 96\]/,
        );
        train('24,40,64,96', '--steps', '0');
        const record = JSON.parse(readFileSync(join(runDir, 'training.json'), 'utf8'));
        expect(record.architecture).toMatchObject({ widths: [24, 40, 64, 96] });
        expect(record.architecture.parameters).toBeGreaterThan(382_098);
        modelScript('export.py', runDir, modelDir, ...COMMITTED_EXPORT, '--version', 'wide');
        const { evaluateDataset } = await import('../training/dataset.eval.ts');
        const wide = await evaluateDataset(out, modelDir);
        const committed = await evaluateDataset(out, 'models/siam-unet-lite');
        expect(wide.model).toBe('siam-unet-lite wide');
        // the copies' filters carry a little noise (so that training can pull them apart): nearly the same masks
        const drawn = (r: typeof wide) => r.images.map((i) => i.pixel.tp + i.pixel.fp);
        expect(drawn(committed).reduce((a, b) => a + b)).toBeGreaterThan(0); // it draws something to compare
        for (const [k, n] of drawn(committed).entries())
          expect(Math.abs(drawn(wide)[k] - n), committed.images[k].name).toBeLessThanOrEqual(0.02 * n + 10);
      } finally {
        rmSync(runDir, { recursive: true, force: true });
        rmSync(modelDir, { recursive: true, force: true });
      }
    },
    300_000,
  );

  // The multi-scale graph resamples each scene (bilinear) and brings every answer back to the scene's
  // size: 1.3 times a 256 px chip is not a whole number of pixels.
  it.skipIf(!hasTorch)(
    "exports the default model averaged over scales, and eval reads it at the chips' sizes (needs python3-torch)",
    async () => {
      const modelDir = mkdtempSync(join(tmpdir(), 'tuban-scales-'));
      const exportModel = (...extra: string[]) =>
        modelScript('export.py', 'models/siam-unet-lite', modelDir, '--flip', '--threshold', '0.45', ...extra);
      try {
        expect(() => exportModel('--scales', '1,big')).toThrow(/--scales 1,big: expected factors such as 1,1.5/);
        expect(() => exportModel('--scales', '1,1')).toThrow(/--scales 1,1: expected distinct factors/);
        expect(() => exportModel('--scales', '1,1.5', '--float-input')).toThrow(/exported for the 8-bit graph only/);
        exportModel('--scales', '1,1.3', '--version', '2.3.1-scales');
        const manifest = JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8'));
        expect(manifest.provenance.exportedWith).toMatchObject({ flip: true, scales: [1, 1.3] });
        const { evaluateDataset } = await import('../training/dataset.eval.ts');
        const r = await evaluateDataset(out, modelDir);
        expect(r.model).toBe('siam-unet-lite 2.3.1-scales');
        expect(r.images).toHaveLength(4);
        for (const image of r.images) {
          const [w, h] = result.chips.find((c) => c.name === image.name)!.sizePx;
          const { tp, fp, fn, tn } = image.pixel;
          expect(tp + fp + fn + tn).toBe(w * h);
        }
      } finally {
        rmSync(modelDir, { recursive: true, force: true });
      }
    },
    300_000,
  );

  // What a city does with its own verified patches instead of LEVIR-CD's research-only weights:
  // fine-tune the default model on them, export it, and evaluate it through onnxruntime.
  it.skipIf(!hasTorch)(
    'fine-tunes the default model on the export, end to end: train-detector.sh --init → export.py → tuban eval',
    async () => {
      const runDir = mkdtempSync(join(tmpdir(), 'tuban-finetune-'));
      const modelDir = mkdtempSync(join(tmpdir(), 'tuban-city-model-'));
      try {
        const env = { ...process.env, SHARED_DATA: join(runDir, 'no-shared-data') }; // only the city's own chips
        execFileSync(
          'scripts/train-detector.sh',
          [
            runDir,
            '--data',
            out,
            '--init',
            'models/siam-unet-lite/weights.npz',
            '--steps',
            '3',
            '--batch',
            '2',
            '--crop',
            '64',
            '--lr',
            '1e-3',
            '--threads',
            '1',
          ],
          { stdio: 'pipe', env },
        );
        const record = JSON.parse(readFileSync(join(runDir, 'training.json'), 'utf8'));
        expect(record).toMatchObject({
          steps: 3,
          finished: true,
          initialisedFrom: 'models/siam-unet-lite/weights.npz',
        });
        modelScript('export.py', runDir, modelDir, '--name', 'city-2024', '--version', '1.0.0');
        const { evaluateDataset } = await import('../training/dataset.eval.ts');
        const r = await evaluateDataset(out, modelDir);
        expect(r.model).toBe('city-2024 1.0.0');
        expect(r.images).toHaveLength(4);
        expect(r.total.pixel.tp + r.total.pixel.fp + r.total.pixel.fn + r.total.pixel.tn).toBe(
          r.images.reduce((s, i) => s + i.pixel.tp + i.pixel.fp + i.pixel.fn + i.pixel.tn, 0),
        );
      } finally {
        rmSync(runDir, { recursive: true, force: true });
        rmSync(modelDir, { recursive: true, force: true });
      }
    },
    300_000,
  );
});
