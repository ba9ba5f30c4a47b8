import type { Db } from './db.ts';
import { addWorkingDays, isWorkingDay, workingDaysBetween, workingDaysLeft } from '../workflow/calendar.ts';
import { byTown, queueNotices } from './notify.ts';
import type { WorkflowEnv } from '../workflow/env.ts';

/**
 * The daily deadline sweep: a patch whose running deadline (verification while dispatched,
 * rectification while rectifying) has passed is marked overdue; one overdue by more than the
 * policy's working days is listed for supervision (挂牌督办). Each change is one history event,
 * so running the sweep twice on a day changes nothing. The towns' groups and the supervisors' hear of
 * it in the same transaction: the patches newly overdue, those newly listed, and on working days those
 * due within env.noticeDueDays working days (one message a day, however often the sweep runs).
 */
export async function sweepOverdue(db: Db, env: WorkflowEnv): Promise<{ overdue: number; escalated: number }> {
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
        'town_code',
        'town_name',
        'area_m2',
        trx.raw("to_char(patch_running_due(status, verify_due, rectify_due), 'YYYY-MM-DD') as due"),
      )
      .forUpdate();
    const markOverdue: number[] = [];
    const markEscalated: number[] = [];
    type Told = {
      code: string;
      status: string;
      due: string;
      area_m2: number;
      town_code: string | null;
      town_name: string | null;
      late: number;
    };
    const told: { overdue: Told[]; escalated: Told[] } = { overdue: [], escalated: [] };
    const events: Record<string, unknown>[] = [];
    for (const p of rows) {
      const late = workingDaysBetween(env.calendar, p.due, today);
      if (late === 0) continue; // past due only on rest days: not late yet
      if (!p.overdue_since) {
        markOverdue.push(p.id);
        told.overdue.push({ ...p, late });
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
        told.escalated.push({ ...p, late });
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

    const meta = { date: today, by: 'system' };
    const item = (p: Told) => ({
      code: p.code,
      area_m2: Number(p.area_m2),
      due: p.due,
      deadline: p.status === 'rectifying' ? ('rectification' as const) : ('verification' as const),
      days: p.late,
    });
    await queueNotices(trx, `sweep-${today}`, 'overdue', byTown(told.overdue, item), meta);
    await queueNotices(trx, `sweep-${today}`, 'escalated', byTown(told.escalated, item), meta);
    const within = env.noticeDueDays ?? 2;
    if (within > 0 && isWorkingDay(env.calendar, today)) {
      const soon = await trx('patch')
        .whereIn('status', ['dispatched', 'rectifying'])
        .whereNull('overdue_since')
        .andWhereRaw('patch_running_due(status, verify_due, rectify_due) between ?::date and ?::date', [
          today,
          addWorkingDays(env.calendar, today, within),
        ])
        .orderBy(['town_code', 'code'])
        .select(
          'code',
          'status',
          'town_code',
          'town_name',
          'area_m2',
          trx.raw("to_char(patch_running_due(status, verify_due, rectify_due), 'YYYY-MM-DD') as due"),
        );
      const towns = byTown(soon, (p) => ({
        code: p.code,
        area_m2: Number(p.area_m2),
        due: p.due,
        deadline: p.status === 'rectifying' ? ('rectification' as const) : ('verification' as const),
        days: workingDaysLeft(env.calendar, today, p.due),
      }));
      // one reminder a day: the key is the day's, whatever the list (a second sweep that day adds nothing)
      await queueNotices(trx, `due-${today}`, 'due_soon', towns, { ...meta, within_days: within }, { fixedKey: true });
    }
  });
  return { overdue, escalated };
}
