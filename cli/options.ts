import { BadInputError } from '../core/errors.ts';
import { checkMonth } from '../core/month.ts';
import { ExportStatusFilter } from '../workflow/actions.schema.ts';
import { checkDate } from '../workflow/calendar.ts';
import { CliContext } from './context.ts';

let ctx: CliContext | undefined;
/** The command's configuration, log and connections, made on first use (every command but --help needs it). */
export const context = (): CliContext => (ctx ??= new CliContext());
/** Closes what the command opened, if anything. */
export const closeContext = async (): Promise<void> => ctx?.close();

/** Option parsers that name the option when they refuse a value (exit 2). */
export const month = (v: string) => checkMonth(v, 'month');
export const isoDate = (name: string) => (v: string) => checkDate(v, name);
export const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new BadInputError('bad_option', `${name} "${v}" is not a number`);
  return n;
};

/** --status: patch states, comma-separated, or "open" (the unfinished ones). */
export const states = (v: string): string[] => {
  const r = ExportStatusFilter.safeParse(v);
  if (!r.success) throw new BadInputError('bad_option', `--status: ${r.error.issues.map((i) => i.message).join('; ')}`);
  return r.data;
};
