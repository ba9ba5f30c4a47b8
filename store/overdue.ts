import type { Knex } from 'knex';
import { workingDaysBetween } from '../workflow/calendar.ts';
import type { WorkflowEnv } from '../workflow/env.ts';

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
    // only patches past their running deadline that still lack a mark are locked, in id order
    const rows = await trx('patch')
      .whereIn('status', ['dispatched', 'rectifying'])
      .andWhereRaw('patch_running_due(status, verify_due, rectify_due) < ?::date', [today])
      .andWhere((q) => void q.whereNull('overdue_since').orWhereNull('escalated_at'))
      .orderBy('id')
      .select(
        'id',
        'code',
        'status',
        'overdue_since',
        'escalated_at',
        trx.raw("to_char(patch_running_due(status, verify_due, rectify_due), 'YYYY-MM-DD') as due"),
      )
      .forUpdate();
    const markOverdue: number[] = [];
    const markEscalated: number[] = [];
    const events: Record<string, unknown>[] = [];
    for (const p of rows) {
      const late = workingDaysBetween(env.calendar, p.due, today);
      if (late === 0) continue; // past due only on rest days: not late yet
      if (!p.overdue_since) {
        markOverdue.push(p.id);
        events.push({
          patch_id: p.id,
          actor: 'system',
          type: 'overdue',
          from_status: p.status,
          to_status: p.status,
          detail: JSON.stringify({ due: p.due, working_days_late: late }),
        });
      }
      if (!p.escalated_at && late > env.policy.escalateAfterDays) {
        markEscalated.push(p.id);
        events.push({
          patch_id: p.id,
          actor: 'system',
          type: 'escalated',
          from_status: p.status,
          to_status: p.status,
          detail: JSON.stringify({ due: p.due, working_days_late: late, threshold: env.policy.escalateAfterDays }),
        });
      }
    }
    if (markOverdue.length) await trx('patch').whereIn('id', markOverdue).update({ overdue_since: today });
    if (markEscalated.length) await trx('patch').whereIn('id', markEscalated).update({ escalated_at: trx.fn.now() });
    for (let i = 0; i < events.length; i += 500) await trx('patch_event').insert(events.slice(i, i + 500));
    overdue = markOverdue.length;
    escalated = markEscalated.length;
  });
  return { overdue, escalated };
}
