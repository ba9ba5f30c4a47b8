import { describe, expect, it } from 'vitest';
import { FIELDS, type ExportRecord } from '../export/fields.ts';
import { csvHead, csvLines, neutralise, toCsv } from '../export/write.text.ts';

/**
 * The CSV's cells, written with a fast path for numbers, say what the rule of neutralise() and RFC 4180
 * quoting say for every kind of value a record holds: numbers (a negative one without the apostrophe),
 * text that reads as a formula (with it), quotes, commas and line breaks (quoted, quotes doubled), empty.
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
    '',
    'plain 文字',
    '=HYPERLINK("x")',
    '+cmd',
    '-2+3',
    '@SUM(1)',
    '\tTAB',
    '\rCR',
    'a,b',
    'say "hi"',
    'two\r\nlines',
    true,
    false,
    new Date('2024-03-20T08:00:00Z'),
    { a: 1 },
    ['x', 'y'],
  ];

  it('writes every kind of value as the rule says, a row per record, CRLF after each', () => {
    const records = values.map(
      (v) => Object.fromEntries(FIELDS.map((f) => [f.name, f.name === 'note' ? v : 'x'])) as unknown as ExportRecord,
    );
    const lines = csvLines(records).split('\r\n');
    expect(lines.at(-1)).toBe('');
    // each line ends with the note (the last field); text with a line break spans two split pieces
    const text = csvLines(records);
    for (const v of values) expect(text).toContain(`,${expected(v)}\r\n`);
    expect(expected(-1)).toBe('-1');
    expect(expected('-2+3')).toBe("'-2+3");
    expect(expected('say "hi"')).toBe('"say ""hi"""');
    expect(csvLines([])).toBe('');
    expect(toCsv(records).equals(Buffer.concat([csvHead(), Buffer.from(text, 'utf8')]))).toBe(true);
    expect([...csvHead().subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
  });
});
