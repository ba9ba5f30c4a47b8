import type { JsonSchema } from '../../api/responses.ts';

/**
 * One form for a body with variants (verify: one per result): the fields of every variant, the
 * discriminator's values as one choice, required only what every variant requires. The server checks
 * which fields the chosen variant needs.
 */
export function flatSchema(schema: JsonSchema): JsonSchema {
  const variants = schema.oneOf ?? schema.anyOf;
  if (!variants) return schema;
  const properties: Record<string, JsonSchema> = {};
  for (const v of variants) {
    for (const [name, p] of Object.entries(v.properties ?? {})) {
      const values = [...(properties[name]?.enum ?? []), ...(p.enum ?? (p.const !== undefined ? [p.const] : []))];
      properties[name] = { ...properties[name], ...p, ...(values.length ? { enum: [...new Set(values)] } : {}) };
    }
  }
  const required = Object.keys(properties).filter((n) => variants.every((v) => v.required?.includes(n)));
  return { type: 'object', properties, required };
}
