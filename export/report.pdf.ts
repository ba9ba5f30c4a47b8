import PDFDocument from 'pdfkit';
import { cjkFamily } from './fonts.ts';
import type { ReportTable } from './report.xlsx.ts';

const MARGIN = 28;
const FONT_PT = 7;
const PAD = 2;

/**
 * A report (the yearly register) as a PDF a bureau prints and files: A4 landscape, the title, the rules
 * in words, then the table with its headings repeated on every page and the totals in a shaded last
 * row. Column widths follow the headings and the longest value, scaled to the page width.
 */
export async function reportPdf(t: ReportTable, fontPath: string): Promise<Buffer> {
  const doc = new PDFDocument({
    size: 'A4',
    layout: 'landscape',
    margin: MARGIN,
    info: { Title: t.title, Creator: 'tuban' },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    doc.on('end', resolve);
    doc.on('error', reject);
  });
  doc.registerFont('cjk', fontPath, cjkFamily(fontPath));
  doc.font('cjk');
  const width = doc.page.width - 2 * MARGIN;
  const bottom = doc.page.height - MARGIN;

  doc.fontSize(14).text(t.title, { width });
  doc.moveDown(0.3);
  doc.fontSize(8);
  for (const note of t.notes) doc.text(note, { width });
  doc.moveDown(0.5);

  const cell = (v: string | number | null | undefined) => (v === null || v === undefined ? '' : String(v));
  doc.fontSize(FONT_PT);
  // each column at least as wide as its longest value (values never wrap), then the room left goes to
  // the headings that want more (up to 60 pt; longer ones wrap); if even the values do not fit, all scale
  const values = [...t.rows, ...(t.totals ? [t.totals] : [])];
  const base = t.columns.map((_, i) => Math.max(18, ...values.map((r) => doc.widthOfString(cell(r[i])))) + 2 * PAD);
  const extra = t.columns.map((c, i) => Math.max(0, Math.min(doc.widthOfString(c.heading), 60) + 2 * PAD - base[i]));
  const baseSum = base.reduce((a, b) => a + b, 0);
  const extraSum = extra.reduce((a, b) => a + b, 0);
  const room = width - baseSum;
  const cols =
    room <= 0
      ? base.map((b) => (b * width) / baseSum)
      : base.map(
          (b, i) =>
            b +
            (extraSum > 0 ? (extra[i] * Math.min(room, extraSum)) / extraSum : 0) +
            (room > extraSum ? (room - extraSum) / base.length : 0),
        );

  const rowHeight = (values: string[]) =>
    Math.max(...values.map((v, i) => doc.heightOfString(v, { width: cols[i] - 2 * PAD }))) + 2 * PAD;
  const drawRow = (values: string[], opts: { head?: boolean; total?: boolean } = {}) => {
    const h = rowHeight(values);
    let y = doc.y;
    if (y + h > bottom) {
      doc.addPage();
      y = MARGIN;
      if (!opts.head) drawRow(headings, { head: true });
      y = doc.y;
    }
    let x = MARGIN;
    if (opts.head || opts.total) doc.rect(MARGIN, y, width, h).fill(opts.head ? '#dde3ea' : '#eeeeee');
    doc.fillColor('black').lineWidth(0.4).strokeColor('#888888');
    for (const [i, v] of values.entries()) {
      doc.rect(x, y, cols[i], h).stroke();
      doc.text(v, x + PAD, y + PAD, {
        width: cols[i] - 2 * PAD,
        align: typeof t.rows[0]?.[i] === 'number' ? 'right' : 'left',
      });
      x += cols[i];
    }
    doc.x = MARGIN;
    doc.y = y + h;
  };
  const headings = t.columns.map((c) => c.heading);
  drawRow(headings, { head: true });
  for (const r of t.rows) drawRow(r.map(cell));
  if (t.totals) drawRow(t.totals.map(cell), { total: true });
  doc.end();
  await done;
  return Buffer.concat(chunks);
}
