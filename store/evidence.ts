import { say } from '../i18n/say.ts';
import { byteSize } from '../i18n/index.ts';
import { createHash } from 'node:crypto';
import type { Db } from './db.ts';
import { BadInputError, ConflictError, NotFoundError } from '../core/errors.ts';
import { FINAL_STATES, type PatchStatus } from '../workflow/lifecycle.ts';
import { photoPlace } from '../export/exif.ts';
import { scopedPatch, scopeTown } from './patch.row.ts';
import type { User } from './users.ts';
import { readObject, type ObjectStore } from './objects.ts';
import { DEFAULT_EVIDENCE_RULES, type EvidenceRules } from '../workflow/env.ts';
import { evidenceStage, photoFlags, type EvidenceStage, type PhotoFlag } from '../workflow/evidence.proof.ts';
import { cjkFontOrNull } from '../export/fonts.ts';
import { stampPhoto } from '../export/stamp.ts';

/** Accepted evidence types, recognised by their first bytes, not by what the client claims. */
const SIGNATURES: { type: string; ext: string; magic: number[] }[] = [
  { type: 'image/jpeg', ext: 'jpg', magic: [0xff, 0xd8, 0xff] },
  { type: 'image/png', ext: 'png', magic: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: 'application/pdf', ext: 'pdf', magic: [0x25, 0x50, 0x44, 0x46, 0x2d] },
];

function sniffType(bytes: Uint8Array): { type: string; ext: string } | null {
  return SIGNATURES.find((s) => s.magic.every((b, i) => bytes[i] === b)) ?? null;
}

