/** What scripts/bench-followup.ts prints: the figures as one value (--json), and the same as text. */
import { CASES, EXPECTED_RELATION, type CaseKind } from './bench-followup.plan.ts';

/** One run of the month: its policy, the batch's parameters, speed, patches and the per-case tally. */
export interface PolicyRun {
  policy: 'none' | 'subtract' | 'classify';
  params: Record<string, unknown>;
  wallS: number;
  km2: number;
  patches: number;
  newByRelation: Record<string, number> | null;
  /** Patches on a change (a building of a changed case, or its added part). */
  truePatches: number;
  /** Patches on a registered building that did not change, or under a permit. */
  onUnchanged: number;
  perCase: { kind: CaseKind; buildings: number; found: number; relation_right: number }[];
}

export interface FollowupResult {
  /** 回头看 on 23 real roofs standing a year apart (bench-followup.roofs.ts); null without the data. */
  standingRoofs: { result: string; score: number | null; corrIn: number; ratio: number }[] | null;
  command: string;
  environment: Record<string, string>;
  model: string;
  images: string[];
  cores: number;
  /** How many times the buildings were dealt into cases (each with its own runs; the figures are sums). */
  deals: number;
  /** Buildings dealt to each case, over all deals. */
  cases: Partial<Record<CaseKind, number>>;
  runs: PolicyRun[];
  lookback: {
    month: string;
    reference: string;
    patches: number;
    demolished: number;
    workflowS: number;
    judged: number;
    right: number;
    /** Staged truth (demolished / standing) → result → count. */
    confusion: Record<string, Record<string, number>>;
    newPatches: number;
    newOnDemolished: number;
    demolitionsSeen: number;
    board: Record<'reportedStanding' | 'goneUnreported', { listed: number; staged: number; right: number }>;
    wallS: number;
    lookbackS: number;
    km2: number;
    km2PerHPerCore: number;
    params: unknown;
    /** Per judged patch: what was staged, the result and the evidence it rests on (--json only). */
    evidence: Record<string, unknown>[];
  } | null;
}

/** Two runs of one policy (two deals) as one: counts and seconds summed. */
export function mergeRuns(a: PolicyRun, b: PolicyRun): PolicyRun {
  const rel =
    a.newByRelation && b.newByRelation
      ? Object.fromEntries(
          Object.keys(a.newByRelation).map((k) => [k, a.newByRelation![k] + (b.newByRelation![k] ?? 0)]),
        )
      : null;
  const kinds = [...new Set([...a.perCase, ...b.perCase].map((c) => c.kind))];
  return {
    ...a,
    wallS: a.wallS + b.wallS,
    km2: a.km2 + b.km2,
    patches: a.patches + b.patches,
    newByRelation: rel,
    truePatches: a.truePatches + b.truePatches,
    onUnchanged: a.onUnchanged + b.onUnchanged,
    perCase: kinds.map((kind) => {
      const x = a.perCase.find((c) => c.kind === kind),
        y = b.perCase.find((c) => c.kind === kind);
      return {
        kind,
        buildings: (x?.buildings ?? 0) + (y?.buildings ?? 0),
        found: (x?.found ?? 0) + (y?.found ?? 0),
        relation_right: (x?.relation_right ?? 0) + (y?.relation_right ?? 0),
      };
    }),
  };
}

/** Two deals' 回头看 as one: counts and seconds summed. */
export function mergeLookback(
  a: NonNullable<FollowupResult['lookback']>,
  b: NonNullable<FollowupResult['lookback']>,
): NonNullable<FollowupResult['lookback']> {
  const confusion: Record<string, Record<string, number>> = {};
  for (const src of [a.confusion, b.confusion])
    for (const [truth, row] of Object.entries(src))
      for (const [res, n] of Object.entries(row)) {
        confusion[truth] ??= {};
        confusion[truth][res] = (confusion[truth][res] ?? 0) + n;
      }
  const hit = (k: 'reportedStanding' | 'goneUnreported') => ({
    listed: a.board[k].listed + b.board[k].listed,
    staged: a.board[k].staged + b.board[k].staged,
    right: a.board[k].right + b.board[k].right,
  });
  const wallS = a.wallS + b.wallS,
    km2 = a.km2 + b.km2;
  return {
    ...a,
    patches: a.patches + b.patches,
    demolished: a.demolished + b.demolished,
    workflowS: a.workflowS + b.workflowS,
    judged: a.judged + b.judged,
    right: a.right + b.right,
    confusion,
    newPatches: a.newPatches + b.newPatches,
    newOnDemolished: a.newOnDemolished + b.newOnDemolished,
    demolitionsSeen: a.demolitionsSeen + b.demolitionsSeen,
    board: { reportedStanding: hit('reportedStanding'), goneUnreported: hit('goneUnreported') },
    wallS,
    lookbackS: a.lookbackS + b.lookbackS,
    km2,
    km2PerHPerCore: (a.km2PerHPerCore * a.wallS + b.km2PerHPerCore * b.wallS) / wallS,
    evidence: [...a.evidence, ...b.evidence],
  };
}

