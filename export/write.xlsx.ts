import ExcelJS from 'exceljs';
import { addWorkingDays, type WorkCalendar } from '../workflow/calendar.ts';
import { FIELDS, type ExportRecord } from './fields.ts';

const RED = 'FFF8CBAD';
const AMBER = 'FFFFE699';

/**
 * The patch list as a workbook: one sheet per town (named by the town), Chinese headings, frozen
 * header row, an area total, and the running deadline highlighted — red when overdue, amber when
 * due within 3 working days.
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
      views: [{ state: 'frozen', ySplit: 1 }],
    });
    ws.columns = FIELDS.map((f) => ({ header: f.alias, key: f.name, width: Math.max(10, f.alias.length * 2 + 2) }));
    ws.getRow(1).font = { bold: true };
    for (const r of rows) {
      const row = ws.addRow(Object.fromEntries(FIELDS.map((f) => [f.name, r[f.name]])));
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
      area_m2: rows.reduce((s, r) => s + Number(r.area_m2 ?? 0), 0),
      area_mu: Math.round(rows.reduce((s, r) => s + Number(r.area_mu ?? 0), 0) * 1000) / 1000,
    });
    total.font = { bold: true };
  }
  return Buffer.from(await wb.xlsx.writeBuffer());
}
