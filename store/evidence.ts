import { say } from '../i18n/say.ts';
import { byteSize } from '../i18n/index.ts';
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { BadInputError, ConflictError, NotFoundError } from '../core/errors.ts';
import { FINAL_STATES, type PatchStatus } from '../workflow/lifecycle.ts';
import { photoPlace } from '../export/exif.ts';
import { scopedPatch, scopeTown } from './patch.row.ts';
import type { User } from './users.ts';
import { readObject, type ObjectStore } from './objects.ts';

/** Accepted evidence types, recognised by their first bytes, not by what the client claims. */
const SIGNATURES: { type: string; ext: string; magic: number[] }[] = [
  { type: 'image/jpeg', ext: 'jpg', magic: [0xff, 0xd8, 0xff] },
  { type: 'image/png', ext: 'png', magic: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: 'application/pdf', ext: 'pdf', magic: [0x25, 0x50, 0x44, 0x46, 0x2d] },
];

export function sniffType(bytes: Uint8Array): { type: string; ext: string } | null {
  return SIGNATURES.find((s) => s.magic.every((b, i) => bytes[i] === b)) ?? null;
}

/** HEIC/HEIF (an ISO-BMFF 'ftyp' box with a HEIF brand): what iPhones take by default. */
export function isHeic(bytes: Uint8Array): boolean {
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
  db: Knex,
  store: ObjectStore,
  maxBytes: number,
  user: User,
  code: string,
  file: { filename: string; bytes: Buffer; note?: string },
): Promise<{
  id: number;
  sha256: string;
  content_type: string;
  taken_at: string | null;
  lon: number | null;
  lat: number | null;
}> {
  // the patch row locked: a close (or any move) waits for this upload, and this upload sees a close that came first
  const patch = await scopedPatch(db, user, code, true);
  if (user.role === 'admin') throw new BadInputError('bad_role', say('admin_no_evidence'));
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
  // the rows first, the file last, in the caller's transaction: a refused row never leaves a file
  // (a failure after this, at commit, is cleaned up by dropEvidenceFile)
  const key = evidenceKey(sha256, kind.ext);
  const stored = store.locate(key);
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
    })
    .returning('id');
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
    }),
  });
  await store.put(key, file.bytes, kind.type);
  return {
    id: Number(row.id),
    sha256,
    content_type: kind.type,
    taken_at: place.takenAt,
    lon: place.lon,
    lat: place.lat,
  };
}

/** Where an evidence file lives in the store: by its SHA-256, so the same photo twice is one file. */
const evidenceKey = (sha256: string, ext: string) => `evidence/${sha256.slice(0, 2)}/${sha256}.${ext}`;

/**
 * After an upload's transaction failed: its file is removed unless an evidence row (this upload's
 * twin, or the same photo uploaded before) keeps it.
 */
export async function dropEvidenceFile(db: Knex, store: ObjectStore, bytes: Buffer): Promise<void> {
  const kind = sniffType(bytes);
  if (!kind) return;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (await db('evidence').where({ sha256 }).first('id')) return;
  await store.remove(evidenceKey(sha256, kind.ext));
}

export async function readEvidence(
  db: Knex,
  user: User,
  id: number,
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
  return { filename: row.filename, contentType: row.content_type, bytes: await readObject(row.stored_as) };
}
