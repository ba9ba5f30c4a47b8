/**
 * Split a SQL script into statements at top-level semicolons, honouring single-quoted strings,
 * double-quoted identifiers, dollar-quoted bodies ($$ … $$, $tag$ … $tag$) and -- comments.
 * Needed because PGlite (through knex-pglite) runs each query as a prepared statement, which
 * takes one command at a time; running the statements one by one works on both servers.
 */
export function splitSqlStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    if (ch === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (ch === "'" || ch === '"') {
      i++;
      while (i < sql.length && !(sql[i] === ch && sql[i + 1] !== ch)) i += sql[i] === ch ? 2 : 1;
      i++;
    } else if (ch === '$') {
      const m = /^\$[A-Za-z_]*\$/.exec(sql.slice(i));
      if (m) {
        const end = sql.indexOf(m[0], i + m[0].length);
        if (end < 0) throw new Error(`unterminated dollar-quoted string ${m[0]} at offset ${i}`);
        i = end + m[0].length;
      } else i++;
    } else if (ch === ';') {
      out.push(sql.slice(start, i));
      i++;
      start = i;
    } else i++;
  }
  out.push(sql.slice(start));
  return out.map((s) => s.trim()).filter((s) => s.replace(/--[^\n]*/g, '').trim() !== '');
}
