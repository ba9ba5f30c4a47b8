/**
 * Times as the city reads them. The database keeps instants (timestamptz); what people see — in the
 * API, the web app, the CLI and exports — is the city's wall clock with its offset written out, e.g.
 * 2024-03-18T13:37:05+08:00 for 05:37:05 UTC in Xiamen (TUBAN_UTC_OFFSET_H).
 */

/** "+08:00" for 8, "-03:30" for -3.5. */
function offsetSuffix(offsetH: number): string {
  const minutes = Math.round(Math.abs(offsetH) * 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${offsetH < 0 ? '-' : '+'}${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
}

/** An instant as the city's local time, ISO 8601 with the offset; null stays null. */
export function cityTime(t: Date | string | null | undefined, offsetH: number): string | null {
  if (t === null || t === undefined) return null;
  const ms = (t instanceof Date ? t : new Date(t)).getTime();
  if (Number.isNaN(ms)) return null;
  return `${new Date(ms + offsetH * 3_600_000).toISOString().slice(0, 19)}${offsetSuffix(offsetH)}`;
}
