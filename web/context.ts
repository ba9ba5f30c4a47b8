import type { MapConfigBody, MetaBody, UserBody } from '../api/responses.ts';

/** What every page gets: who is signed in, the map's configuration, the actions, where to draw. */
export interface AppContext {
  me: UserBody;
  config: MapConfigBody;
  meta: MetaBody;
  main: HTMLElement;
  /** The month the user last looked at, carried from page to page when a link names none. */
  month: string | null;
}

/** The months with imagery, newest first. */
export const monthsOf = (ctx: AppContext): string[] => ctx.config.months.map((m) => m.month).reverse();

/** The month a page shows: the URL's when it is one of ours, else the one last looked at, else the newest. */
export function pickMonth(ctx: AppContext, asked: string | null): string | null {
  const months = monthsOf(ctx);
  const month = [asked, ctx.month].find((m) => m && months.includes(m)) ?? months[0] ?? null;
  ctx.month = month;
  return month;
}
