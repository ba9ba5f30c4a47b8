import { describe, expect, it } from 'vitest';
import { issuesInWords } from '../server/refusals.ts';
import { ActionBodies } from '../workflow/actions.schema.ts';

/** What a form's refusal says (issue 31): the field in the catalogue's words, and what to put there in plain Chinese. */
describe('validation in plain words', () => {
  const words = (action: keyof typeof ActionBodies, body: unknown, locale: 'zh-CN' | 'en' = 'zh-CN') => {
    const r = ActionBodies[action].safeParse(body);
    expect(r.success).toBe(false);
    return issuesInWords(
      r.error!.issues as unknown as Parameters<typeof issuesInWords>[0],
      locale,
      locale === 'en' ? 'body' : '请求',
    );
  };

  it('names the field and says what to choose or fill, never zod’s types', () => {
    expect(words('verify', {})).toBe('核查结果：请从 违法、合法、伪变化、原有建筑 中选择');
    expect(words('verify', { result: 'maybe' })).toBe('核查结果：请从 违法、合法、伪变化、原有建筑 中选择');
    expect(words('dismiss', {})).toBe('原因：请从 云、阴影、车辆、季节性作物、重复、其他 中选择');
    expect(words('dismiss', { reason: 'cloud', note: 'x'.repeat(2001) })).toBe('备注：最多 2000 个字，请删短');
    expect(words('rectify', { measure: 'demolish', due: 7 })).toBe('期限：应填文字');
    const extend = words('extend', { working_days: 0, reason: '', request_key: 'key-0001' });
    expect(extend).toBe('延长工作日：不能小于 1；原因：不能为空，请填写');
    for (const said of [extend, words('verify', {}), words('dismiss', {})])
      expect(said).not.toMatch(/string|number|undefined|无效输入|期望|实际接收/);
  });

  it('leaves English readers (API clients) zod’s own words with the API’s field names', () => {
    expect(words('dismiss', { reason: 'cloud', note: 'x'.repeat(2001) }, 'en')).toBe(
      'note: Too big: expected string to have <=2000 characters',
    );
  });
});
