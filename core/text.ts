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

/** Why a piece of text cannot be stored or shown, or null: a NUL character (PostgreSQL text refuses it) or half a UTF-16 pair. */
function textProblem(s: string): 'nul' | 'surrogate' | null {
  if (s.includes('\u0000')) return 'nul';
  return s.isWellFormed() ? null : 'surrogate';
}

/**
 * The first string in a request's parts (params, query, a parsed JSON body) that cannot be stored,
 * with where it is (`body.parts[2].reason`, `query.filename`; a key counts as well as a value). Walks
 * without recursion and gives up after `budget` values, so a body nested a million deep costs no more
 * than a flat one (its size is bounded by the route's body limit).
 */
export function findBadText(
  parts: Record<string, unknown>,
  budget = 200_000,
): { field: string; problem: 'nul' | 'surrogate' } | null {
  const stack: [string, unknown][] = Object.entries(parts).map(([k, v]) => [k, v]);
  while (stack.length && budget-- > 0) {
    const [path, v] = stack.pop()!;
    if (typeof v === 'string') {
      const problem = textProblem(v);
      if (problem) return { field: path, problem };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([`${path}[${i}]`, v[i]]);
    } else if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
      for (const [k, x] of Object.entries(v)) {
        const problem = textProblem(k);
        if (problem) return { field: `${path}.${k.toWellFormed().replaceAll('\u0000', '\\u0000')}`, problem };
        stack.push([`${path}.${k}`, x]);
      }
    }
  }
  return null;
}

/** Text made storable for a log or an audit row: NUL shown as \u0000, half pairs as U+FFFD. */
export const storable = (s: string): string => s.toWellFormed().replaceAll('\u0000', '\\u0000');
