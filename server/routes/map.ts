import { en } from '../../i18n/say.ts';
import { z } from 'zod';
import { patchChip } from '../../export/patches.ts';
import { TILE_GRID, mapConfig, renderMapTile, townBoundaries } from '../../map/tiles.ts';
import { townLayerVersion } from '../../store/layers.ts';
import { scopedPatch } from '../../store/patch.row.ts';
import { listPatchesFor } from '../../store/workflow.ts';
import { dueFlags } from '../../workflow/calendar.ts';
import { PatchQuerySchema } from '../../workflow/actions.schema.ts';
import { answers, errors, ok, MonthString, PatchCodeParams, type RouteContext, type ZodApp } from '../context.ts';
import { MapConfigBody, PatchFeatureCollection, TownsBody } from '../../api/responses.ts';

/** A tile address in the path: zoom, column, row (the row may end in .png, as map clients ask). */
const TileParams = z.object({
  month: MonthString,
  z: z
    .string()
    .regex(/^\d{1,2}$/, en('form_zoom'))
    .transform(Number),
  x: z
    .string()
    .regex(/^\d{1,10}$/, en('form_tile_x'))
    .transform(Number),
  y: z
    .string()
    .regex(/^\d{1,10}(\.png)?$/, en('form_tile_y'))
    .transform((v) => Number(v.replace(/\.png$/, ''))),
});
/** The town layer for one zoom level of the tile grid. */
const TownsQuery = z.object({
  z: z
    .string()
    .regex(new RegExp(`^[0-${TILE_GRID.resolutions.length - 1}]$`), en('form_zoom'))
    .transform(Number)
    .optional(),
});
const ChipParams = PatchCodeParams.extend({
  which: z
    .enum(['before', 'after', 'overview', 'check', 'before.png', 'after.png', 'overview.png', 'check.png'])
    .transform((v) => v.replace(/\.png$/, '') as 'before' | 'after' | 'overview' | 'check'),
});

/** The web map: patches as GeoJSON, the map's extent and CRS, imagery tiles and patch chips. */
export function mapRoutes(app: ZodApp, ctx: RouteContext): void {
  /** The town layer's outlines as last written per zoom level ('' without one), and the layer version they were written from. */
  let towns: { version: string; json: Map<string, string> } | null = null;
  const { db, config, me, sources } = ctx;
  /** The same list as GeoJSON in the storage CRS (the web map's CRS), scoped the same way. */
  app.get(
    '/api/map/patches',
    {
      schema: {
        summary: 'Patches as GeoJSON in the storage CRS, filtered and scoped like /api/patches',
        tags: ['map'],
        querystring: PatchQuerySchema,
        response: { ...answers(PatchFeatureCollection, 'a GeoJSON FeatureCollection'), ...errors(400, 401) },
      },
    },
    async (req, reply) => {
      const r = await listPatchesFor(db, me(req), req.query, { withGeometry: true });
      const features = r.patches.map(({ geom, ...props }) => ({
        type: 'Feature' as const,
        id: props.code,
        geometry: geom,
        properties: { ...props, ...dueFlags(ctx.env.calendar, props) },
      }));
      return reply.header('content-type', 'application/geo+json').send({
        type: 'FeatureCollection',
        total: r.total,
        next_after: r.next_after,
        crs: { type: 'name', properties: { name: `EPSG:${config.TUBAN_STORAGE_SRID}` } },
        features,
      });
    },
  );
  app.get(
    '/api/map/config',
    {
      schema: {
        summary: "The map's CRS, tile grid and months with imagery (their extents and baseline months)",
        tags: ['map'],
        response: { ...answers(MapConfigBody, 'the map configuration'), ...errors(401) },
      },
    },
    async () => mapConfig(db, config.TUBAN_STORAGE_SRID),
  );
  app.get(
    '/api/map/towns',
    {
      schema: {
        summary:
          'The town boundaries, GeoJSON in the storage CRS, for the map, simplified to the resolution of zoom level z of the tile grid (0.5 m without z); with an ETag (304 while the town layer is unchanged)',
        tags: ['map'],
        querystring: TownsQuery,
        response: {
          ...answers(TownsBody, 'the towns'),
          ...ok('unchanged since the ETag asked about', 304),
          ...errors(401),
        },
      },
    },
    async (req, reply) => {
      // a city's town layer is megabytes of outlines: simplified and written once per import of the layer,
      // and not sent again to a browser that has it (a phone on 3G would wait half a minute for it)
      const version = await townLayerVersion(db);
      const level = req.query.z === undefined ? '' : String(req.query.z);
      const etag = `"towns-${version}${level ? `-z${level}` : ''}"`;
      reply.header('etag', etag).header('cache-control', 'private, no-cache');
      if ((req.headers['if-none-match'] ?? '').split(',').some((t) => t.trim() === etag))
        return reply.status(304).send();
      if (towns?.version !== version) towns = { version, json: new Map() };
      let json = towns.json.get(level);
      if (json === undefined) {
        json = await townBoundaries(db, req.query.z);
        towns.json.set(level, json);
      }
      return reply.type('application/json; charset=utf-8').send(json);
    },
  );
  app.get(
    '/api/map/tiles/:month/:z/:x/:y',
    {
      schema: {
        summary:
          "A 256² PNG tile of the month's imagery (town users: their town and 200 m around it); 204 where there is none",
        tags: ['map'],
        params: TileParams,
        response: { ...ok('image/png'), ...ok('no imagery here', 204), ...errors(400, 401) },
      },
    },
    async (req, reply) => {
      const p = req.params;
      const png = await renderMapTile(db, sources, config.TUBAN_STORAGE_SRID, p.month, p.z, p.x, p.y, me(req));
      if (!png) return reply.status(204).header('cache-control', 'private, max-age=3600').send();
      return reply.header('content-type', 'image/png').header('cache-control', 'private, max-age=3600').send(png);
    },
  );
  app.get(
    '/api/patches/:code/chips/:which',
    {
      schema: {
        summary:
          'A PNG chip of the patch: before, after, an overview of its surroundings, or check (the month of its latest imagery check, 回头看); 204 without imagery',
        tags: ['map'],
        params: ChipParams,
        response: { ...ok('image/png'), ...ok('no imagery for this patch', 204), ...errors(400, 401, 404) },
      },
    },
    async (req, reply) => {
      const p = req.params;
      const patch = await scopedPatch(db, me(req), p.code);
      const month =
        p.which === 'before'
          ? patch.baseline_month
          : p.which === 'check'
            ? (patch.imagery_check?.month ?? null)
            : patch.month;
      if (!month) return reply.status(204).send();
      const png = await ctx.images.run(req.signal, () =>
        patchChip(
          db,
          (plan) => ctx.chips.render(plan),
          patch.code,
          month,
          p.which === 'overview' ? 'overview' : 'detail',
          p.which === 'before' ? '#ffd400' : p.which === 'check' ? '#00c0ff' : '#ff2020',
        ),
      );
      if (!png) return reply.status(204).send();
      return reply.header('content-type', 'image/png').header('cache-control', 'private, max-age=600').send(png);
    },
  );
}
