import type { Knex } from 'knex';
import { workingDaysBetween } from '../workflow/calendar.ts';
import type { WorkflowEnv } from './workflow.ts';

/**
 * The daily deadline sweep: a patch whose running deadline (verification while dispatched,
 * rectification while rectifying) has passed is marked overdue; one overdue by more than the
 * policy's working days is listed for supervision (挂牌督办). Each change is one history event,
 * so running the sweep twice on a day changes nothing.
 */
export async function sweepOverdue(db: Knex, env: WorkflowEnv): Promise<{ overdue: number; escalated: number }> {
  const today = env.today();
  let overdue = 0;
  let escalated = 0;
  await db.transaction(async (trx) => {
    const rows = await trx('patch')
      .whereIn('status', ['dispatched', 'rectifying'])
      .select('id', 'code', 'status', 'overdue_since', 'escalated_at', trx.raw("to_char(case when status = 'dispatched' then verify_due else rectify_due end, 'YYYY-MM-DD') as due"))
      .forUpdate();
    for (const p of rows) {
      if (!p.due || p.due >= today) continue;
      const late = workingDaysBetween(env.calendar, p.due, today);
      if (late === 0) continue; // past due only on rest days: not late yet
      if (!p.overdue_since) {
        await trx('patch').where({ id: p.id }).update({ overdue_since: today });
        await trx('patch_event').insert({ patch_id: p.id, actor: 'system', type: 'overdue', from_status: p.status, to_status: p.status, detail: JSON.stringify({ due: p.due, working_days_late: late }) });
        overdue++;
      }
      if (!p.escalated_at && late > env.policy.escalateAfterDays) {
        await trx('patch').where({ id: p.id }).update({ escalated_at: trx.fn.now() });
        await trx('patch_event').insert({ patch_id: p.id, actor: 'system', type: 'escalated', from_status: p.status, to_status: p.status, detail: JSON.stringify({ due: p.due, working_days_late: late, threshold: env.policy.escalateAfterDays }) });
        escalated++;
      }
    }
  });
  return { overdue, escalated };
}
