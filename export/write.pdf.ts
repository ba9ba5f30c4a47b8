import { createWriteStream, rmSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import PDFDocument from 'pdfkit';
import QRCode from 'qrcode';
import { BadInputError } from '../core/errors.ts';
export { findCjkFont } from './fonts.ts';
import { cjkFamily } from './fonts.ts';
import { FIELDS, type ExportRecord } from './fields.ts';
import { asText } from '../core/text.ts';

export interface SheetImages {
  before: Buffer | null;
  after: Buffer | null;
  overview: Buffer | null;
  /** Stamped site photos with their captions; an empty image is a photo that could not be read. */
  photos?: { image: Buffer; caption: string }[];
}

/** Photos on a sheet's photo page (3 rows of 2); more are in the town package. */
const SHEET_PHOTOS = 6;

const SHOWN: string[] = [
  'code',
  'month',
  'before_dt',
  'after_dt',
  'town',
  'grid',
  'x',
  'y',
  'lon',
  'lat',
  'area_m2',
  'area_mu',
  'farm_m2',
  'eco_m2',
  'water_m2',
  'change_typ',
  'class',
  'status',
  'verify_due',
  'source',
  'model',
  'confidence',
];

/**
 * Verification sheets (外业核查表), one A4 page per patch: before/after chips with the outline,
 * an overview, the attributes, a QR code of the patch code, and blank fields for the verdict,
 * the checker and the date. Written to `outPath` as the sheets arrive, so a month of patches is
 * never held in memory at once, neither its chips nor the file.
 */
export async function writePdf(
  sheets: AsyncIterable<{ record: ExportRecord; images: SheetImages }>,
  title: string,
  fontPath: string,
  outPath: string,
): Promise<void> {
  const doc = new PDFDocument({
    size: 'A4',
    margin: 36,
    autoFirstPage: false,
    info: { Title: title, Creator: 'tuban' },
  });
  // A .ttc holds several faces: pdfkit picks one by PostScript name.
  doc.registerFont('cjk', fontPath, cjkFamily(fontPath));
  const file = createWriteStream(outPath);
  // a file error (no such folder, disk full) is kept and ends the loop at the next sheet
  let fileError: unknown = null;
  const written = finished(doc.pipe(file)).catch((err) => {
    fileError ??= err;
  });
  const alias = Object.fromEntries(FIELDS.map((f) => [f.name, f.alias]));
  let failure: unknown = null;
  try {
    let drawn = 0;
    for await (const { record: r, images } of sheets) {
      if (fileError) break;
      drawSheet(doc, r, images, alias, await QRCode.toBuffer(String(r.code), { type: 'png', margin: 1, width: 200 }));
      if (images.photos?.length) drawPhotos(doc, r, images.photos);
      drawn++;
    }
    // a month or a town without patches still gets a valid document that says so (零增长 is the aim)
    if (drawn === 0 && !fileError) drawNothing(doc, title);
  } catch (err) {
    failure = err;
  } finally {
    doc.end();
    await written;
  }
  if (failure || fileError) {
    rmSync(outPath, { force: true }); // no half-written sheets left behind
    throw (
      failure ??
      new BadInputError(
        'export_write',
        `${outPath}: cannot write the PDF (${(fileError as Error).message})`,
        { file: outPath },
        { cause: fileError },
      )
    );
  }
}

/** The one page of a list without patches: the title, and that there is nothing to verify. */
function drawNothing(doc: PDFKit.PDFDocument, title: string): void {
  doc.addPage();
  doc.font('cjk').fontSize(16).text('两违图斑外业核查表', { align: 'center' });
  doc.moveDown();
  doc.fontSize(12).text(title, { align: 'center' });
  doc.moveDown(2);
  doc.fontSize(12).text('本期没有需要外业核查的图斑。', { align: 'center' });
}

/** The case's stamped photos on a page of their own, two across, each with its caption. */
function drawPhotos(doc: PDFKit.PDFDocument, r: ExportRecord, photos: { image: Buffer; caption: string }[]): void {
  doc.addPage();
  doc.font('cjk').fontSize(14).text(`现场照片　图斑编号 ${r.code}`, { align: 'center' });
  const w = 255;
  const h = 200;
  photos.slice(0, SHEET_PHOTOS).forEach((p, i) => {
    const x = 36 + (i % 2) * (w + 13);
    const y = 70 + Math.floor(i / 2) * (h + 34);
    try {
      if (p.image.length) doc.image(p.image, x, y, { fit: [w, h], align: 'center', valign: 'center' });
      else doc.rect(x, y, w, h).stroke();
    } catch {
      doc.rect(x, y, w, h).stroke(); // not an image pdfkit reads: the frame and caption stay
    }
    doc.fontSize(9).text(p.caption, x, y + h + 3, { width: w, align: 'center' });
  });
  if (photos.length > SHEET_PHOTOS)
    doc
      .fontSize(9)
      .text(`另有 ${photos.length - SHEET_PHOTOS} 张照片见镇街资料包`, 36, 770, { width: 523, align: 'center' });
}

function drawSheet(
  doc: PDFKit.PDFDocument,
  r: ExportRecord,
  images: SheetImages,
  alias: Record<string, string>,
  qr: Buffer,
): void {
  doc.addPage();
  doc.font('cjk').fontSize(16).text('两违图斑外业核查表', { align: 'center' });
  doc.fontSize(11).text(`图斑编号 ${r.code}    ${r.town ?? ''}  ${r.grid ?? ''}`, { align: 'center' });
  const top = 90;
  const chipW = 255;
  const drawChip = (img: Buffer | null, x: number, label: string) => {
    if (img) doc.image(img, x, top, { width: chipW, height: chipW });
    else doc.rect(x, top, chipW, chipW).stroke();
    doc.fontSize(9).text(label, x, top + chipW + 3, { width: chipW, align: 'center' });
  };
  drawChip(images.before, 36, `前时相 ${r.before_dt ?? ''}`);
  drawChip(images.after, 36 + chipW + 13, `后时相 ${r.after_dt ?? ''}`);
  const y2 = top + chipW + 22;
  if (images.overview) doc.image(images.overview, 36, y2, { width: 140, height: 140 });
  doc.fontSize(8).text('位置示意', 36, y2 + 142, { width: 140, align: 'center' });
  doc.image(qr, 36 + 523 - 100, y2, { width: 100, height: 100 });
  doc.fontSize(8).text(String(r.code), 36 + 523 - 110, y2 + 102, { width: 120, align: 'center' });
  let y = y2;
  const colX = 190;
  doc.fontSize(9);
  for (const key of SHOWN) {
    doc.text(`${alias[key]}：${asText(r[key as keyof ExportRecord])}`, colX, y, { width: 220 });
    y += 12.5;
  }
  y = Math.max(y, y2 + 160) + 10;
  doc.fontSize(11).text('外业核查结论（勾选）', 36, y);
  y += 18;
  doc
    .fontSize(10)
    .text('□ 违法建设    □ 违法用地    □ 合法（许可证号：____________）    □ 伪变化    □ 原有建筑', 36, y);
  y += 22;
  doc.text('现场情况描述：', 36, y);
  doc.rect(36, y + 14, 523, 60).stroke();
  y += 84;
  doc.text('核查人：________________    核查日期：______年____月____日    镇街负责人签字：________________', 36, y);
}
