import { describe, expect, it } from 'vitest';
import { OWN, workflowApi } from './helpers/workflow-api.ts';

/**
 * The working-day calendar as a rule (issue 30): a deadline counted past its last year is marked
 * provisional everywhere a patch is; health says which years it covers and warns near its end; an
 * admin adds the next year from its notice and every open deadline it changes is recounted, with an
 * event that keeps both dates.
 */
describe('the working-day calendar past its last year', () => {
  const h = workflowApi();
  const { call } = h;
  // a year as a notice would publish it, for the test only: 2027's real one is not out yet
  const y2027 = {
    year: 2027,
    source: 'test notice: 1–3 January 2027 off',
    holidays: ['2027-01-01', '2027-01-02', '2027-01-03'],
    workdays: [],
  };

  it('marks a deadline in 2027 provisional, warns, and recounts it when 2027 is added', async () => {
    h.today = '2026-12-28'; // a Monday: + 5 working days, weekends alone, is Mon 4 January 2027
    const dispatched = (await call('ana', 'POST', `/api/patches/${OWN}/actions/dispatch`, {})).json();
    expect(dispatched).toMatchObject({
      verify_due: '2027-01-04',
      verify_due_provisional: true,
      rectify_due_provisional: false,
    });
    const list = (await call('ana', 'GET', '/api/patches?month=2024-03&status=dispatched')).json();
    expect(list.patches.find((p: { code: string }) => p.code === OWN)).toMatchObject({ verify_due_provisional: true });
    const todo = (await call('dianqian', 'GET', '/api/todo')).json();
    expect(todo.patches.find((p: { code: string }) => p.code === OWN)).toMatchObject({
      due: '2027-01-04',
      due_provisional: true,
    });
    const csv = (await call('ana', 'GET', '/api/export?month=2024-03&format=csv')).body;
    const [head, ...rows] = csv
      .replace(/^\uFEFF/, '')
      .trim()
      .split(/\r?\n/);
    expect(rows.find((r) => r.startsWith(OWN))!.split(',')[head.split(',').indexOf('期限暂定')]).toBe('是');

    const health = (await call(null, 'GET', '/api/health')).json();
    expect(health.calendar).toMatchObject({ years: [2024, 2026], covered_until: '2026-12-31' });
    expect(health.calendar.warning).toMatch(/ends 2026-12-31 \(3 days left\): add 2027/);
    expect((await call('ana', 'GET', '/api/calendar')).json()).toMatchObject({ provisional_deadlines: 1, added: [] });

    // only an admin adds a year, and only one whose dates are its own
    expect((await call('sup', 'POST', '/api/calendar/years', y2027)).statusCode).toBe(403);
    const bad = await call('adm', 'POST', '/api/calendar/years', { ...y2027, holidays: ['2026-12-31'] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/2026-12-31 not in 2027/);
    const gap = await call('adm', 'POST', '/api/calendar/years', { ...y2027, year: 2028, holidays: ['2028-01-01'] });
    expect(gap.statusCode).toBe(400);
    expect(gap.json().message).toMatch(/add 2027 first/);

    const added = await call('adm', 'POST', '/api/calendar/years', y2027);
    expect(added.statusCode, added.body).toBe(200);
    expect(added.json()).toMatchObject({
      years: [2024, 2027],
      recounted: [{ code: OWN, field: 'verify_due', from_due: '2027-01-04', to_due: '2027-01-05' }],
    });
    const p = (await call('ana', 'GET', `/api/patches/${OWN}`)).json();
    expect(p).toMatchObject({ verify_due: '2027-01-05', verify_due_provisional: false });
    expect(p.history.at(-1)).toMatchObject({
      type: 'deadline_recounted',
      actor: 'adm',
      detail: { field: 'verify_due', from_due: '2027-01-04', to_due: '2027-01-05', calendar_year: 2027 },
    });
    expect((await call(null, 'GET', '/api/health')).json().calendar).toMatchObject({
      years: [2024, 2027],
      warning: null,
    });
    // the request is in the audit, as every change is
    const audit = await h.run.db('audit_event').where({ path: '/api/calendar/years', status: 200 });
    expect(audit).toHaveLength(1);
  });
});
