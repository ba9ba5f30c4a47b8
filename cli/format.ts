import type { BatchSummary } from '../store/batch.ts';
import { asText } from '../core/text.ts';

/** Plain-text table with columns padded by display width (CJK characters count double). */
function table(headers: string[], rows: (string | number | null)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => displayWidth(r[i] ?? ''))));
  return cells
    .map((r, ri) => {
      const line = r
        .map((c, i) => c + ' '.repeat(widths[i] - displayWidth(c)))
        .join('  ')
        .trimEnd();
      return ri === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s)
    w += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(ch)
      ? 2
      : 1;
  return w;
}

function zoneFlags(p: { farmland_m2: number; ecological_m2: number; water_m2: number }): string {
  const flags: string[] = [];
  if (p.farmland_m2 > 0) flags.push(`farmland ${p.farmland_m2} m²`);
  if (p.ecological_m2 > 0) flags.push(`ecological ${p.ecological_m2} m²`);
  if (p.water_m2 > 0) flags.push(`water ${p.water_m2} m²`);
  return flags.join(', ') || '-';
}

/** The patch list grouped by town, as printed by `patches list` and the demo. */
export function patchListText(month: string, patches: Record<string, unknown>[]): string {
  if (patches.length === 0) return `No patches for ${month}.`;
  const byTown = new Map<string, Record<string, unknown>[]>();
  const sorted = [...patches].sort(
    (a, b) =>
      (asText(a.town_code) || '~').localeCompare(asText(b.town_code) || '~') ||
      asText(a.code).localeCompare(asText(b.code)),
  );
  for (const p of sorted) {
    const key = `${asText(p.town_name) || '(outside every town)'} ${asText(p.town_code)}`.trim();
    byTown.set(key, [...(byTown.get(key) ?? []), p]);
  }
  const parts: string[] = [];
  for (const [town, list] of byTown) {
    const area = list.reduce((s, p) => s + Number(p.area_m2), 0);
    parts.push(`${town} — ${list.length} patch(es), ${area.toFixed(1)} m²`);
    parts.push(
      table(
        ['code', 'area m²', 'town', 'grid', 'zones', 'change', 'status', 'imagery check', 'prob'],
        list.map((p) => [
          p.code as string,
          Number(p.area_m2).toFixed(1),
          p.town_name as string,
          p.grid_code as string,
          zoneFlags(p as never),
          relationText(p),
          p.status as string,
          checkText(p.imagery_check as { month: string; result: string } | null),
          p.mean_prob === null ? '' : Number(p.mean_prob).toFixed(2),
        ]),
      ),
    );
    parts.push('');
  }
  return parts.join('\n');
}

/** A patch's relation to registered buildings, with the overlap where it has one: `extension (reg 12.0 m²)`. */
function relationText(p: Record<string, unknown>): string {
  const rel = asText(p.building_relation) || 'new';
  return rel === 'new' ? rel : `${rel} (reg ${Number(p.registered_building_m2).toFixed(1)} m²)`;
}

/** The latest 回头看: `gone 2024-04`, or empty. */
function checkText(c: { month: string; result: string } | null | undefined): string {
  return c ? `${c.result} ${c.month}` : '';
}

export function summaryText(s: BatchSummary): string {
  const lines = [
    `Batch ${s.batchId} ${s.month} (baseline ${s.baselineMonth}) — ${s.status}`,
    `  model ${s.model.name} ${s.model.version}; tiles ${s.tiles.ok}/${s.tiles.total} ok, ${s.tiles.failed} failed`,
    `  change polygons ${s.changePolygons}, candidates ${s.candidates}, patches new ${s.patches.new}, re-detected ${s.patches.redetected}`,
  ];
  if (s.newByRelation && (s.newByRelation.extension || s.newByRelation.on_building))
    lines.push(
      `  on registered buildings: ${s.newByRelation.extension} extension(s), ${s.newByRelation.on_building} on a building`,
    );
  const lb = s.lookback;
  if (lb && Object.values(lb).some(Boolean))
    lines.push(
      `  imagery check of ordered demolitions: ${lb.gone} gone, ${lb.standing} standing, ${lb.unclear} unclear, ${lb.no_imagery} without imagery; ${s.demolitions ?? 0} demolition(s) seen as change, no patch`,
    );
  for (const f of s.failedTiles) lines.push(`  FAILED ${f.path}: [${f.code}] ${f.reason}`);
  for (const f of s.refusedFiles ?? []) lines.push(`  REFUSED at registration ${f.path}: [${f.code}] ${f.reason}`);
  for (const t of s.perTown)
    lines.push(`  ${t.townName} ${t.townCode}: ${t.newPatches} new (${t.newAreaM2} m²), ${t.redetected} re-detected`);
  return lines.join('\n');
}
