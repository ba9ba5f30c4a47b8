import type { FastifyInstance } from 'fastify';
import type { WorkflowEnv } from '../../workflow/env.ts';
import { loadCalendar } from '../../workflow/calendar.ts';
import { DEFAULT_POLICY, type Action } from '../../workflow/lifecycle.ts';

/** The patch actions, written out here (not taken from the code) so the tests notice one added or lost. */
export const ACTION_NAMES: readonly Action[] = [
  'dispatch',
  'dismiss',
  'verify',
  'rectify',
  'report_rectified',
  'close',
  'send_back',
  'correct_town',
  'merge',
  'split',
  'extend',
  'escalate',
];

/** The workflow environment of the API tests: the committed calendar and policy, "today" as the test sets it. */
export function testWorkflowEnv(today: () => string): WorkflowEnv {
  return { calendar: loadCalendar('config/calendar.cn.json'), policy: DEFAULT_POLICY, today };
}

/**
 * A request to the server as a user (by name, with the token the test issued them) or anonymously
 * (null), through Fastify's inject; the app is looked up at call time (tests build it in beforeAll).
 * It asks for English (the tests read the messages); server.access checks the zh-CN default.
 */
export function apiCaller(app: () => FastifyInstance, token: Record<string, string>) {
  return (
    who: string | null,
    method: 'GET' | 'POST' | 'PATCH',
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) =>
    app().inject({
      method,
      url,
      payload: body as never,
      headers: {
        'accept-language': 'en',
        ...(who ? { authorization: `Bearer ${token[who]}` } : {}),
        ...headers,
      },
    });
}
