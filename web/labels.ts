/** The colours of the states on the map, and how numbers, sizes and times are written (words for codes: locale.ts). */

export { STATUS_COLOUR } from '../i18n/colours.ts';
/** The states drawn in the map's legend (the others are closed cases, drawn grey). */
export const LEGEND_STATES = ['detected', 'dispatched', 'illegal', 'rectifying', 'rectified', 'closed'];
export const OVERDUE_COLOUR = '#7a0000';

/** Square metres in one 亩. */
export const M2_PER_MU = 666.6667;

/** A number with `digits` decimals, '–' for none. */
export const fmt = (v: number | null | undefined, digits = 1): string =>
  v === null || v === undefined ? '–' : v.toFixed(digits);

/** A value as text: '' for null and undefined, objects as JSON (never "[object Object]"). */
export const text = (v: unknown): string =>
  v === null || v === undefined
    ? ''
    : typeof v === 'object'
      ? JSON.stringify(v)
      : String(v as string | number | boolean);

/** A byte count for people. */
export { byteSize as bytes } from '../i18n/index.ts';

/** A time the API gives in the city's local time (ISO 8601 with its offset), as "2024-03-18 13:37:05". */
export const localTime = (iso: string | Date | null | undefined): string =>
  typeof iso === 'string' ? iso.slice(0, 19).replace('T', ' ') : '–';