const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(1)} %` : '–');
const pad = (s: string | number, n: number) => String(s).padStart(n);

export function followupText(r: FollowupResult): string {
  const lines = [
    `command: ${r.command}`,
    `model: ${r.model}; images (${r.images.length}): ${r.images.join(', ')}`,
    `cases dealt${r.deals > 1 ? ` (${r.deals} deals, figures summed)` : ''}: ${Object.entries(r.cases)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
    '',
    '1. Registered buildings: buildings found (≥ 50 % under patches), and the relation right among those found',
  ];
  const kinds: CaseKind[] = ['small', ...CASES];
  for (const run of r.runs) {
    const rel = run.newByRelation
      ? Object.entries(run.newByRelation)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')
      : '';
    lines.push(
      '',
      `${run.policy === 'none' ? 'no building or permit layer (the detector alone)' : `TUBAN_BUILDING_POLICY=${run.policy}`}: ${run.patches} patches${rel ? ` (${rel})` : ''}, ${run.truePatches} on a change (${pct(run.truePatches, run.patches)}), ${run.onUnchanged} on an unchanged registered building or a permit; wall ${run.wallS.toFixed(1)} s, ${(run.km2 / (run.wallS / 3600) / r.cores).toFixed(0)} km²/h per core`,
      `  case                 expect        buildings  found   % found   relation right`,
    );
    for (const k of kinds) {
      const c = run.perCase.find((x) => x.kind === k);
      if (!c) continue;
      const expect = EXPECTED_RELATION[k] ?? 'no patch';
      lines.push(
        `  ${k.padEnd(20)} ${expect.padEnd(12)} ${pad(c.buildings, 10)} ${pad(c.found, 6)} ${pad(pct(c.found, c.buildings), 9)}   ${
          EXPECTED_RELATION[k] ? `${pad(c.relation_right, 4)} ${pct(c.relation_right, c.found)}` : ''
        }`,
      );
    }
    if (run.policy !== 'none')
      lines.push(
        `  parameters: on-building share ${String(run.params.onBuildingShare)}, touch ${String(run.params.buildingTouchM)} m, mean-probability floors ${JSON.stringify({ new: run.params.minMeanProb, ...(run.params.minMeanProbByRelation as object) })}`,
      );
  }
  const lb = r.lookback;
  if (lb) {
    const c = lb.confusion;
    const row = (k: string) =>
      ['gone', 'standing', 'unclear', 'no_imagery'].map((x) => pad(c[k]?.[x] ?? 0, 9)).join('');
    lines.push(
      '',
      `2. 回头看: ${lb.patches} patches ordered demolished (workflow ${lb.workflowS.toFixed(1)} s); ${lb.demolished} demolished in ${lb.month}, judged against ${lb.reference}`,
      `   thresholds ${JSON.stringify(lb.params)}`,
      `  staged \\ judged          gone  standing  unclear no_imagery`,
      `  demolished         ${row('demolished')}`,
      `  standing           ${row('standing')}`,
      `  right: ${lb.right} of the ${lb.judged} patches on a structure (${pct(lb.right, lb.judged)})`,
      `  on no structure     ${row('no_structure')}   (false alarms of ${lb.reference}: nothing to demolish)`,
      `  new patches in ${lb.month}: ${lb.newPatches}, of them on a demolished patch: ${lb.newOnDemolished}; demolitions seen as change and dropped: ${lb.demolitionsSeen}`,
      `  board: 报告已整改但影像仍在 ${lb.board.reportedStanding.listed} listed, ${lb.board.reportedStanding.right} of the ${lb.board.reportedStanding.staged} false reports; 影像显示已拆除、待上报 ${lb.board.goneUnreported.listed} listed, ${lb.board.goneUnreported.right} of the ${lb.board.goneUnreported.staged} unreported demolitions`,
      `  the ${lb.month} batch: wall ${lb.wallS.toFixed(1)} s (${lb.km2PerHPerCore.toFixed(0)} km²/h per core), of which the look-back ${lb.lookbackS.toFixed(2)} s (${pct(lb.lookbackS, lb.wallS)})`,
    );
  }
  const roofs = r.standingRoofs;
  if (roofs) {
    const n = (res: string) => roofs.filter((x) => x.result === res).length;
    lines.push(
      `  real roofs standing a year apart (unlabeled-pairs, ${roofs.length} drawn by hand): ${n('standing')} standing, ${n('unclear')} unclear, ${n('gone')} gone; scores ${roofs
        .map((x) => (x.score ?? 0).toFixed(2))
        .sort()
        .join(' ')}`,
    );
  }
  return lines.join('\n');
}
