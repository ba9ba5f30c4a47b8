import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sweepOverdue } from '../store/overdue.ts';
import { yearlyTownReport } from '../store/reports.ts';
import { workflowApi } from './helpers/workflow-api.ts';

/** The yearly register (issue 30): the months' reports summed, areas in m² and 亩, 处置, 腾出土地 and 问责. */
describe('the yearly register', () => {
  const h = workflowApi();
  const { call } = h;

  /** March: 0005 demolished and closed, 0002 fined and left rectifying past its deadline, 0001 a false change, 0004 dismissed; April: the rebuilt patch, untouched. */
  async function year() {
    const { code: rebuilt } = await h.rebuiltPatch(); // walks 0005 to closed (demolish), then the April batch
    for (const [who, code, action, body] of [
      ['ana', '350206-202403-0002', 'dispatch', {}],
      ['dianqian', '350206-202403-0002', 'verify', { result: 'illegal', violation: 'construction' }],
      ['dianqian', '350206-202403-0002', 'rectify', { measure: 'fine_legalise' }],
      ['ana', '350206-202403-0001', 'dispatch', {}],
      ['heshan', '350206-202403-0001', 'verify', { result: 'false_change' }],
      ['ana', '350206-202403-0004', 'dismiss', { reason: 'cloud' }],
    ] as const) {
      if (action === 'verify' && body.result === 'illegal') await h.photo(who, code, 'site.jpg');
      const r = await call(who, 'POST', `/api/patches/${code}/actions/${action}`, body);
      expect(r.statusCode, `${code} ${action}: ${r.body}`).toBe(200);
    }
    h.today = '2024-06-03'; // long past 0002's rectification deadline
    await sweepOverdue(h.run.db, h.env);
    return rebuilt;
  }

  it("equals the months' reports summed, town by town, and counts the zero-growth months", async () => {
    await year();
    const rep = (await call('sup', 'GET', '/api/reports/yearly?year=2024')).json();
    expect(rep.months).toEqual(['2024-03', '2024-04']);
    const monthly = await Promise.all(
      rep.months.map(async (m: string) => (await call('sup', 'GET', `/api/reports/monthly?month=${m}`)).json()),
    );
    const summed = [
      'new_patches',
      'verified',
      'unverified',
      'unverified_overdue',
      'illegal',
      'rectified',
      'overdue',
      'escalated',
      'illegal_closed',
    ];
    for (const town of rep.towns) {
      const months = monthly.map((m) => m.towns.find((t: { town_code: string }) => t.town_code === town.town_code));
      for (const k of summed)
        expect(town[k], `${town.town_code} ${k}`).toBe(
          months.reduce((s: number, t: Record<string, number>) => s + t[k], 0),
        );
      expect(town.new_area_m2).toBeCloseTo(
        months.reduce((s: number, t: { new_area_m2: number }) => s + t.new_area_m2, 0),
        0,
      );
      expect(town.zero_growth_months).toBe(months.filter((t: { zero_growth: boolean }) => t.zero_growth).length);
      expect(town.months).toBe(2);
    }
    for (const k of summed.filter((x) => x !== 'illegal_closed'))
      expect(rep.city[k], `city ${k}`).toBe(monthly.reduce((s, m) => s + m.city[k], 0));
    expect(rep.city.towns).toBe(rep.towns.length);
  }, 180_000);

  it('gives 处置 and 腾出土地 in m² and 亩, and refers by the bureau’s 问责 rule', async () => {
    const rebuilt = await year();
    const area = async (code: string) => (await call('sup', 'GET', `/api/patches/${code}`)).json().area_m2 as number;
    const [demolished, fined] = [await area('350206-202403-0005'), await area('350206-202403-0002')];
    const rep = (await call('sup', 'GET', '/api/reports/yearly?year=2024')).json();
    const dq = rep.towns.find((t: { town_code: string }) => t.town_code === '350206001');
    const hs = rep.towns.find((t: { town_code: string }) => t.town_code === '350206002');
    expect(dq).toMatchObject({
      illegal: 2,
      rectified: 1,
      overdue_unrectified: 1,
      zero_growth_months: 0,
      zero_growth_year: false,
    });
    expect(dq.rectified_m2).toBeCloseTo(demolished, 0); // 处置: only the one rectified and reported (the fine still rectifying)
    expect(dq.freed_m2).toBeCloseTo(demolished, 0); // 腾出土地: demolished
    expect(dq.illegal_m2).toBeCloseTo(demolished + fined, 0);
    expect(dq.freed_mu).toBeCloseTo(dq.freed_m2 / 666.667, 2);
    expect(dq).toMatchObject({
      referred: true,
      reasons: [{ criterion: 'overdueUnrectified', count: 1, threshold: 1 }],
    });
    // 禾山: its March patches verified false or dismissed; April's (if any there) still unverified
    expect(hs).toMatchObject({ illegal: 0, referred: false, reasons: [] });
    expect(rep.city).toMatchObject({ referred_towns: 1 });
    expect(rebuilt).toMatch(/^350206-202404-/);

    // another city's rule: two months without zero growth, or any escalation
    const rule = { overdueUnrectified: 0, escalations: 1, monthsWithoutZeroGrowth: 2 };
    const other = await yearlyTownReport(h.run.db, '2024', rule);
    expect(other.towns.find((t) => t.town_code === '350206001')).toMatchObject({
      referred: true,
      reasons: [
        { criterion: 'escalations', count: 1, threshold: 1 }, // 0002, listed for supervision by the sweep
        { criterion: 'monthsWithoutZeroGrowth', count: 2, threshold: 2 },
      ],
    });
    expect(other.towns.find((t) => t.town_code === '350206002')).toMatchObject({ referred: false });

    // a year nothing was processed in: every town, zeros, no referral, said so
    const empty = (await call('sup', 'GET', '/api/reports/yearly?year=2023')).json();
    expect(empty.months).toEqual([]);
    expect(
      empty.towns.every(
        (t: { new_patches: number; referred: boolean; zero_growth_year: boolean }) =>
          t.new_patches === 0 && !t.referred && !t.zero_growth_year,
      ),
    ).toBe(true);
    expect((await call('sup', 'GET', '/api/reports/yearly?year=24')).statusCode).toBe(400);
  }, 180_000);

  it('as a workbook and a PDF to file, with the definitions and the rule in words', async () => {
    await year();
    const dir = mkdtempSync(join(tmpdir(), 'tuban-yearly-'));
    const xlsx = await call('sup', 'GET', '/api/reports/yearly.xlsx?year=2024', undefined, {
      'accept-language': 'zh-CN',
    });
    expect(xlsx.statusCode).toBe(200);
    expect(xlsx.headers['content-disposition']).toContain(encodeURIComponent('2024_两违图斑年度台账.xlsx'));
    writeFileSync(join(dir, 'y.xlsx'), xlsx.rawPayload);
    const read = execFileSync(
      '/usr/bin/python3',
      [
        '-c',
        `import openpyxl,json,sys; ws=openpyxl.load_workbook(sys.argv[1]).active; print(json.dumps([[c for c in r] for r in ws.iter_rows(values_only=True)], ensure_ascii=False))`,
        join(dir, 'y.xlsx'),
      ],
      { encoding: 'utf8' },
    );
    const rows = JSON.parse(read) as (string | number | null)[][];
    expect(rows[0][0]).toBe('2024 年度两违图斑台账（分镇街）');
    expect(String(rows[1][0])).toContain('统计月份（2 个）：2024-03, 2024-04');
    expect(String(rows[3][0])).toContain('问责移送规则：违法图斑逾期未整改 1 个及以上');
    const head = rows[4];
    expect(head).toContain('处置面积（平方米）');
    expect(head).toContain('腾出土地面积（亩）');
    const dq = rows.find((r) => r[0] === '350206001')!;
    expect(dq[head.indexOf('移送问责')]).toBe('是');
    expect(rows.at(-1)![1]).toBe('全市');

    const pdf = await call('sup', 'GET', '/api/reports/yearly.pdf?year=2024', undefined, {
      'accept-language': 'zh-CN',
    });
    expect(pdf.statusCode).toBe(200);
    writeFileSync(join(dir, 'y.pdf'), pdf.rawPayload);
    expect(execFileSync('pdfinfo', [join(dir, 'y.pdf')], { encoding: 'utf8' })).toMatch(/Pages:\s+1\n/);
    const text = execFileSync('pdftotext', ['-layout', join(dir, 'y.pdf'), '-'], { encoding: 'utf8' });
    expect(text).toContain('年度两违图斑台账');
    expect(text).toContain('殿前街道');
    expect(text).toContain('全市');
  }, 180_000);
});
