import { describe, expect, it } from 'vitest';
import { hostileServer, OWN } from './helpers/hostile.ts';

/**
 * The security review's findings (issue 17) on the audit trail (bodies, transactions, bounded summaries), each replayed as an attack against
 * `tuban serve` on real PostGIS: these failed before the fixes and guard them now.
 */
describe('security: the audit trail', () => {
  const h = hostileServer();
  const { call, logged } = h;

  /** The audit rows and patch events of one patch's notes path, newest last. */
  async function trail(code: string) {
    const audit = await h.run.db('audit_event').where('path', `/api/patches/${code}/notes`).orderBy('id');
    const events = await h.run
      .db('patch_event as e')
      .join('patch as p', 'p.id', 'e.patch_id')
      .where({ 'p.code': code, 'e.type': 'note' })
      .orderBy('e.id')
      .select('e.*');
    return { audit, events };
  }

  it('finding 5 (Medium): a deeply nested body is audited like any other, with its change', async () => {
    // as deep as a note's 16 KB allows: parsed, summarised, kept
    const before = await trail(OWN);
    const deep = `{"text":"现场已拆除一半","extra":${'['.repeat(7_000)}${']'.repeat(7_000)}}`;
    const r = await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, deep, { 'content-type': 'application/json' });
    expect(r.statusCode, r.body).toBe(201);
    const after = await trail(OWN);
    expect(after.events.length).toBe(before.events.length + 1);
    expect(after.audit.length).toBe(before.audit.length + 1);
    const row = after.audit.at(-1);
    expect(row).toMatchObject({ username: 'dianqian', method: 'POST', status: 201 });
    expect(row.detail.body.fields).toEqual({ text: '现场已拆除一半', extra: { type: 'array', items: 1 } });
  });

  it('finding 5: a body nested a million deep is refused by its size before it is parsed, and the refusal audited', async () => {
    const before = await trail(OWN);
    const deep = `{"text":"现场已拆除一半","extra":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`;
    const r = await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, deep, { 'content-type': 'application/json' });
    expect(r.statusCode, r.body).toBe(413);
    expect(JSON.parse(r.body).message).toContain('16 KB');
    await expect.poll(async () => (await trail(OWN)).audit.length, { timeout: 30_000 }).toBe(before.audit.length + 1);
    const after = await trail(OWN);
    expect(after.events.length).toBe(before.events.length); // no note
    expect(after.audit.at(-1)).toMatchObject({ username: 'dianqian', method: 'POST', status: 413 });
    expect(JSON.stringify(after.audit.at(-1).detail).length).toBeLessThan(12_000);
  });

  it('finding 5: the audit row and the change are one transaction: no row, no change', async () => {
    const marker = `audit-refused-${process.pid}-${Date.now()}`;
    // the database refuses this one audit row (as a full disk or a lost connection would)
    await h.run.db.raw(
      `alter table audit_event add constraint "${marker}" check (detail::text not like '%${marker}%')`,
    );
    try {
      const before = await trail(OWN);
      const r = await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, { text: marker });
      expect(r.statusCode).toBe(500);
      const after = await trail(OWN);
      expect(after.events.length).toBe(before.events.length); // the note went with its audit row
      expect(after.audit.length).toBe(before.audit.length);
      // the refusal's own row, written just after the response, could not be written either, and the log says so
      await expect
        .poll(() => logged.some((l) => l.event === 'Audit:WriteFailed' && String(l.path).includes(OWN)), {
          timeout: 60_000,
        })
        .toBe(true);
    } finally {
      await h.run.db.raw(`alter table audit_event drop constraint "${marker}"`);
    }
    expect(logged.filter((l) => l.event === 'Audit:NotInTransaction')).toEqual([]);
  });

  it('finding 8 (Medium): the audit keeps a bounded summary, never the body', async () => {
    // each as large as a note takes (16 KB): a long field, many fields, a secret
    const junk = 'x'.repeat(15_000);
    const many = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`f${i}`, i]));
    for (const body of [
      { text: 'ok', junk },
      { text: 'ok', ...many },
      { text: 'ok', password: 'hunter2-secret' },
    ]) {
      const before = await trail(OWN);
      const r = await call('dianqian', 'POST', `/api/patches/${OWN}/notes`, body);
      expect(r.statusCode, r.body.slice(0, 200)).toBe(201);
      const row = (await trail(OWN)).audit.at(-1);
      expect(Number(row.id)).toBeGreaterThan(Number(before.audit.at(-1)?.id ?? 0));
      const stored = JSON.stringify(row.detail);
      expect(stored.length).toBeLessThan(12_000);
      expect(stored).not.toContain('hunter2');
    }
    const rows = (await trail(OWN)).audit.slice(-3).map((r) => r.detail.body);
    expect(rows[0].fields.junk).toMatchObject({ chars: 15_000, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(rows[1].more_fields).toBe(1001 - 30);
    expect(rows[2].fields.password).toEqual({ redacted: true });
  });
});
