/**
 * A value from a row, a file's properties or a request as text: '' for null and undefined, dates as
 * ISO 8601, objects and arrays as JSON (never "[object Object]").
 */
export function asText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v) ?? '';
}
