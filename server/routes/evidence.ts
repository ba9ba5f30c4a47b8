import { say } from '../../i18n/say.ts';
import { z } from 'zod';
import { BadInputError } from '../../core/errors.ts';
import { downloadName, safeName } from '../../export/names.ts';
import { addEvidence, dropEvidenceFile, readEvidence } from '../../store/evidence.ts';
import { objectStore } from '../../store/objects.ts';
import { errors, ok, PatchCodeParams, RowId, type RouteContext, type ZodApp } from '../context.ts';
import { EvidenceUploadBody } from '../../api/responses.ts';
import { RequestKey } from '../../workflow/actions.schema.ts';
import { evidenceThumbnail, THUMB_PX } from '../../export/thumb.ts';

const EvidenceQuery = z.object({
  filename: z.string().max(255).optional().describe("the file's name on the uploader's device (its stem is kept)"),
  note: z.string().max(2000).optional(),
  request_key: RequestKey.optional().describe(
    'a key of your own for this upload: sent again (its answer lost), the same file is answered, not stored twice',
  ),
});
const EXTENSION: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'application/pdf': 'pdf' };

/** Site photos and documents: uploaded to a patch, downloaded by whoever may see the patch. */
export function evidenceRoutes(app: ZodApp, ctx: RouteContext): void {
  const { db, config, me } = ctx;
  app.post(
    '/api/patches/:code/evidence',
    {
      // the one route that takes a large body: a photo up to the evidence limit (the limit's own message past it)
      bodyLimit: ctx.maxEvidenceBytes + 1,
      schema: {
        summary:
          'Attach a photo or PDF: the body is the file, with Content-Type image/jpeg, image/png or application/pdf',
        tags: ['evidence'],
        params: PatchCodeParams,
        querystring: EvidenceQuery,
        consumes: ['image/jpeg', 'image/png', 'application/pdf'],
        body: z.unknown().describe('the file'),
        response: {
          201: EvidenceUploadBody.describe('the stored file: its id, SHA-256, type, place, stage and flags'),
          ...errors(400, 401, 403, 404, 413),
        },
      },
    },
    async (req, reply) => {
      if (!Buffer.isBuffer(req.body)) throw new BadInputError('bad_body', say('evidence_body'));
      const bytes = req.body;
      const store = objectStore(config);
      const written: string[] = [];
      const r = await ctx
        .audited(req, 201, (trx) =>
          addEvidence(
            trx,
            store,
            ctx.maxEvidenceBytes,
            me(req),
            req.params.code,
            {
              filename: req.query.filename ?? 'evidence',
              bytes,
              note: req.query.note,
              requestKey: req.query.request_key,
            },
            { rules: ctx.env.evidence, font: ctx.stampFont, written },
          ),
        )
        .catch(async (err: unknown) => {
          // the rows rolled back: the files go too (the original and its stamped copy), unless another row keeps them
          await dropEvidenceFile(ctx.db, store, bytes, written).catch(() => {});
          throw err;
        });
      return reply.status(201).send(r);
    },
  );
  app.get(
    '/api/evidence/:id',
    {
      schema: {
        summary: 'Download an evidence file',
        tags: ['evidence'],
        params: z.object({ id: RowId('evidence id') }),
        response: { ...ok('the file'), ...errors(400, 401, 404) },
      },
    },
    async (req, reply) => {
      const f = await readEvidence(db, me(req), req.params.id);
      // the type is the one the upload's magic bytes proved; the name keeps the uploader's stem with the extension of that type
      const name = `${safeName(f.filename.replace(/\.[^.]*$/, ''), 'evidence')}.${EXTENSION[f.contentType] ?? 'bin'}`;
      return reply
        .header('content-type', f.contentType)
        .header(
          'content-disposition',
          `attachment; filename="${downloadName(name)}"; filename*=UTF-8''${encodeURIComponent(name)}`,
        )
        .send(f.bytes);
    },
  );
  app.get(
    '/api/evidence/:id/stamped.jpg',
    {
      schema: {
        summary:
          "A photo's stamped copy (JPEG): upright, at most 2048 px, with when and where it was taken, the patch, the stage, its author and its flags drawn in",
        tags: ['evidence'],
        params: z.object({ id: RowId('evidence id') }),
        response: { ...ok('image/jpeg'), ...errors(400, 401, 404) },
      },
    },
    async (req, reply) => {
      const f = await readEvidence(db, me(req), req.params.id, 'stamped');
      const name = `${safeName(f.filename.replace(/\.[^.]*$/, ''), 'evidence')}-水印.jpg`;
      return reply
        .header('content-type', 'image/jpeg')
        .header('cache-control', 'private, max-age=86400')
        .header(
          'content-disposition',
          `inline; filename="${downloadName(name)}"; filename*=UTF-8''${encodeURIComponent(name)}`,
        )
        .send(f.bytes);
    },
  );
  app.get(
    '/api/evidence/:id/thumb.jpg',
    {
      schema: {
        summary: `A photo's thumbnail (JPEG, at most ${THUMB_PX} px, turned upright); 204 for a PDF or a photo that does not decode`,
        tags: ['evidence'],
        params: z.object({ id: RowId('evidence id') }),
        response: { ...ok('image/jpeg'), ...ok('not a photo: no thumbnail', 204), ...errors(400, 401, 404) },
      },
    },
    async (req, reply) => {
      const f = await readEvidence(db, me(req), req.params.id);
      const thumb = await ctx.images.run(req.signal, () => evidenceThumbnail(f.bytes, f.contentType));
      if (!thumb) return reply.status(204).send();
      return reply.header('content-type', 'image/jpeg').header('cache-control', 'private, max-age=3600').send(thumb);
    },
  );
}
