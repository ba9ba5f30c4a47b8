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

/** A body with variants as a form shows it: the field that picks the variant, and each variant's fields and required ones. */
interface Variants {
  by: string;
  /** Fields every variant has (the picking field among them): shown before a choice is made. */
  always: string[];
  /** Required in every variant. */
  required: string[];
  of: Record<string, { fields: string[]; required: string[] }>;
}

/** The variants of a body (verify: by result), or null for a body of one shape. */
export function variantFields(schema: JsonSchema): Variants | null {
  const variants = schema.oneOf ?? schema.anyOf;
  if (!variants?.length) return null;
  const names = (v: JsonSchema) => Object.keys(v.properties ?? {});
  // the picking field: in every variant, one value each
  const by = names(variants[0]).find((n) =>
    variants.every((v) => {
      const p = v.properties?.[n];
      return p !== undefined && (p.const !== undefined || p.enum !== undefined);
    }),
  );
  if (!by) return null;
  const of: Variants['of'] = {};
  for (const v of variants) {
    const p = v.properties![by];
    for (const value of p.enum ?? [p.const]) of[String(value)] = { fields: names(v), required: v.required ?? [] };
  }
  const always = names(variants[0]).filter((n) => variants.every((v) => names(v).includes(n)));
  const required = always.filter((n) => variants.every((v) => v.required?.includes(n)));
  return { by, always, required, of };
}
