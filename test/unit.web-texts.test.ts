import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { messagesZhCN } from '../i18n/messages.zh-CN.ts';
import { uiZhCN } from '../i18n/ui.zh-CN.ts';
import { jsonSchema } from '../server/openapi.ts';
import { ACTION_HINTS, FIELD_HINTS } from '../web/components/hints.ts';
import { flatSchema } from '../web/components/schema.ts';
import { ActionBodies } from '../workflow/actions.schema.ts';
import { ACTIONS } from '../workflow/lifecycle.ts';

/** A string or template literal of the source: its tag (`html`, `svg`, '' for none), its text outside `${…}`. */
interface Literal {
  tag: string;
  parts: string[];
  line: number;
}

/** Where `/` starts a regular expression rather than a division: after an operator, an opening bracket or nothing. */
const REGEX_AFTER = /(?:^|[(,=:[!&|?{};+\-*%<>~^]|\breturn|\btypeof)\s*$/;

/** The string and template literals of TypeScript `source`, comments left out, templates inside `${…}` too. */
function literals(source: string): Literal[] {
  const out: Literal[] = [];
  let i = 0;
  const line = (at: number) => source.slice(0, at).split('\n').length;
  const quoted = (q: string) => {
    const start = i++;
    let text = '';
    while (i < source.length && source[i] !== q && source[i] !== '\n')
      text += source[i] === '\\' ? source[i++] + source[i++] : source[i++];
    i++;
    out.push({ tag: '', parts: [text], line: line(start) });
  };
  const regex = () => {
    let inClass = false;
    for (i++; i < source.length && source[i] !== '\n'; i++) {
      const c = source[i];
      if (c === '\\') i++;
      else if (c === '[') inClass = true;
      else if (c === ']') inClass = false;
      else if (c === '/' && !inClass) break;
    }
    i++;
  };
  const template = () => {
    const tag = /([A-Za-z_$][\w$]*)$/.exec(source.slice(Math.max(0, i - 40), i))?.[1] ?? '';
    const literal: Literal = { tag, parts: [''], line: line(i) };
    out.push(literal);
    for (i++; i < source.length;) {
      const c = source[i];
      if (c === '\\') {
        literal.parts[literal.parts.length - 1] += source.slice(i, i + 2);
        i += 2;
      } else if (c === '`') {
        i++;
        return;
      } else if (c === '$' && source[i + 1] === '{') {
        i += 2;
        code(true);
        literal.parts.push('');
      } else {
        literal.parts[literal.parts.length - 1] += c;
        i++;
      }
    }
  };
  /** Code up to the end, or up to the `}` that closes a `${` when `inTemplate`. */
  const code = (inTemplate: boolean) => {
    let depth = 0;
    while (i < source.length) {
      const c = source[i];
      const next = source[i + 1];
      if (c === '/' && next === '/') i = source.includes('\n', i) ? source.indexOf('\n', i) : source.length;
      else if (c === '/' && next === '*')
        i = source.includes('*/', i + 2) ? source.indexOf('*/', i + 2) + 2 : source.length;
      else if (c === "'" || c === '"') quoted(c);
      else if (c === '`') template();
      else if (c === '/' && REGEX_AFTER.test(source.slice(Math.max(0, i - 10), i))) regex();
      else {
        if (c === '{') depth++;
        if (c === '}') {
          if (depth === 0 && inTemplate) {
            i++;
            return;
          }
          depth--;
        }
        i++;
      }
    }
  };
  code(false);
  return out;
}

/** Units and the like that read the same in every language. */
const UNITS = /m²/g;
/** Words in a piece of page text: letters of any script (Chinese characters are letters too). */
const hasWords = (text: string) =>
  /\p{L}/u.test(
    text
      .replace(/&(?:[a-z]+|#\d+);/gi, '')
      .replace(UNITS, '')
      .replace(/\0/g, ''),
  );
/** Attributes whose value people read. */
const READ_ATTRIBUTES = /\s(title|aria-label|placeholder|alt)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))/g;

/** The texts written into an html`` (or svg``) template instead of coming from the catalogue. */
function untranslated(literal: Literal): string[] {
  const found: string[] = [];
  // a value `${…}` stands as \0: only what is written around it counts
  const page = literal.parts.join('\0');
  const text = (t: string) => {
    for (const piece of t.split('\0')) if (hasWords(piece)) found.push(piece.trim().replace(/\s+/g, ' '));
  };
  let between = '';
  for (let i = 0; i < page.length;) {
    if (page[i] === '<' && /[A-Za-z/!]/.test(page[i + 1] ?? '')) {
      text(between);
      between = '';
      let j = i + 1;
      for (let quote = ''; j < page.length; j++) {
        const c = page[j];
        if (quote) quote = c === quote ? '' : quote;
        else if (c === '"' || c === "'") quote = c;
        else if (c === '>') break;
      }
      for (const m of page.slice(i, j + 1).matchAll(READ_ATTRIBUTES)) {
        const value = m[2] ?? m[3] ?? m[4];
        if (hasWords(value)) found.push(`${m[1]}="${value}"`);
      }
      i = j + 1;
    } else between += page[i++];
  }
  text(between);
  return found;
}

/** What `source` writes for people to read instead of taking it from the catalogue. */
function scan(source: string): string[] {
  const found: string[] = [];
  for (const l of literals(source)) {
    if (l.tag === 'html' || l.tag === 'svg') for (const t of untranslated(l)) found.push(`${l.line}: ${t}`);
    // Chinese words belong in i18n/ui.zh-CN.ts, whatever they are written into
    else if (l.parts.some((p) => /\p{Script=Han}/u.test(p))) found.push(`${l.line}: ${l.parts.join('${…}')}`);
  }
  return found;
}

const WEB_FILES = readdirSync('web', { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => join('web', f));

describe("the web app's own texts", () => {
  it('all come from the catalogue: no page writes a word of its own into its html', () => {
    const found: string[] = [];
    let templates = 0;
    for (const file of WEB_FILES) {
      const source = readFileSync(file, 'utf8');
      templates += literals(source).filter((l) => l.tag === 'html').length;
      found.push(...scan(source).map((f) => `${file}:${f}`));
    }
    expect(templates).toBeGreaterThanOrEqual(70); // the scan does see the pages' templates
    expect(found).toEqual([]);
  });

  it('find the scan wanting when a page writes its own words', () => {
    const bad = [
      'const a = html`<th>Month</th>`;',
      'const b = html`<label\n  >月份 Month\n  <select name="month">${x}</select></label>`;',
      'const c = html`<input name="text" placeholder="备注 note" />`;',
      'const d = html`<span class="badge" title="every new patch verified">${ui("x")}</span>`;',
      "const e = html`<svg aria-label='new patches per month'></svg>`;",
      'const f = html`${n} 个图斑 patch(es) in ${month}`;',
      'const g = html`<ul>${xs.map((x) => html`<li>${x} overdue</li>`)}</ul>`;',
      "const h = { error: '无法定位 no position' };",
      'const i = `${done}/${all} 已完成`;',
    ];
    expect(bad.map((s) => scan(s).length)).toEqual(bad.map(() => 1));
    expect(scan(bad[1])).toEqual(['1: 月份 Month']);
    expect(scan(bad[6])).toEqual(['1: overdue']);
    const good = [
      'const a = html`<th>${ui("col_month")}</th><td>#</td><td>–</td>`;',
      'const b = html`<span title=${code} aria-label=${ui("x")}>${fmt(a)} m²</span>`;',
      'const c = html`<div class="progress" title="${done}/${tiles}"><div style="width:${w}%"></div></div>`;',
      "// 我的待办: a comment may say it in Chinese\nconst d = s.replace(/^#/, '').split('`');",
      'const e = x / 2; const f = html`<p>${y}</p>`;',
    ];
    expect(good.flatMap(scan)).toEqual([]);
  });

  it('have keys of their own: none of them is also a server message', () => {
    expect(Object.keys(uiZhCN).filter((k) => k in messagesZhCN)).toEqual([]);
  });

  it('are each used by the web app, and name what every action and every described form field is for', () => {
    const source = WEB_FILES.map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(Object.keys(uiZhCN).filter((k) => !source.includes(`'${k}'`))).toEqual([]);
    expect(ACTIONS.filter((a) => !ACTION_HINTS[a])).toEqual([]);
    const described = ACTIONS.flatMap((a) =>
      Object.entries(flatSchema(jsonSchema(ActionBodies[a])).properties ?? {})
        .filter(([name, s]) => s.description && s.type !== 'array' && name !== 'request_key')
        .map(([name]) => [a, name]),
    );
    expect(described.filter(([a, f]) => !FIELD_HINTS[`${a}.${f}`] && !FIELD_HINTS[f])).toEqual([]);
  });
});
