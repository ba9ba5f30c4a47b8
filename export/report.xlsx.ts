import ExcelJS from 'exceljs';
import { neutralise } from './write.text.ts';

/** A report as a table: what it is, the rules it follows in words, its columns, its rows and a totals row. */
export interface ReportTable {
  title: string;
  /** Lines under the title: the ranking's rule, what a column counts. */
  notes: string[];
  columns: { heading: string; width?: number; numFmt?: string }[];
  rows: (string | number | null)[][];
  totals?: (string | number | null)[];
}

/**
 * A report (the month's town ranking, the yearly register) as a workbook a bureau files: one sheet, a
 * title row, the rule in words, bold headings with an autofilter, frozen above the rows, the totals in
 * bold, landscape A4 one page wide.
 */
export async function reportXlsx(t: ReportTable): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  wb.creator = 'tuban';
  wb.title = t.title;
  const head = 2 + t.notes.length;
  const ws = wb.addWorksheet(t.title.slice(0, 31).replace(/[\\/?*[\]:]/g, '_'), {
    views: [{ state: 'frozen', ySplit: head }],
    pageSetup: { paperSize: 9, orientation: 'landscape', fitToPage: true, fitToWidth: 1, fitToHeight: 0 },
  });
  ws.columns = t.columns.map((c) => ({
    width: c.width ?? Math.max(8, c.heading.length * 2 + 2),
    style: c.numFmt ? { numFmt: c.numFmt } : {},
  }));
  ws.addRow([t.title]).font = { bold: true, size: 14 };
  ws.mergeCells(1, 1, 1, t.columns.length);
  for (const [i, note] of t.notes.entries()) {
    const row = ws.addRow([note]);
    row.alignment = { wrapText: true, vertical: 'top' };
    row.height = Math.max(15, Math.ceil(note.length / 90) * 15);
    ws.mergeCells(2 + i, 1, 2 + i, t.columns.length);
  }
  ws.addRow(t.columns.map((c) => c.heading)).font = { bold: true };
  ws.autoFilter = { from: { row: head, column: 1 }, to: { row: head, column: t.columns.length } };
  for (const r of t.rows) ws.addRow(r.map((v) => (typeof v === 'string' ? neutralise(v) : v)));
  if (t.totals) ws.addRow(t.totals).font = { bold: true };
  return Buffer.from(await wb.xlsx.writeBuffer());
}
