import { html, svg, type TemplateResult } from 'lit-html';
import type { TrendBody } from '../../api/reports.ts';
import { ui } from '../locale.ts';

/** New patches per month as bars with their counts (the board's chart). */
export function trendChart(rows: TrendBody): TemplateResult {
  const w = 520;
  const h = 180;
  const pad = 28;
  const max = Math.max(1, ...rows.map((r) => r.new_patches));
  const bw = (w - pad * 2) / Math.max(1, rows.length);
  const bars = rows.map((r, i) => {
    const bh = ((h - pad * 2) * r.new_patches) / max;
    const x = pad + i * bw + 3;
    const y = h - pad - bh;
    const mid = x + (bw - 6) / 2;
    return svg`<rect x=${x} y=${y} width=${bw - 6} height=${bh} fill="#1f6feb"><title>${r.month}: ${r.new_patches}</title></rect>
      <text x=${mid} y=${y - 3} text-anchor="middle">${r.new_patches}</text>
      <text x=${mid} y=${h - pad + 14} text-anchor="middle">${r.month.slice(2)}</text>`;
  });
  return html`<svg
    class="chart"
    id="trend"
    viewBox="0 0 ${w} ${h}"
    width="100%"
    role="img"
    aria-label=${ui('board_trend')}
  >
    <line x1=${pad} y1=${h - pad} x2=${w - pad} y2=${h - pad} stroke="#8aa0b6" />
    ${bars}
  </svg>`;
}
