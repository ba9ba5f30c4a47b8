import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exportPatches, streamCsv } from '../export/patches.ts';
import { createUser } from '../store/users.ts';
import { testWorkflowEnv } from './helpers/api.ts';
import { runBatch } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';

/**
 * Exports while the month is being worked: a CSV download abandoned while PostgreSQL still makes it is
 * stopped in the database, and a town's package is one moment's records, its CSV included. Each scenario
 * holds a table's lock from another transaction so the export waits at a known point.
 */
describe('exports while the month is worked', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  const env = testWorkflowEnv(() => '2024-03-20');

  beforeAll(async () => {
    run = await freshRun(fixturesDir);
    await runBatch(run.db, run.config, '2024-03', '2024-02');
  });
  afterAll(async () => cleanup(run.db, run.config));

  /** Another transaction holding `table` exclusively (so reads of it wait), and how many wait for it. */
  async function holding(table: string): Promise<{ waiting: () => Promise<number>; release: () => Promise<void> }> {
    const locker: Knex.Transaction = await run.db.transaction();
    await locker.raw(`lock table ${table} in access exclusive mode`);
    const { rows } = await run.db.raw(`select ?::regclass::oid as oid`, [table]);
    return {
      waiting: async () =>
        (
          await run.db.raw(
            `select count(*)::int as n from pg_locks
             where relation = ? and not granted
               and database = (select oid from pg_database where datname = current_database())`,
            [rows[0].oid],
          )
        ).rows[0].n,
      release: async () => void (await locker.rollback()),
    };
  }

  it('stops the CSV in the database when its download is abandoned, while the statement still waits', async () => {
    const lock = await holding('patch');
    try {
      const client = new AbortController();
      const csv = streamCsv(run.db, env, { month: '2024-03', signal: client.signal }, async () => {});
      await expect.poll(lock.waiting, { timeout: 30_000 }).toBe(1);
      client.abort(new Error('the client went away'));
      // settled with the abort's reason while the lock is still held: the statement was cancelled, not waited out
      const settled = await Promise.race([
        csv.then(
          () => 'finished',
          (e: Error) => e.message,
        ),
        sleep(15_000, 'still running'),
      ]);
      expect(settled).toBe('the client went away');
      expect(await lock.waiting()).toBe(0);
      // one gone at once, while the export's transaction is still beginning, is stopped as well
      const hasty = new AbortController();
      const early = streamCsv(run.db, env, { month: '2024-03', signal: hasty.signal }, async () => {});
      setImmediate(() => hasty.abort(new Error('gone at once')));
      expect(
        await Promise.race([
          early.then(
            () => 'finished',
            (e: Error) => e.message,
          ),
          sleep(15_000, 'still running'),
        ]),
      ).toBe('gone at once');
      expect(await lock.waiting()).toBe(0);
    } finally {
      await lock.release();
    }
    // the pool's connections are clean: the next CSV is whole
    let text = '';
    await streamCsv(run.db, env, { month: '2024-03' }, async (c) => void (text += c.toString()));
    expect(text.trim().split('\r\n')).toHaveLength(6);
  });

  it("reads a town package's records, its CSV, its photos and its chips' plans in one snapshot: a note, a photo or a move made meanwhile is in none", async () => {
    const code = '350206-202403-0003';
    const outPath = join(run.config.dataDir, 'snapshot.zip');
    const clerk = await createUser(run.db, { username: 'snapshot-clerk', role: 'town', townCode: '350206001' });
    const photo = join(run.config.dataDir, 'stamped-during-export.jpg');
    writeFileSync(
      photo,
      await sharp({ create: { width: 64, height: 48, channels: 3, background: '#7a6' } })
        .jpeg()
        .toBuffer(),
    );
    // the package waits on the town layer after it has read the month's records
    const lock = await holding('reference_feature');
    let zip: Promise<unknown>;
    try {
      zip = exportPatches(run.db, env, { month: '2024-03', format: 'zip', outPath, storageSrid: 4548 });
      zip.catch(() => {});
      await expect.poll(lock.waiting, { timeout: 30_000 }).toBe(1);
      const { id } = await run.db('patch').where({ code }).first('id');
      await run.db('patch_event').insert({
        patch_id: id,
        actor: 'snapshot-clerk',
        type: 'note',
        detail: JSON.stringify({ text: '写于导出之中' }),
      });
      await run.db('evidence').insert({
        patch_id: id,
        filename: 'site.jpg',
        content_type: 'image/jpeg',
        bytes: 1,
        sha256: '0'.repeat(64),
        stored_as: photo,
        stamped_as: photo,
        uploaded_by: clerk.id,
      });
      // and the patch moved 50 km east, off the month's imagery
      await run.db.raw(
        `update patch set geom = ST_Translate(geom, 50000, 0), centroid = ST_Translate(centroid, 50000, 0)
         where code = ?`,
        [code],
      );
    } finally {
      await lock.release();
    }
    await zip;
    const read = (member: string) =>
      execFileSync(
        'python3',
        [
          '-c',
          'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = [m for m in z.namelist() if m.endswith(sys.argv[2])]; sys.stdout.write(z.read(n[0]).decode("utf-8-sig"))',
          outPath,
          member,
        ],
        { encoding: 'utf8' },
      );
    const photos = () =>
      execFileSync(
        'python3',
        ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', outPath],
        { encoding: 'utf8' },
      )
        .split('\n')
        .filter((m) => m.includes('/照片/') && m.includes(code));
    // the town's sheets: three patches, each with its before, after and overview chips as they stood, no photo
    // (the JPEG images of its PDF)
    const chips = () => {
      const pdf = join(run.config.dataDir, 'snapshot.pdf');
      execFileSync('python3', [
        '-c',
        'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = [m for m in z.namelist() if m.endswith(sys.argv[2])]; open(sys.argv[3], "wb").write(z.read(n[0]))',
        outPath,
        '350206001.pdf',
        pdf,
      ]);
      return execFileSync('pdfimages', ['-list', pdf], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .slice(2)
        .filter((l) => l.trim().split(/\s+/)[8] === 'jpeg').length;
    };
    expect(chips()).toBe(3 * 3);
    expect(photos()).toEqual([]);
    const csv = read('350206001.csv').trim().split('\r\n');
    const header = csv[0].split(',');
    const row = csv.find((l) => l.startsWith(code))!.split(',');
    const noteIn = (geojson: string) =>
      (JSON.parse(geojson) as { features: { id: string; properties: { note: string | null } }[] }).features.find(
        (f) => f.id === code,
      )!.properties.note;
    expect(row[header.indexOf('备注')]).toBe('');
    expect(noteIn(read('350206001.geojson'))).toBeNull();
    // and the next package has it, in both
    await exportPatches(run.db, env, { month: '2024-03', format: 'zip', outPath, storageSrid: 4548 });
    const after = read('350206001.csv').trim().split('\r\n');
    expect(after.find((l) => l.startsWith(code))!.split(',')[header.indexOf('备注')]).toBe('写于导出之中');
    expect(noteIn(read('350206001.geojson'))).toBe('写于导出之中');
    expect(photos()).toHaveLength(1);
    // the moved patch's sheet has no imagery around it now, and shows the photo
    expect(chips()).toBe(2 * 3 + 1);
  });
});
