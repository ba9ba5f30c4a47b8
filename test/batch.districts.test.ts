import { afterAll, describe, expect, inject, it } from 'vitest';
import { runDiff } from '../store/batch.diff.ts';
import { resumeBatch } from '../workers/batch.launch.ts';
import { runBatch } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { patchSnapshot } from './helpers/snapshot.ts';

/**
 * A month's diff commits each district on its own (issue 33): the fixture city split in two districts
 * (禾山 moved to 350203), the diff stopped inside the second district's transaction — the first
 * district's patches are already there for everyone to read, the second's are not — and then run
 * again: it goes on from the district not yet written and ends with the patches of an undisturbed run.
 * The reference runs on one connection (TUBAN_DIFF_PARALLEL=1); the others in slices and districts at
 * once, as PostgreSQL's default has it, and must write the same patches.
 */
describe('the diff, district by district', () => {
  const fixturesDir = inject('fixturesDir');
  const runs: Run[] = [];
  afterAll(async () => {
    for (const r of runs) await cleanup(r.db, r.config);
  });

  /** The run's settings with the diff on one connection. */
  const serial = (run: Run) => ({ ...run.config, TUBAN_DIFF_PARALLEL: 1 });

  /** The batch taken back to before its diff (its patches and their history gone, its candidates too). */
  async function takeBack(run: Run, batchId: number): Promise<void> {
    await run.db.transaction(async (trx) => {
      await trx.raw('set local session_replication_role = replica');
      await trx.raw(`delete from patch_event where (detail->>'batch_id')::bigint = ?`, [batchId]);
      await trx('patch_observation').where({ batch_id: batchId }).delete();
      await trx('batch_candidate').where({ batch_id: batchId }).delete();
      await trx('patch').where({ batch_id: batchId }).delete();
      await trx('batch')
        .where({ id: batchId })
        .update({ status: 'running', summary: null, candidates_round: null, candidates_timings: null });
    });
  }

  /**
   * The reference's patches (the diff on one connection), and a run whose batch was diffed in slices and
   * then taken back to before its diff, for a diff to be run again.
   */
  async function takenBack() {
    const reference = await twoDistricts();
    await runBatch(reference.db, serial(reference), '2024-03', '2024-02');
    const expected = await patchSnapshot(reference.db);
    const run = await twoDistricts();
    const first = await runBatch(run.db, run.config, '2024-03', '2024-02');
    await takeBack(run, first.batchId);
    return { expected, run, first };
  }

  /** The diff ended with the reference's patches, its candidates numbered 1…N with none left over. */
  async function expectAsReference(
    run: Run,
    batchId: number,
    summary: Awaited<ReturnType<typeof runDiff>>,
    expected: Awaited<ReturnType<typeof patchSnapshot>>,
  ) {
    expect(summary.status).toBe('completed');
    expect(await patchSnapshot(run.db)).toEqual(expected);
    const candidates = await run.db('batch_candidate').where({ batch_id: batchId }).orderBy('seq');
    expect(candidates.map((c) => c.seq)).toEqual(candidates.map((_, i) => i + 1));
    expect(candidates.length).toBe(summary.candidates);
  }

  async function twoDistricts(): Promise<Run> {
    const run = await freshRun(fixturesDir);
    runs.push(run);
    await run.db('reference_feature').where({ kind: 'town', code: '350206002' }).update({ district_code: '350203' });
    return run;
  }

  it('commits each district apart, and a diff started again writes only what is missing', async () => {
    const reference = await twoDistricts();
    const whole = await runBatch(reference.db, serial(reference), '2024-03', '2024-02');
    expect(whole.status).toBe('completed');
    const expected = await patchSnapshot(reference.db);
    expect(new Set(expected.map((p) => p.district_code))).toEqual(new Set(['350203', '350206']));

    const run = await twoDistricts();
    expect(run.config.TUBAN_DIFF_PARALLEL).toBe(2);
    const first = await runBatch(run.db, run.config, '2024-03', '2024-02');
    expect(await patchSnapshot(run.db)).toEqual(expected);
    // numbered from 1 in the one order, whichever slice found them
    const seqs = (await run.db('batch_candidate').where({ batch_id: first.batchId }).orderBy('seq')).map((c) => c.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    // the batch taken back to before its diff (its patches and their history gone, its candidates too)
    await takeBack(run, first.batchId);

    let emits = 0;
    const seenMidway: { district_code: string; n: number }[][] = [];
    const stop = new Error('stopped inside the second district');
    await expect(
      // one district after the other, so that the second is the one stopped
      runDiff(run.db, serial(run), first.batchId, 'batch', async (point) => {
        if (point !== 'emit') return;
        emits += 1;
        if (emits < 2) return;
        // read from another connection of the pool: only committed rows are seen
        seenMidway.push(
          (
            await run
              .db('patch')
              .where({ batch_id: first.batchId })
              .groupBy('district_code')
              .select('district_code', run.db.raw('count(*)::int as n'))
          ).map((r) => ({ district_code: r.district_code, n: r.n })),
        );
        throw stop;
      }),
    ).rejects.toBe(stop);
    // district 350203 (first in order) committed; 350206 rolled back with the error
    const firstDistrict = expected.filter((p) => p.district_code === '350203').length;
    expect(seenMidway).toEqual([[{ district_code: '350203', n: firstDistrict }]]);
    expect((await run.db('batch').where({ id: first.batchId }).first('status')).status).toBe('running');
    expect(
      await run.db('batch_candidate').where({ batch_id: first.batchId }).groupBy('emitted').select('emitted'),
    ).toHaveLength(2);

    // the batch's jobs lost and resumed (tuban batch resume): a new job round, the candidates still its own
    const resumed = await resumeBatch(run.db, run.config, first.batchId);
    expect(resumed.requeued).toBe(0);
    const after = await run.db('batch').where({ id: first.batchId }).first('params', 'candidates_round');
    expect(after.candidates_round).toBe(after.params.retryRound);
    expect(after.candidates_round).toBeGreaterThan(0);

    // again: the candidates are not made again (the same rows), the written district is not written twice
    const candidatesBefore = await run.db('batch_candidate').where({ batch_id: first.batchId }).orderBy('seq');
    let emitsAgain = 0;
    const summary = await runDiff(run.db, run.config, first.batchId, 'batch', async (point) => {
      if (point === 'emit') emitsAgain += 1;
    });
    expect(emitsAgain).toBe(1);
    expect(summary.status).toBe('completed');
    expect(summary.patches.new).toBe(whole.patches.new);
    const candidatesAfter = await run.db('batch_candidate').where({ batch_id: first.batchId }).orderBy('seq');
    expect(candidatesAfter.map(({ emitted: _e, ...c }) => c)).toEqual(
      candidatesBefore.map(({ emitted: _e, ...c }) => c),
    );
    expect(candidatesAfter.every((c) => c.emitted)).toBe(true);
    expect(await patchSnapshot(run.db)).toEqual(expected);
    // and a completed batch's diff changes nothing
    expect(await runDiff(run.db, run.config, first.batchId)).toEqual(summary);
    expect(await patchSnapshot(run.db)).toEqual(expected);
  });

  it('a slice of the candidates that fails leaves nothing the next diff keeps', async () => {
    const { expected, run, first } = await takenBack();
    // one slice fails after writing its candidates; the other commits its own
    let slices = 0;
    const stop = new Error('a slice failed');
    await expect(
      runDiff(run.db, run.config, first.batchId, 'batch', async (point) => {
        if (point === 'slice' && ++slices === 1) throw stop;
      }),
    ).rejects.toBe(stop);
    expect(slices).toBe(2);
    const batch = await run.db('batch').where({ id: first.batchId }).first('status', 'candidates_round');
    expect(batch).toEqual({ status: 'running', candidates_round: null });
    expect(await run.db('patch').where({ batch_id: first.batchId }).count({ n: '*' })).toEqual([{ n: '0' }]);

    // again: the half-written candidates are replaced, not numbered in with the new ones
    const summary = await runDiff(run.db, run.config, first.batchId);
    await expectAsReference(run, first.batchId, summary, expected);
  });

  it('a slice left running by a diff that lost its connection commits nothing the next diff keeps', async () => {
    const { expected, run, first } = await takenBack();
    // attempt A: its first slice holds, its candidates written and not committed, until let go
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    let reached!: () => void;
    const atSlice = new Promise<void>((resolve) => (reached = resolve));
    let slices = 0;
    const a = runDiff(run.db, run.config, first.batchId, 'batch', async (point) => {
      if (point === 'slice' && ++slices === 1) {
        reached();
        await held;
      }
    }).then(
      () => null,
      (err: unknown) => err,
    );
    await atSlice;
    // A's own transaction loses its connection: the backend that exported the slices' snapshot and holds
    // this schema's batch row, ended by the server (the worker's process and the slice's connection live on)
    const main = await run.db.raw(
      `select a.pid from pg_stat_activity a
       where a.state = 'idle in transaction' and a.query like '%pg_export_snapshot%'
         and exists (select 1 from pg_locks l where l.pid = a.pid and l.relation = 'batch'::regclass)`,
    );
    expect(main.rows).toHaveLength(1);
    await run.db.raw('select pg_terminate_backend(?)', [main.rows[0].pid]);

    // attempt B takes the batch over; its delete of the old candidates waits for A's slice to end
    const b = runDiff(run.db, run.config, first.batchId);
    const early = await Promise.race([
      b.then(() => 'finished'),
      new Promise((resolve) => setTimeout(() => resolve('waiting'), 3000)),
    ]);
    letGo();
    const summary = await b;
    expect(early).toBe('waiting');
    expect(await a).toBeInstanceOf(Error);
    await expectAsReference(run, first.batchId, summary, expected);
  });
});
