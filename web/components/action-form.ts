/**
 * A patch action's form, built from the body's JSON Schema that /api/meta gives: a choice for each
 * enum, numbers, dates, text. Nothing is chosen for the user: a required choice starts empty and the
 * button stays off until every required field is filled; a body with variants (verify: one per result)
 * shows the fields of the chosen variant only. The server checks the body (and the rules across fields)
 * again; its refusal is shown as it words it.
 */
import { html, nothing, type TemplateResult } from 'lit-html';
import { ref } from 'lit-html/directives/ref.js';
import type { JsonSchema } from '../../api/responses.ts';
import { FIELD_HINTS } from './hints.ts';
import { flatSchema, variantFields } from './schema.ts';
import { FIELD_VALUES, t, ui } from '../locale.ts';

/** A random request key; crypto.getRandomValues works where randomUUID does not (plain http on an intranet). */
export function requestKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

const isNumber = (s: JsonSchema) => s.type === 'integer' || s.type === 'number';
const isDate = (s: JsonSchema) => s.pattern?.includes('\\d{4}-\\d{2}-\\d{2}') ?? false;

/** A choice offered for a field in place of typing it (the towns for 更正镇街): its value and what the user reads. */
export interface Choice {
  value: string;
  label: string;
}

function input(name: string, s: JsonSchema, choices: Choice[] | undefined): TemplateResult {
  const options =
    choices ??
    (s.enum
      ? s.enum.map((v) => ({
          value: String(v),
          label: FIELD_VALUES[name] ? t(FIELD_VALUES[name], String(v)) : String(v),
        }))
      : null);
  if (options)
    // nothing chosen until the user chooses: a tap on the button never records the first option
    return html`<select name=${name}>
      <option value="" selected>${ui('form_choose')}</option>
      ${options.map((o) => html`<option value=${o.value}>${o.label}</option>`)}
    </select>`;
  if (isNumber(s))
    return html`<input
      name=${name}
      type="number"
      inputmode="numeric"
      min=${s.minimum ?? nothing}
      max=${s.maximum ?? nothing}
    />`;
  if (isDate(s)) return html`<input name=${name} type="date" />`;
  return html`<input name=${name} maxlength=${s.maxLength ?? nothing} />`;
}

export interface ActionFormOptions {
  action: string;
  schema: JsonSchema;
  /** Made once per opened form: sending the same form twice (a double click, a retry) is one request. */
  key: string;
  /** Fields answered by a choice from a list (town_code: the towns). */
  choices?: Record<string, Choice[]>;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
  onCancel: () => void;
}

export function actionForm(o: ActionFormOptions): TemplateResult {
  const schema = flatSchema(o.schema);
  const variants = variantFields(o.schema);
  const fields = Object.entries(schema.properties ?? {}).map(([name, s]) => {
    if (name === 'request_key') return html`<input type="hidden" name="request_key" .value=${o.key} />`;
    if (s.type === 'array')
      return html`<p>
        <small>${ui('patch_form_drawn', { field: t('field', name), action: t('action', o.action) })}</small>
      </p>`;
    const hint = FIELD_HINTS[`${o.action}.${name}`] ?? FIELD_HINTS[name];
    // a field of some variants only is shown once its variant is chosen (see fit below)
    return html`<label data-field=${name} ?hidden=${variants !== null && !variants.always.includes(name)}
      ><span class="label">${t('field', name)}<span class="required" hidden> *</span></span
      >${hint ? html` <small>${ui(hint)}</small>` : nothing} ${input(name, s, o.choices?.[name])}</label
    >`;
  });
  /** Shows the fields the chosen variant takes, marks the required ones, and lets the button on only when they are filled. */
  const fit = (form: HTMLFormElement) => {
    const picked = variants ? field(form, variants.by) : '';
    const shown = variants ? (variants.of[picked]?.fields ?? variants.always) : Object.keys(schema.properties ?? {});
    const required = variants ? (variants.of[picked]?.required ?? variants.required) : (schema.required ?? []);
    for (const label of form.querySelectorAll<HTMLLabelElement>('label[data-field]')) {
      const name = label.dataset.field!;
      const on = shown.includes(name);
      label.hidden = !on;
      const el = label.querySelector<HTMLInputElement | HTMLSelectElement>('input, select');
      if (el) {
        el.disabled = !on;
        el.required = on && required.includes(name);
        // a required text is more than spaces
        if (el instanceof HTMLInputElement && el.required && !el.type.match(/number|date/)) el.pattern = '.*\\S.*';
      }
      label.querySelector<HTMLElement>('.required')!.hidden = !(on && required.includes(name));
    }
    form.querySelector<HTMLButtonElement>('button[type=submit]')!.disabled = !form.checkValidity();
  };
  const submit = (e: SubmitEvent) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    if (!form.checkValidity()) return fit(form);
    void o.onSubmit(formBody(form, o.schema)).catch(reportError);
  };
  const changed = (e: Event) => fit(e.currentTarget as HTMLFormElement);
  return html`<form
    class="actionform"
    data-action=${o.action}
    novalidate
    @submit=${submit}
    @input=${changed}
    @change=${changed}
  >
    ${fields}
    <div>
      <button class="primary" type="submit" disabled ${ref(fitOnce(fit))}>${t('action', o.action)}</button>
      <button type="button" data-cancel @click=${o.onCancel}>${ui('patch_form_cancel')}</button>
    </div>
  </form>`;
}

/** Runs `fit` once the form is in the page (its required marks and the button's state from the start). */
function fitOnce(fit: (form: HTMLFormElement) => void) {
  return (el?: Element) => {
    const form = el?.closest('form');
    if (form) fit(form);
  };
}

/** The body the form says: hidden and empty fields left out, numbers as numbers, text trimmed. */
export function formBody(form: HTMLFormElement, full: JsonSchema): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(flatSchema(full).properties ?? {})) {
    const el = form.elements.namedItem(name) as HTMLInputElement | null;
    if (!el || el.disabled || el.value.trim() === '') continue;
    body[name] = isNumber(s) ? Number(el.value) : el.value.trim();
  }
  return body;
}

/** A form field's text ('' for a missing field or a file). */
export function field(form: HTMLFormElement, name: string): string {
  const v = new FormData(form).get(name);
  return typeof v === 'string' ? v : '';
}
