import ExcelJS from 'exceljs';
import { addWorkingDays, type WorkCalendar } from '../workflow/calendar.ts';
import { FIELDS, type ExportRecord } from './fields.ts';
import { neutralise } from './write.text.ts';

const RED = 'FFF8CBAD';
const AMBER = 'FFFFE699';

/** Columns that hold days: written as dates, so a register can sort and filter them as dates. */
const DATE_FIELDS = new Set(['before_dt', 'after_dt', 'verify_due', 'rect_due', 'overdue_dt']);
const asDate = (v: unknown) =>
  typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v) ? new Date(`${v}T00:00:00Z`) : v;

/**
 * The patch list as a workbook that files into a yearly register: one sheet per town (named by the
 * town), a title row, Chinese headings with an autofilter, frozen above the rows, days as dates,
 * numbers to 0.01 at most, area totals, the running deadline highlighted — red when overdue, amber
 * when due within 3 working days — and pages set up landscape on A4, one page wide.
 */
export async function toXlsx(
  records: ExportRecord[],
  cal: WorkCalendar,
  today: string,
  title: string,
): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  wb.creator = 'tuban';
  wb.title = title;
  const soon = addWorkingDays(cal, today, 3);
  const byTown = new Map<string, ExportRecord[]>();
  for (const r of records)
    byTown.set(String(r.town ?? '未落入镇街'), [...(byTown.get(String(r.town ?? '未落入镇街')) ?? []), r]);
  if (byTown.size === 0) byTown.set('无图斑', []);
  for (const [town, rows] of byTown) {
    const ws = wb.addWorksheet(town.slice(0, 31).replace(/[\\/?*[\]:]/g, '_'), {
      views: [{ state: 'frozen', ySplit: 2 }],
      pageSetup: { paperSize: 9, orientation: 'landscape', fitToPage: true, fitToWidth: 1, fitToHeight: 0 },
    });
    ws.columns = FIELDS.map((f) => ({
      key: f.name,
      width: Math.max(10, f.alias.length * 2 + 2),
      style: DATE_FIELDS.has(f.name) ? { numFmt: 'yyyy-mm-dd' } : f.type === 'real' ? { numFmt: '0.00' } : {},
    }));
    // row 1: what the sheet is; row 2: the headings, filterable
    ws.addRow([`${title} · ${town} · 导出于 ${today}`]).font = { bold: true, size: 14 };
    ws.mergeCells(1, 1, 1, FIELDS.length);
    ws.addRow(FIELDS.map((f) => f.alias)).font = { bold: true };
    ws.autoFilter = { from: { row: 2, column: 1 }, to: { row: 2, column: FIELDS.length } };
    for (const r of rows) {
      const row = ws.addRow(
        Object.fromEntries(
          FIELDS.map((f) => {
            const v = r[f.name];
            // text that reads as a formula keeps a leading apostrophe, as in the CSV (write.text.ts)
            return [f.name, DATE_FIELDS.has(f.name) ? asDate(v) : typeof v === 'string' ? neutralise(v) : v];
          }),
        ),
      );
      const due = r.status_cd === 'dispatched' ? r.verify_due : r.status_cd === 'rectifying' ? r.rect_due : null;
      if (due) {
        const colour = String(due) < today ? RED : String(due) <= soon ? AMBER : null;
        if (colour) {
          const cell = row.getCell(r.status_cd === 'dispatched' ? 'verify_due' : 'rect_due');
          cell.fill = { type: 'pattern', pattern: 'solid', fgColor: { argb: colour } };
        }
      }
    }
    const total = ws.addRow({
      code: '合计',
      area_m2: Math.round(rows.reduce((s, r) => s + Number(r.area_m2 ?? 0), 0) * 100) / 100,
      area_mu: Math.round(rows.reduce((s, r) => s + Number(r.area_mu ?? 0), 0) * 100) / 100,
    });
    total.font = { bold: true };
  }
  return Buffer.from(await wb.xlsx.writeBuffer());
}
