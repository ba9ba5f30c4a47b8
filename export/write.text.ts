import { FIELDS, type ExportRecord } from './fields.ts';
import { asText } from '../core/text.ts';
import { STATUS_COLOUR } from '../i18n/colours.ts';

const props = (r: ExportRecord) => Object.fromEntries(FIELDS.map((f) => [f.name, r[f.name]]));

/** RFC 7946 GeoJSON: lon/lat (EPSG:4326), no crs member. */
export function toGeoJson(records: ExportRecord[]): string {
  return JSON.stringify({
    type: 'FeatureCollection',
    features: records.map((r) => ({ type: 'Feature', id: r.code, properties: props(r), geometry: r.geomLonLat })),
  });
}

/**
 * GeoJSON in the storage CRS with the legacy crs member: the input GDAL converts to GPKG/SHP. An empty
 * list gets one placeholder feature with every field and no geometry, for GDAL to take the fields
 * from (ogrCommand's `empty` leaves it out of the output).
 */
export function toStorageGeoJson(records: ExportRecord[], srid: number): string {
  const features = records.length
    ? records.map((r) => ({ type: 'Feature', properties: props(r), geometry: r.geomStorage }))
    : [{ type: 'Feature', properties: Object.fromEntries(FIELDS.map((f) => [f.name, null])), geometry: null }];
  return JSON.stringify({
    type: 'FeatureCollection',
    crs: { type: 'name', properties: { name: `urn:ogc:def:crs:EPSG::${srid}` } },
    features,
  });
}

/**
 * A text cell a spreadsheet would read as a formula (starting with = + - @, a tab or a CR) gets a
 * leading apostrophe, OWASP's rule against CSV injection: a note "=HYPERLINK(…)" stays text. Numbers
 * (a negative one too) are written as they are.
 */
export function neutralise(v: unknown): string {
  const s = asText(v);
  return typeof v !== 'number' && /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}

const NEEDS_QUOTES = /[",\r\n]/;

/**
 * One CSV cell: a number as it is, other values as neutralise() has them, quoted (quotes doubled) where
 * they hold a quote, a comma or a line break (RFC 4180). The month's lines are made by the database by
 * the same rule (migration 033's csv_text); this writes the headings and the words for codes.
 */
export function csvCell(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === null || v === undefined) return '';
  let s = asText(v);
  const c = s.charCodeAt(0);
  if (c === 61 || c === 43 || c === 45 || c === 64 || c === 9 || c === 13) s = `'${s}`; // = + - @ tab CR
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The UTF-8 byte-order mark that makes Excel open the Chinese correctly. */
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** The CSV's first bytes: the byte-order mark and the headings (the Chinese aliases). */
export function csvHead(): Buffer {
  return Buffer.concat([BOM, Buffer.from(FIELDS.map((f) => csvCell(f.alias)).join(',') + '\r\n', 'utf8')]);
}

const xml = (s: unknown) =>
  asText(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function kmlGeometry(g: { type: string; coordinates: number[][][] | number[][][][] }): string {
  const polys = (g.type === 'Polygon' ? [g.coordinates] : g.coordinates) as number[][][][];
  const ring = (r: number[][]) => `<coordinates>${r.map((p) => `${p[0]},${p[1]}`).join(' ')}</coordinates>`;
  const poly = (p: number[][][]) =>
    `<Polygon><outerBoundaryIs><LinearRing>${ring(p[0])}</LinearRing></outerBoundaryIs>${p
      .slice(1)
      .map((h) => `<innerBoundaryIs><LinearRing>${ring(h)}</LinearRing></innerBoundaryIs>`)
      .join('')}</Polygon>`;
  return polys.length === 1 ? poly(polys[0]) : `<MultiGeometry>${polys.map(poly).join('')}</MultiGeometry>`;
}

/** KML 2.2 for field apps: one Placemark per patch named by its code, attributes in ExtendedData with Chinese display names. */
export function toKml(records: ExportRecord[], title: string): string {
  const schema = `<Schema name="patch" id="patch-fields">${FIELDS.map((f) => `<SimpleField name="${f.name}" type="${f.type === 'string' ? 'string' : f.type === 'integer' ? 'int' : 'double'}"><displayName>${xml(f.alias)}</displayName></SimpleField>`).join('')}</Schema>`;
  // one style per state, in the web map's colours (KML writes colours as aabbggrr)
  const kmlColour = (hex: string, alpha: string) => `${alpha}${hex.slice(5, 7)}${hex.slice(3, 5)}${hex.slice(1, 3)}`;
  const style = Object.entries(STATUS_COLOUR)
    .map(
      ([status, hex]) =>
        `<Style id="status-${status}"><LineStyle><color>${kmlColour(hex, 'ff')}</color><width>2</width></LineStyle><PolyStyle><color>${kmlColour(hex, '40')}</color></PolyStyle></Style>`,
    )
    .join('');
  const placemarks = records
    .map(
      (r) =>
        `<Placemark id="${xml(r.code)}"><name>${xml(r.code)}</name><description>${xml(`${r.town ?? ''} ${r.area_m2} m² ${r.status}`)}</description><styleUrl>#status-${xml(r.status_cd)}</styleUrl><ExtendedData><SchemaData schemaUrl="#patch-fields">${FIELDS.map((f) => `<SimpleData name="${f.name}">${xml(r[f.name])}</SimpleData>`).join('')}</SchemaData></ExtendedData>${kmlGeometry(r.geomLonLat as never)}</Placemark>`,
    )
    .join('\n');
  // no patch: an empty folder, so a GIS opens the file as a layer of 0 features rather than as nothing
  const body = placemarks || `<Folder><name>${xml(title)}</name></Folder>`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>${xml(title)}</name>${schema}${style}\n${body}\n</Document></kml>\n`;
}
