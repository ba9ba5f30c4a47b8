import { BATCH_STATES, JOB_STATES, TILE_STATES } from '../api/responses.ts';
import { describe, expect, it } from 'vitest';
import { LOCALES, label, type Catalogue, type Group } from '../i18n/index.ts';
import { jsonSchema } from '../server/openapi.ts';
import { ActionBodies } from '../workflow/actions.schema.ts';
import { LOOKBACK_RESULTS } from '../pipeline/lookback.judge.ts';
import {
  ACTIONS,
  BUILDING_RELATIONS,
  DISMISS_REASONS,
  EVENT_TYPES,
  MEASURES,
  PATCH_SOURCES,
  PATCH_STATES,
  ROLES,
  VERIFY_RESULTS,
  VIOLATIONS,
} from '../workflow/lifecycle.ts';
import { flatSchema } from '../web/components/schema.ts';
import { MODEL_STATES } from '../store/models.ts';
import { EVIDENCE_STAGES, PHOTO_FLAGS } from '../workflow/evidence.proof.ts';

/** Every code the API gives, by catalogue group: each must have words in every locale. */
const CODES: Record<Group, readonly string[]> = {
  status: PATCH_STATES,
  class: ['ecological', 'farmland', 'water', 'general'],
  action: ACTIONS,
  result: VERIFY_RESULTS,
  violation: VIOLATIONS,
  measure: MEASURES,
  dismiss_reason: DISMISS_REASONS,
  event: EVENT_TYPES.filter((e) => !(ACTIONS as readonly string[]).includes(e)),
  relation: BUILDING_RELATIONS,
  source: PATCH_SOURCES,
  model_status: MODEL_STATES,
  lookback: LOOKBACK_RESULTS,
  role: ROLES,
  deadline: ['verification', 'rectification'],
  batch_status: BATCH_STATES,
  tile_status: TILE_STATES,
  job_state: JOB_STATES,
  stage: EVIDENCE_STAGES,
  photo_flag: PHOTO_FLAGS,
  // every field of every action's form
  field: [...new Set(ACTIONS.flatMap((a) => Object.keys(flatSchema(jsonSchema(ActionBodies[a])).properties ?? {})))],
};

describe('the message catalogue', () => {
  for (const [locale, catalogue] of Object.entries(LOCALES) as [string, Catalogue][]) {
    it(`has words in ${locale} for every code the API gives`, () => {
      for (const [group, codes] of Object.entries(CODES) as [Group, readonly string[]][]) {
        const words = catalogue[group] as Record<string, string>;
        const missing = codes.filter((c) => !words[c]?.trim());
        expect(missing, `${locale} ${group}`).toEqual([]);
      }
    });
  }

  it('has the same keys in every locale, and no key the code does not use', () => {
    const keys = (c: Catalogue) =>
      Object.entries(c).flatMap(([g, words]) => Object.keys(words as object).map((k) => `${g}.${k}`));
    const zh = keys(LOCALES['zh-CN']).sort();
    expect(keys(LOCALES.en).sort()).toEqual(zh);
    const used = Object.entries(CODES)
      .flatMap(([g, codes]) => codes.map((c) => `${g}.${c}`))
      .sort();
    expect(zh.filter((k) => !used.includes(k))).toEqual([]);
  });

  it('speaks the words of 两违 staff by default', () => {
    expect(label('action', 'dispatch')).toBe('下发');
    expect(label('action', 'escalate')).toBe('挂牌督办');
    expect(label('status', 'closed')).toBe('已销号');
    expect(label('measure', 'fine_legalise')).toBe('罚款补办');
    expect(label('violation', 'land_use')).toBe('违法用地');
    expect(label('action', 'send_back', 'en')).toBe('send back');
  });
});