/** HEIC/HEIF (an ISO-BMFF 'ftyp' box with a HEIF brand): what iPhones take by default. */
function isHeic(bytes: Uint8Array): boolean {
  const text = (a: number, b: number) => String.fromCharCode(...bytes.subarray(a, b));
  return (
    bytes.length > 12 &&
    text(4, 8) === 'ftyp' &&
    ['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(text(8, 12))
  );
}

/**
 * Store an evidence file for a patch the user can see. Files go to the object store
 * (store/objects.ts: TUBAN_STORAGE_URL, else `<data>/evidence/`), outside anything served
 * statically, named by their SHA-256; only the database knows the original name. Town users may attach only to their own town's patches.
 */
export async function addEvidence(
  db: Db,
  store: ObjectStore,
  maxBytes: number,
  user: User,
  code: string,
  file: { filename: string; bytes: Buffer; note?: string; requestKey?: string },
  proof: EvidenceProofOptions = {},
): Promise<{
  id: number;
  sha256: string;
  content_type: string;
  taken_at: string | null;
  lon: number | null;
  lat: number | null;
  stage: EvidenceStage;
  flags: PhotoFlag[];
  distance_m: number | null;
  stamped: boolean;
  /** True when this request key had stored the file before: nothing new was stored. */
  repeated?: boolean;
}> {
  // the patch row locked: a close (or any move) waits for this upload, and this upload sees a close that came first
  const patch = await scopedPatch(db, user, code, true);
  if (user.role === 'admin') throw new BadInputError('bad_role', say('admin_no_evidence'));
  // the same upload sent again (its answer lost on a weak signal): the file it stored, not a second one
  if (file.requestKey) {
    const twin = await db('evidence').where({ patch_id: patch.id, request_key: file.requestKey }).first();
    if (twin) return { ...uploadAnswer(twin), repeated: true };
  }
  if (FINAL_STATES.includes(patch.status as PatchStatus))
    throw new ConflictError(say('evidence_case_finished', { code, status: patch.status }), { status: patch.status });
  if (file.bytes.length === 0) throw new BadInputError('bad_body', say('evidence_empty', { file: file.filename }));
  if (file.bytes.length > maxBytes)
    throw new BadInputError(
      'too_large',
      say('evidence_too_large', { file: file.filename, size: byteSize(file.bytes.length), max: byteSize(maxBytes) }),
    );
  const kind = sniffType(file.bytes);
  if (!kind && isHeic(file.bytes))
    // this machine's libvips decodes AVIF but not HEVC, so the photo cannot become a JPEG here
    throw new BadInputError('bad_type', say('evidence_heic', { file: file.filename }));
  if (!kind) throw new BadInputError('bad_type', say('evidence_type', { file: file.filename }));
  const sha256 = createHash('sha256').update(file.bytes).digest('hex');
  const place = await photoPlace(file.bytes, kind.type);
  const rules = proof.rules ?? DEFAULT_EVIDENCE_RULES;
  const stage = evidenceStage(patch.status as PatchStatus);
  const isPhoto = kind.type.startsWith('image/');
  const uploadedAt = new Date();
  const distanceM = place.lon !== null ? await distanceToPatch(db, patch.id, place.lon, place.lat!) : null;
  const flags = isPhoto
    ? photoFlags(
        {
          takenAt: place.takenAt,
          hasPosition: place.lon !== null,
          distanceM,
          uploadedAt,
          dispatchedAt: patch.dispatched_at ? new Date(patch.dispatched_at) : null,
          rectifyFrom: stage === 'rectify' ? await rectifyFrom(db, patch.id) : null,
          stage,
        },
        rules,
      )
    : [];
  // the stamped copy (time, place, patch, stage, author drawn in) is what exports and sheets show;
  // the original is kept as it came, under its SHA-256
  const font = isPhoto ? (proof.font === undefined ? cjkFontOrNull() : proof.font) : null;
  const stamp = font
    ? await stampPhoto(
        file.bytes,
        {
          takenAt: place.takenAt,
          uploadedLocal: new Date(uploadedAt.getTime() + rules.cityOffsetH * 3600_000)
            .toISOString()
            .slice(0, 16)
            .replace('T', ' '),
          lon: place.lon,
          lat: place.lat,
          distanceM,
          code: patch.code,
          author: user.displayName || user.username,
          stage,
          flags,
        },
        font,
      )
    : null;
  // the rows first, the files last, in the caller's transaction: a refused row never leaves a file
  // (a failure after this, at commit, is cleaned up by dropEvidenceFile)
  const key = evidenceKey(sha256, kind.ext);
  const stored = store.locate(key);
  const stampKey = stamp ? stampedKey(stamp) : null;
  proof.written?.push(key, ...(stampKey ? [stampKey] : []));
  const [row] = await db('evidence')
    .insert({
      patch_id: patch.id,
      filename: file.filename.slice(0, 200),
      content_type: kind.type,
      bytes: file.bytes.length,
      sha256,
      stored_as: stored,
      note: file.note ?? null,
      uploaded_by: user.id,
      taken_at: place.takenAt,
      lon: place.lon,
      lat: place.lat,
      stage,
      flags,
      distance_m: distanceM,
      stamped_as: stampKey ? store.locate(stampKey) : null,
      stamped_bytes: stamp ? stamp.length : null,
      request_key: file.requestKey ?? null,
    })
    .returning('*');
  await db('patch_event').insert({
    patch_id: patch.id,
    actor: user.username,
    type: 'evidence_added',
    from_status: patch.status,
    to_status: patch.status,
    detail: JSON.stringify({
      evidence_id: Number(row.id),
      filename: file.filename,
      sha256,
      bytes: file.bytes.length,
      ...(place.takenAt ? { taken_at: place.takenAt } : {}),
      ...(place.lon !== null ? { lon: place.lon, lat: place.lat } : {}),
      stage,
      ...(flags.length ? { flags } : {}),
    }),
  });
  await store.put(key, file.bytes, kind.type);
  if (stamp && stampKey) await store.put(stampKey, stamp, 'image/jpeg');
  return uploadAnswer(row);
}

/** What an upload answers, from its stored row (a first upload and one sent again answer alike). */
function uploadAnswer(row: Record<string, any>) {
  return {
    id: Number(row.id),
    sha256: row.sha256 as string,
    content_type: row.content_type as string,
    taken_at: row.taken_at as string | null,
    lon: row.lon as number | null,
    lat: row.lat as number | null,
    stage: row.stage as EvidenceStage,
    flags: row.flags as PhotoFlag[],
    distance_m: row.distance_m === null ? null : Math.round(Number(row.distance_m) * 10) / 10,
    stamped: row.stamped_as !== null,
  };
}

export interface EvidenceProofOptions {
  /** Flags and the city's clock; absent: DEFAULT_EVIDENCE_RULES. */
  rules?: EvidenceRules;
  /** The Chinese font the stamp is drawn in; absent: the first installed; null: no stamped copy. */
  font?: string | null;
  /** Collects the store keys the upload writes (so a rolled-back upload's files can be removed). */
  written?: string[];
}

/** Metres from a WGS 84 point to a patch's outline (0 inside it), on the spheroid. */
async function distanceToPatch(db: Db, patchId: number, lon: number, lat: number): Promise<number> {
  const r = await db.raw(
    `select ST_Distance(ST_Transform(geom, 4326)::geography, ST_SetSRID(ST_MakePoint(?, ?), 4326)::geography) as d
     from patch where id = ?`,
    [lon, lat, patchId],
  );
  return Number(r.rows[0].d);
}

/** When the rectification now running was ordered: the last rectify or send back. */
async function rectifyFrom(db: Db, patchId: number): Promise<Date | null> {
  const r = await db('patch_event')
    .where({ patch_id: patchId, to_status: 'rectifying' })
    .whereIn('type', ['rectify', 'send_back'])
    .max({ at: 'at' });
  return r[0]?.at ? new Date(r[0].at) : null;
}

/** Where a stamped copy lives: by its own SHA-256 (the same photo stamped for two patches is two copies). */
const stampedKey = (stamp: Buffer) => {
  const h = createHash('sha256').update(stamp).digest('hex');
  return `evidence/stamped/${h.slice(0, 2)}/${h}.jpg`;
};

/** Where an evidence file lives in the store: by its SHA-256, so the same photo twice is one file. */
const evidenceKey = (sha256: string, ext: string) => `evidence/${sha256.slice(0, 2)}/${sha256}.${ext}`;

/**
 * After an upload's transaction failed: its file is removed unless an evidence row (this upload's
 * twin, or the same photo uploaded before) keeps it.
 */
export async function dropEvidenceFile(
  db: Db,
  store: ObjectStore,
  bytes: Buffer,
  written: string[] = [],
): Promise<void> {
  const kind = sniffType(bytes);
  if (!kind) return;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const keys = new Set([evidenceKey(sha256, kind.ext), ...written]);
  for (const key of keys) {
    const at = store.locate(key);
    if (await db('evidence').where('stored_as', at).orWhere('stamped_as', at).first('id')) continue;
    await store.remove(key);
  }
}

export async function readEvidence(
  db: Db,
  user: User,
  id: number,
  variant: 'original' | 'stamped' = 'original',
): Promise<{ filename: string; contentType: string; bytes: Buffer }> {
  const town = scopeTown(user);
  const row = await db('evidence as e')
    .join('patch as p', 'p.id', 'e.patch_id')
    .where('e.id', id)
    .modify((q) => {
      if (town) q.andWhere('p.town_code', town);
    })
    .first('e.*');
  if (!row) throw new NotFoundError(say('evidence_unknown', { id }));
  if (variant === 'stamped') {
    if (!row.stamped_as) throw new NotFoundError(say('evidence_not_stamped', { id }));
    return { filename: row.filename, contentType: 'image/jpeg', bytes: await readObject(row.stamped_as) };
  }
  return { filename: row.filename, contentType: row.content_type, bytes: await readObject(row.stored_as) };
}
