import { render, say } from '../../i18n/say.ts';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { downloadName, safeName } from '../../export/names.ts';
import { zipFiles } from '../../export/zip.ts';
import { TransientError } from '../../core/errors.ts';
import { EXPORT_FORMATS, type ExportFormat } from '../../export/formats.ts';
import { exportPatches, streamCsv } from '../../export/patches.ts';
import { isEmbedded } from '../../config/env.ts';
import { ExportStatusFilter, TownCode } from '../../workflow/actions.schema.ts';
import { errors, ok, MonthString, type RouteContext, type ZodApp } from '../context.ts';
import { townName } from '../../store/layers.ts';
import { FINAL_STATES, PATCH_STATES } from '../../workflow/lifecycle.ts';

const ExportQuery = z.object({
  month: MonthString,
  town: TownCode.optional(),
  format: z.enum(EXPORT_FORMATS),
  status: ExportStatusFilter.optional(),
});

const CONTENT_TYPE: Record<ExportFormat, string> = {
  gpkg: 'application/geopackage+sqlite3',
  shp: 'application/zip',
  zip: 'application/zip',
  pdf: 'application/pdf',
  geojson: 'application/geo+json',
  kml: 'application/vnd.google-earth.kml+xml',
  csv: 'text/csv; charset=utf-8',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

/** CSV downloads streamed at once (each holds a database connection while its client reads); more go as files. */
const MAX_CSV_STREAMS = 2;
/** How long a streamed CSV waits for a client that has stopped reading before it gives up (ms). */
const CSV_DRAIN_MS = 30_000;

/** The month's patch list as a file. PDF sheets and town packages go through the heavy-export line. */
export function exportRoutes(app: ZodApp, ctx: RouteContext): void {
  const { db, config, env, log } = ctx;
  let csvStreams = 0;
  // the export has a longer time limit; req.signal stops its work when that passes or the client goes away
  app.get(
    '/api/export',
    {
      handlerTimeout: config.TUBAN_EXPORT_TIMEOUT_S * 1000,
      schema: {
        summary:
          "The month's patches as gpkg, shp (zip), geojson, kml, csv, xlsx, pdf verification sheets or a zip package per town; town users get their town only",
        tags: ['export'],
        querystring: ExportQuery,
        response: { ...ok('the file, as an attachment'), ...errors(400, 401, 503) },
      },
    },
    async (req, reply) => {
      const q = req.query;
      // streamed while few are: each holds a connection for as long as its client takes to read it; more
      // at once, or on the embedded database (one connection for everything), as a file like the others
      if (q.format === 'csv' && !isEmbedded(config) && csvStreams < MAX_CSV_STREAMS) {
        csvStreams += 1;
        let released = false;
        const release = () => {
          if (!released) csvStreams -= 1;
          released = true;
        };
        try {
          return await streamCsvReply(req, reply, q, release);
        } catch (err) {
          release();
          throw err;
        }
      }
      const work = (signal: AbortSignal) => makeExport(req, q, signal);
      let r: Awaited<ReturnType<typeof makeExport>>;
      try {
        r =
          q.format === 'pdf' || q.format === 'zip'
            ? await ctx.heavyExports.run(req.signal, work)
            : await work(req.signal);
      } catch (err) {
        if (!req.signal.aborted) throw err;
        const reason = req.socket?.destroyed
          ? say('export_client_gone')
          : say('export_timed_out', { seconds: config.TUBAN_EXPORT_TIMEOUT_S });
        log.warn('Export:Stopped', {
          requestId: req.id,
          format: q.format,
          month: q.month,
          reason: render(reason, 'en'),
        });
        throw new TransientError(reason);
      }
      const stream = createReadStream(r.file);
      stream.once('close', r.cleanup);
      return reply
        .header('content-type', r.type)
        .header('content-length', statSync(r.file).size)
        .header(
          'content-disposition',
          `attachment; filename="${downloadName(r.name)}"; filename*=UTF-8''${encodeURIComponent(r.name)}`,
        )
        .send(stream);
    },
  );

  /**
   * The CSV sent as it is read from the database (export/patches.ts streamCsv): no file, memory that does
   * not grow with the month. The answer starts with the first rows; a failure before them is answered
   * as any other error, one after them cuts the download short (and is logged).
   */
  async function streamCsvReply(
    req: FastifyRequest,
    reply: FastifyReply,
    q: z.infer<typeof ExportQuery>,
    done: () => void,
  ) {
    const name = await downloadFileName(req, q.month, q.town ?? null, 'csv', q.status ?? null);
    const body = new PassThrough();
    let begun = false;
    let begin!: () => void;
    let refuse!: (err: unknown) => void;
    const started = new Promise<void>((resolve, reject) => {
      begin = resolve;
      refuse = reject;
    });
    const write = async (chunk: Buffer | string) => {
      if (!begun) {
        begun = true;
        begin();
      }
      // a client that stops reading for half a minute is let go (its connection back to the pool)
      if (!body.write(chunk))
        await once(body, 'drain', { signal: AbortSignal.any([req.signal, AbortSignal.timeout(CSV_DRAIN_MS)]) });
    };
    streamCsv(
      db,
      env,
      { month: q.month, town: q.town ?? null, user: ctx.me(req), states: q.status ?? null, signal: req.signal },
      write,
    )
      .finally(done)
      .then(
        () => body.end(),
        (err: unknown) => {
          if (!begun) return refuse(err);
          log.warn('Export:Stopped', {
            requestId: req.id,
            format: q.format,
            month: q.month,
            reason: req.signal.aborted ? 'the client went away' : String((err as Error)?.message ?? err),
          });
          body.destroy(err as Error);
        },
      );
    await started;
    return reply
      .header('content-type', CONTENT_TYPE.csv)
      .header(
        'content-disposition',
        `attachment; filename="${downloadName(name)}"; filename*=UTF-8''${encodeURIComponent(name)}`,
      )
      .send(body);
  }

  async function makeExport(req: FastifyRequest, q: z.infer<typeof ExportQuery>, signal: AbortSignal) {
    // every path here is made by the server: a fresh folder under the data folder, fixed file names;
    // the town only filters rows and, sanitised, names the download
    const work = join(config.dataDir, 'tmp');
    mkdirSync(work, { recursive: true });
    const dir = mkdtempSync(join(work, 'export-'));
    const cleanup = () => rmSync(dir, { recursive: true, force: true });
    try {
      const ext = q.format === 'shp' ? 'zip' : q.format;
      const out = join(dir, q.format === 'shp' ? 'shp' : `export.${ext}`);
      const r = await exportPatches(db, env, {
        month: q.month,
        town: q.town ?? null,
        format: q.format,
        outPath: out,
        user: ctx.me(req),
        storageSrid: config.TUBAN_STORAGE_SRID,
        fontPath: config.TUBAN_PDF_FONT,
        signal,
        states: q.status ?? null,
      });
      let file = out;
      if (q.format === 'shp') {
        file = join(dir, 'export.zip');
        await zipFiles(
          r.files.map((f) => ({ path: f, name: basename(f) })),
          file,
        );
      }
      signal.throwIfAborted();
      return {
        file,
        type: CONTENT_TYPE[q.format],
        cleanup,
        name: await downloadFileName(req, q.month, q.town ?? null, ext, q.status ?? null),
      };
    } catch (err) {
      cleanup();
      throw err;
    }
  }

  /**
   * The file's name as a yearly register files it: town code, town name and month
   * (350206001_殿前街道_2024-03.gpkg), or the month alone for all towns; a list of some states only
   * says so (…_2024-03_open.xlsx for the unfinished ones, else the states joined by -).
   */
  async function downloadFileName(
    req: FastifyRequest,
    month: string,
    town: string | null,
    ext: string,
    states: string[] | null,
  ) {
    const me = ctx.me(req);
    const code = town ?? (me.role === 'town' ? me.townCode : null);
    const name = code ? await townName(db, code) : null;
    const stem = code ? (name ? `${code}_${name}_${month}` : `${code}_${month}`) : month;
    const open = PATCH_STATES.filter((s) => !FINAL_STATES.includes(s));
    const only = !states
      ? ''
      : states.length === open.length && open.every((s) => states.includes(s))
        ? '_open'
        : `_${states.join('-')}`;
    return safeName(`${stem}${only}.${ext}`);
  }
}
