-- The patch list's filter, shared by the page (list.sql) and its total (list_count.sql); the
-- parameters are theirs (see list.sql).
where (:scope_town::text is null or p.town_code = :scope_town::text)
  and (:month::text is null or p.month = :month::text)
  and (:town::text is null or p.town_code = :town::text)
  and (:status::text is null or p.status = :status::text)
  and (:class::text is null or p.class = :class::text)
  and (:overdue::text is null or (p.overdue_since is not null) = (:overdue::text = 'true'))
  and (:escalated::text is null or (p.escalated_at is not null) = (:escalated::text = 'true'))
  and (:min_lon::float8 is null or ST_Intersects(p.geom, ST_Transform(ST_MakeEnvelope(:min_lon::float8, :min_lat::float8, :max_lon::float8, :max_lat::float8, 4326), (select value::int from setting where key = 'storage_srid'))))
  and (:min_area_m2::float8 is null or p.area_m2 >= :min_area_m2::float8)
  and (:max_area_m2::float8 is null or p.area_m2 <= :max_area_m2::float8)
  and (:relation::text is null or p.building_relation = :relation::text)
  and (:check::text is null or p.imagery_check->>'result' = :check::text)
