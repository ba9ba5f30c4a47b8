/**
 * A patch action's form, built from the body's JSON Schema that /api/meta gives: a choice for each
 * enum, numbers, dates, text. The server checks the body (and the rules across fields) again; its
 * refusal is shown as it words it.
 */
import { html, nothing, type TemplateResult } from 'lit-html';
import type { JsonSchema } from '../../api/responses.ts';
import { FIELD_HINTS } from './hints.ts';
import { flatSchema } from './schema.ts';
import { FIELD_VALUES, t, ui } from '../locale.ts';

/** A random request key; crypto.getRandomValues works where randomUUID does not (plain http on an intranet). */
export function requestKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

const isNumber = (s: JsonSchema) => s.type === 'integer' || s.type === 'number';
const isDate = (s: JsonSchema) => s.pattern?.includes('\\d{4}-\\d{2}-\\d{2}') ?? false;

function input(name: string, s: JsonSchema, required: boolean): TemplateResult {
  if (s.enum) {
    const group = FIELD_VALUES[name];
    return html`<select name=${name}>
      ${required ? nothing : html`<option value=""></option>`}${s.enum.map(
        (v) => html`<option value=${v}>${group ? t(group, v) : v}</option>`,
      )}
    </select>`;
  }
  if (isNumber(s))
    return html`<input name=${name} type="number" min=${s.minimum ?? nothing} max=${s.maximum ?? nothing} />`;
  if (isDate(s)) return html`<input name=${name} type="date" />`;
  return html`<input name=${name} />`;
}

export interface ActionFormOptions {
  action: string;
  schema: JsonSchema;
  /** Made once per opened form: sending the same form twice (a double click, a retry) is one request. */
  key: string;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
  onCancel: () => void;
}

export function actionForm(o: ActionFormOptions): TemplateResult {
  const schema = flatSchema(o.schema);
  const fields = Object.entries(schema.properties ?? {}).map(([name, s]) => {
    if (name === 'request_key') return html`<input type="hidden" name="request_key" .value=${o.key} />`;
    if (s.type === 'array')
      return html`<p>
        <small
          >${ui('patch_form_drawn', { field: name, endpoint: `POST /api/patches/{code}/actions/${o.action}` })}</small
        >
      </p>`;
    const required = schema.required?.includes(name) ?? false;
    const hint = FIELD_HINTS[`${o.action}.${name}`] ?? FIELD_HINTS[name];
    return html`<label
      >${t('field', name)}${required ? ' *' : ''} <small>${name}</small>${
        hint ? html` <small>${ui(hint)}</small>` : nothing
      }
      ${input(name, s, required)}</label
    >`;
  });
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    void o.onSubmit(formBody(e.currentTarget as HTMLFormElement, o.schema)).catch(reportError);
  };
  return html`<form class="actionform" data-action=${o.action} @submit=${submit}>
    ${fields}
    <div>
      <button class="primary" type="submit">${t('action', o.action)}</button>
      <button type="button" data-cancel @click=${o.onCancel}>${ui('patch_form_cancel')}</button>
    </div>
  </form>`;
}

/** The body the form says: empty fields left out, numbers as numbers. */
export function formBody(form: HTMLFormElement, full: JsonSchema): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(flatSchema(full).properties ?? {})) {
    const el = form.elements.namedItem(name) as HTMLInputElement | null;
    if (!el || el.value === '') continue;
    body[name] = isNumber(s) ? Number(el.value) : el.value;
  }
  return body;
}

/** A form field's text ('' for a missing field or a file). */
export function field(form: HTMLFormElement, name: string): string {
  const v = new FormData(form).get(name);
  return typeof v === 'string' ? v : '';
}
