import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConflictError, TubanError } from '../core/errors.ts';
import { LOCALES } from '../i18n/index.ts';
import { localeOf, MESSAGES, PLACEHOLDER, render, say, type MessageKey } from '../i18n/say.ts';
import { planTransition } from '../workflow/lifecycle.ts';

/** Where a web user's request can be refused: every refusal here must be a catalogue message. */
const SPOKEN = [
  ...readdirSync('server/routes').map((f) => join('server/routes', f)),
  'server/app.ts',
  'server/context.ts',
  'server/gate.ts',
  'server/ratelimit.ts',
  'server/refusals.ts',
  'store/actions.ts',
  'store/evidence.ts',
  'store/patch.row.ts',
  'store/users.ts',
  'store/workflow.ts',
  'workflow/actions.schema.ts',
  'workflow/calendar.ts',
  'workflow/deadlines.ts',
  'workflow/lifecycle.ts',
  'core/month.ts',
  'export/patches.ts',
  'map/tiles.ts',
];

/** The text argument of each `new …Error(` in `source` (the second for BadInputError, whose first is its code). */
function errorTexts(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(
    /new ((?:BadInput|NotFound|Conflict|Forbidden|TooMany|Unauthorized|Transient|Tuban)Error)\(/g,
  )) {
    let rest = source.slice(m.index + m[0].length).trimStart();
    if (m[1] === 'BadInputError') rest = rest.slice(rest.indexOf(',') + 1).trimStart();
    out.push(rest.slice(0, 60));
  }
  return out;
}

const placeholders = (template: string) => [...new Set([...template.matchAll(PLACEHOLDER)].map((m) => m[0]))].sort();

describe('the messages', () => {
  const keys = Object.keys(MESSAGES['zh-CN']) as MessageKey[];

  it('say every message in every locale, with the same placeholders', () => {
    for (const [locale, messages] of Object.entries(MESSAGES)) {
      expect(Object.keys(messages).sort(), locale).toEqual([...keys].sort());
      for (const k of keys) {
        expect(messages[k].trim(), `${locale} ${k}`).not.toBe('');
        expect(placeholders(messages[k]), `${locale} ${k}`).toEqual(placeholders(MESSAGES['zh-CN'][k]));
      }
    }
  });

  it('label placeholder values only through groups the catalogue has', () => {
    const groups = Object.keys(LOCALES['zh-CN']);
    for (const k of keys)
      for (const m of MESSAGES['zh-CN'][k].matchAll(PLACEHOLDER)) if (m[2]) expect(groups, k).toContain(m[2]);
  });

  it('are what every refusal a web user can meet is made of: no error there is written as a bare string', () => {
    const bare: string[] = [];
    for (const file of SPOKEN) {
      const source = readFileSync(file, 'utf8');
      for (const text of errorTexts(source)) if (/^['"`]/.test(text)) bare.push(`${file}: ${text}`);
      // texts of the request schemas come from the catalogue too (en(key), or a message in an issue's params)
      for (const m of source.matchAll(/\.(regex|min|max|refine)\([^()]*?,\s*(['"`][^'"`]*['"`])\s*\)/g))
        bare.push(`${file}: ${m[0]}`);
      for (const m of source.matchAll(/\b(message|error): (['"`])[^'"`]*\s[^'"`]*\2/g))
        bare.push(`${file}: ${source.slice(m.index, m.index + 60)}`);
    }
    expect(bare).toEqual([]);
  });

  it('find the scan wanting when a refusal is a bare string', () => {
    expect(errorTexts('throw new ConflictError(`patch ${c} is locked`);')).toEqual(['`patch ${c} is locked`);']);
    expect(errorTexts("throw new BadInputError('bad', say('merge_self'));")).toEqual(["say('merge_self'));"]);
  });

  it('read as 两违 staff say it by default, and as the API spells it in English', () => {
    let refused: unknown;
    try {
      planTransition('350206-202403-0005', 'detected', 'verify', 'town', 'legal');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ConflictError);
    const said = (refused as TubanError).said!;
    expect(render(said)).toBe(
      '图斑 350206-202403-0005 当前为「待核查」；「核查」须在「已下发」状态下进行。当前可进行：下发（分析员）、排除（分析员）、更正镇街（分析员）、合并（分析员）、拆分（分析员）',
    );
    expect((refused as Error).message).toBe(
      'patch 350206-202403-0005 is detected; verify needs dispatched. Allowed from detected: dispatch (analyst), dismiss (analyst), correct town (analyst), merge (analyst), split (analyst)',
    );
    expect(render(say('role_needed', { roles: ['supervisor', 'admin'], role: 'town' }))).toBe(
      '此操作需要督办、管理员角色，您的角色是镇街',
    );
    expect(render(say('date_field', { field: 'due', problem: say('date_invalid', { value: '2024-02-30' }) }))).toBe(
      'due：2024-02-30 不是有效日期',
    );
  });

  it('take the language from Accept-Language, zh-CN when it names none tuban speaks', () => {
    expect(localeOf(undefined)).toBe('zh-CN');
    expect(localeOf('en-US,en;q=0.9')).toBe('en');
    expect(localeOf('zh-TW,en;q=0.5')).toBe('zh-CN');
    expect(localeOf('fr-FR')).toBe('zh-CN');
    expect(localeOf('fr, en;q=0.8')).toBe('en');
  });
});
