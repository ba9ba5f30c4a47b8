-- The open patches a reported outline overlaps (more than a tenth of the smaller of the two): a report of
-- what is already a patch is refused naming them. Read under the district's numbering lock, so a batch's
-- emit or another report of the same ground cannot pass it at the same moment.
-- Parameters:
--   :outline   GeoJSON Polygon or MultiPolygon in lon/lat (EPSG:4326)
with /*include workflow/report_drawn*/
select p.code, p.town_code
from patch p, drawn d
where ST_Intersects(p.geom, d.geom)
  and p.status not in ('dismissed', 'legal', 'false_change', 'pre_existing', 'closed', 'merged', 'split')
  and ST_Area(ST_Intersection(p.geom, d.geom)) > 0.1 * least(ST_Area(p.geom), ST_Area(d.geom))
order by p.code;
