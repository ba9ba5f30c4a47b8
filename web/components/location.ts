/**
 * Where a patch is, for an inspector on the way there: a point inside it in lon/lat (the one the exports print) (CGCS2000, which agrees
 * with WGS 84 to the centimetre at this scale), links that open a navigation app, and the distance
 * from the phone's own position when the user asks for it.
 */
import { html, type TemplateResult } from 'lit-html';
import { ui } from '../locale.ts';

/** Great-circle distance in metres. */
export function distanceM([lon1, lat1]: [number, number], [lon2, lat2]: [number, number]): number {
  const rad = Math.PI / 180;
  const a =
    Math.sin(((lat2 - lat1) * rad) / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * 6_371_008.8 * Math.asin(Math.sqrt(a));
}

export const distanceText = (m: number): string => (m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`);

/** The location card's content; `onLocate` asks the phone for its position. */
export function locationCard(
  code: string,
  centre: [number, number],
  here: { distanceM?: number; error?: string } | null,
  onLocate: () => void,
): TemplateResult {
  const [lon, lat] = centre;
  const name = encodeURIComponent(code);
  return html`<div class="card" id="location">
    <h3>${ui('location_title')}</h3>
    <p>
      ${ui('location_lon')} <strong>${lon.toFixed(6)}</strong>, ${ui('location_lat')} <strong>${lat.toFixed(6)}</strong>
      <small>${ui('location_crs')}</small>
    </p>
    <p class="nav-links">
      <a href="https://uri.amap.com/marker?position=${lon},${lat}&name=${name}&coordinate=wgs84&callnative=1"
        >${ui('location_amap')}</a
      >
      <a href="geo:${lat},${lon}?q=${lat},${lon}(${name})">${ui('location_maps_app')}</a>
      <button type="button" id="locate" @click=${onLocate}>${ui('location_locate')}</button>
    </p>
    ${
      here?.distanceM !== undefined
        ? html`<p id="distance">${ui('location_distance', { distance: distanceText(here.distanceM) })}</p>`
        : here?.error
          ? html`<p id="distance" class="error">${here.error}</p>`
          : ''
    }
  </div>`;
}
