import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addEvidence } from '../store/evidence.ts';
import { objectStore } from '../store/objects.ts';
import { userByName } from '../store/users.ts';
import { hostileServer, JPEG } from './helpers/hostile.ts';

/** Issue 29 (Low): evidence racing a close, and a refused upload's file. Replayed on real PostGIS. */
describe('security: evidence against the case it belongs to', () => {
  const h = hostileServer();
  const { call } = h;

  it('twenty uploads racing the close: none lands on the case after it closed', async () => {
    // the close sent as the uploads are under way, a little later each time
    for (const [code, delayMs] of [
      ['350206-202403-0002', 1],
      ['350206-202403-0005', 5],
    ] as const) {
      await h.toIllegal(code, 'dianqian');
      expect(
        (await call('dianqian', 'POST', `/api/patches/${code}/actions/rectify`, { measure: 'demolish' })).statusCode,
      ).toBe(200);
      const upload = (i: number) =>
        call('dianqian', 'POST', `/api/patches/${code}/evidence?filename=site-${i}.jpg`, JPEG, {
          'content-type': 'image/jpeg',
        });
      expect((await upload(0)).statusCode).toBe(201);
      expect((await call('dianqian', 'POST', `/api/patches/${code}/actions/report_rectified`, {})).statusCode).toBe(
        200,
      );
      const uploads = Array.from({ length: 20 }, (_, i) => upload(i + 1));
      await new Promise((r) => setTimeout(r, delayMs));
      const closed = await call('sup', 'POST', `/api/patches/${code}/actions/close`, {});
      const done = await Promise.all(uploads);
      expect(closed.statusCode, closed.body).toBe(200);
      // each upload either came before the close (201) or was refused for the finished case (409)
      expect(done.every((u) => [201, 409].includes(u.statusCode))).toBe(true);
      // in the case's history (ids in commit order under the row lock), every evidence comes before the close
      const { id } = await h.run.db('patch').where({ code }).first('id');
      const history = await h.run.db('patch_event').where({ patch_id: id }).orderBy('id').pluck('type');
      expect(history.at(-1), `${code}: ${history.join(' ')}`).toBe('close');
      // the site photo of the verdict, the first of the result, and those that came before the close
      expect(history.filter((t) => t === 'evidence_added')).toHaveLength(
        2 + done.filter((u) => u.statusCode === 201).length,
      );
    }
  }, 120_000);

  it('an upload that arrives while a close is being committed waits for it, and is refused', async () => {
    const code = '350206-202403-0001';
    await h.toIllegal(code, 'heshan');
    expect(
      (await call('heshan', 'POST', `/api/patches/${code}/actions/rectify`, { measure: 'demolish' })).statusCode,
    ).toBe(200);
    // a close in flight: the patch row updated in a transaction not yet committed
    const trx = await h.run.db.transaction();
    await trx('patch').where({ code }).update({ status: 'closed', closed_at: trx.fn.now() });
    const pending = call('heshan', 'POST', `/api/patches/${code}/evidence?filename=late.jpg`, JPEG, {
      'content-type': 'image/jpeg',
    });
    await new Promise((r) => setTimeout(r, 500));
    await trx.commit();
    const late = await pending;
    expect(late.statusCode, late.body).toBe(409);
    // only the site photo of the verdict, from before
    expect(
      await h.run
        .db('evidence')
        .join('patch', 'patch.id', 'evidence.patch_id')
        .where('patch.code', code)
        .pluck('evidence.filename'),
    ).toEqual(['site.jpg']);
  }, 120_000);

  it('a refused upload leaves no file: the rows are written before the file', async () => {
    const bytes = Buffer.concat([JPEG, Buffer.from('unique tail for this test')]);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const store = objectStore(h.run.config);
    const file = store.locate(`evidence/${sha.slice(0, 2)}/${sha}.jpg`);
    const user = await userByName(h.run.db, 'dianqian');
    // past the API's own check (a NUL is refused at the door): the row itself is refused by PostgreSQL
    await expect(
      h.run.db.transaction((trx) =>
        addEvidence(trx, store, 1 << 20, user, '350206-202403-0003', { filename: 'a\u0000b.jpg', bytes }),
      ),
    ).rejects.toThrow();
    expect(existsSync(file)).toBe(false);
    // through the API: refused at the door, nothing written either
    const r = await call('dianqian', 'POST', '/api/patches/350206-202403-0003/evidence?filename=a%00b.jpg', bytes, {
      'content-type': 'image/jpeg',
    });
    expect(r.statusCode).toBe(400);
    expect(existsSync(file)).toBe(false);
    // and a good one is stored
    const ok = await call('dianqian', 'POST', '/api/patches/350206-202403-0003/evidence?filename=ok.jpg', bytes, {
      'content-type': 'image/jpeg',
    });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(existsSync(file)).toBe(true);
  }, 120_000);
});
