import { describe, expect, it } from 'vitest';
import { FIELDS } from '../export/fields.ts';
import { csvCell, csvHead, neutralise } from '../export/write.text.ts';
import { CELL_TEXTS } from './helpers/cells.ts';

/**
 * csvCell, with its fast path for numbers, says what the rule of neutralise() and RFC 4180 quoting say
 * for every kind of value a record holds: numbers (a negative one without the apostrophe), text that
 * reads as a formula (with it), quotes, commas and line breaks (quoted, quotes doubled), empty. The
 * database's cells are held to the same cells in export.integration and pglite.integration.
 */
describe('CSV cells', () => {
  /** The cell as the rule has it, written out independently of csvCell. */
  const expected = (v: unknown) => {
    const s = neutralise(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const values: unknown[] = [
    0,
    -1,
    1.25,
    -0.5,
    123456.78,
    null,
    undefined,
    ...CELL_TEXTS,
    true,
    false,
    new Date('2024-03-20T08:00:00Z'),
    { a: 1 },
    ['x', 'y'],
  ];

  it('writes every kind of value as the rule says', () => {
    for (const v of values) expect(csvCell(v), String(v)).toBe(expected(v));
    expect(expected(-1)).toBe('-1');
    expect(expected('-2+3')).toBe("'-2+3");
    expect(expected('say "hi"')).toBe('"say ""hi"""');
    expect(expected('two\r\nlines')).toBe('"two\r\nlines"');
  });

  it('heads the file with the byte-order mark and the Chinese headings, CRLF after them', () => {
    const head = csvHead();
    expect([...head.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(head.subarray(3).toString('utf8')).toBe(`${FIELDS.map((f) => f.alias).join(',')}\r\n`);
  });
});
