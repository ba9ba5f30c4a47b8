import type { PatchStatus } from './lifecycle.ts';
import { EVIDENCE_STAGES, PHOTO_FLAGS } from '../api/responses.ts';

export { EVIDENCE_STAGES, PHOTO_FLAGS };
export type EvidenceStage = (typeof EVIDENCE_STAGES)[number];

/**
 * Why a photo may not prove what it is attached to. A flag does not refuse the photo (a phone
 * without GPS still takes true pictures): it tells the supervisor who closes the case what to look at.
 */
export type PhotoFlag = (typeof PHOTO_FLAGS)[number];

/** A camera clock this far ahead of the server's at upload is still believed (phones drift, time zones slip). */
const CLOCK_SLACK_MS = 10 * 60_000;
/** A photo this little before the dispatch or the order is still taken after it: EXIF keeps whole seconds, and clocks drift. */
const BEFORE_SLACK_MS = 60_000;

/** The stage a file uploaded now documents: rectification once the order runs, verification before. */
export function evidenceStage(status: PatchStatus): EvidenceStage {
  return status === 'rectifying' || status === 'rectified' ? 'rectify' : 'verify';
}

/**
 * The instant a camera's `YYYY-MM-DDTHH:MM:SS[±HH:MM]` names: with its own offset when it wrote one,
 * else in the city's (cameras keep local time). Null for anything else.
 */
export function cameraInstant(takenAt: string | null, cityOffsetH: number): Date | null {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})([+-]\d{2}:\d{2})?$/.exec(takenAt ?? '');
  if (!m) return null;
  const offset = m[2] ?? offsetText(cityOffsetH);
  const t = new Date(`${m[1]}${offset}`);
  return Number.isNaN(t.getTime()) ? null : t;
}

function offsetText(h: number): string {
  const mins = Math.round(Math.abs(h) * 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${h < 0 ? '-' : '+'}${pad(Math.floor(mins / 60))}:${pad(mins % 60)}`;
}

export interface PhotoFacts {
  /** The camera's time as photoPlace reads it; null: none. */
  takenAt: string | null;
  hasPosition: boolean;
  /** Metres from the camera's position to the patch outline (0 inside); null without a position. */
  distanceM: number | null;
  uploadedAt: Date;
  /** When the patch was dispatched to its town; null: not yet. */
  dispatchedAt: Date | null;
  /** When the rectification now running was ordered (rectify or send back); null outside it. */
  rectifyFrom: Date | null;
  stage: EvidenceStage;
}

export interface ProofRules {
  /** TUBAN_EVIDENCE_MAX_DISTANCE_M: a photo farther than this from its patch is flagged. */
  maxDistanceM: number;
  /** TUBAN_UTC_OFFSET_H: the time zone of a camera clock that wrote none. */
  cityOffsetH: number;
}

/** The flags of one photo (never of a PDF: a scanned order has no camera). */
export function photoFlags(f: PhotoFacts, rules: ProofRules): PhotoFlag[] {
  const flags: PhotoFlag[] = [];
  const taken = cameraInstant(f.takenAt, rules.cityOffsetH);
  if (!taken) flags.push('no_time');
  if (!f.hasPosition) flags.push('no_position');
  const before = (t: Date | null) => taken !== null && t !== null && taken.getTime() < t.getTime() - BEFORE_SLACK_MS;
  if (before(f.dispatchedAt)) flags.push('before_dispatch');
  else if (f.stage === 'rectify' && before(f.rectifyFrom)) flags.push('before_rectify');
  if (taken && taken.getTime() > f.uploadedAt.getTime() + CLOCK_SLACK_MS) flags.push('after_upload');
  if (f.distanceM !== null && f.distanceM > rules.maxDistanceM) flags.push('far');
  return flags;
}
