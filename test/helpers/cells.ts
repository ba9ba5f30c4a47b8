/**
 * Texts a CSV cell writes as they are, neutralises (a leading =, +, -, @, tab or CR) or quotes (a quote, a
 * comma or a line break): the cases Node's csvCell and the database's csv_text are both held to.
 */
export const CELL_TEXTS = [
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
] as const;
