import exifr from 'exifr';

/** When and where a photo was taken, by its EXIF tags; nulls when it has none (or is not a photo). */
export interface PhotoPlace {
  takenAt: string | null;
  lon: number | null;
  lat: number | null;
}

/**
 * The largest EXIF block read (bytes). A JPEG's APP1 segment holds at most 64 KiB; a PNG's eXIf chunk
 * has no such limit, and a camera's EXIF with a thumbnail stays well under this.
 */
const MAX_EXIF_BYTES = 256 * 1024;
/** A TIFF structure's first bytes, little- or big-endian. */
const TIFF_MAGIC = ['49492a00', '4d4d002a'];
/** Chunks or segments walked before giving up: a file of thousands of empty chunks is not a photo. */
const MAX_BLOCKS = 4096;

/**
 * The camera's time (DateTimeOriginal, with OffsetTimeOriginal when recorded) as
 * YYYY-MM-DDTHH:MM:SS[±HH:MM], and the GPS position in WGS 84 degrees. EXIF that does not parse is
 * no position: the photo itself is still kept.
 *
 * Only the EXIF block is read (exifBlock): the file's other metadata never is. exifr handed a whole PNG
 * inflates its iCCP profile on the event loop with no bound — a 1 MB upload that inflates to 1 GiB
 * stalled the server for seconds (issue 29) — so it gets the EXIF block alone, at most MAX_EXIF_BYTES,
 * which it parses as the TIFF structure it is.
 */
export async function photoPlace(bytes: Buffer, contentType: string): Promise<PhotoPlace> {
  const none = { takenAt: null, lon: null, lat: null };
  if (contentType !== 'image/jpeg' && contentType !== 'image/png') return none;
  const block = exifBlock(bytes, contentType);
  if (!block) return none;
  try {
    const tags = (await exifr.parse(block, {
      tiff: true,
      exif: true,
      gps: true,
      icc: false,
      xmp: false,
      iptc: false,
      jfif: false,
      ihdr: false,
      interop: false,
      reviveValues: false,
      pick: [
        'DateTimeOriginal',
        'OffsetTimeOriginal',
        'GPSLatitude',
        'GPSLatitudeRef',
        'GPSLongitude',
        'GPSLongitudeRef',
      ],
    })) as
      | { DateTimeOriginal?: string; OffsetTimeOriginal?: string; latitude?: number; longitude?: number }
      | undefined;
    if (!tags) return none;
    const m = /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(tags.DateTimeOriginal ?? '');
    const offset = /^[+-]\d{2}:\d{2}$/.test(tags.OffsetTimeOriginal ?? '') ? tags.OffsetTimeOriginal : '';
    const finite = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
    const lon = finite(tags.longitude);
    const lat = finite(tags.latitude);
    const place =
      lon !== null && lat !== null && Math.abs(lon) <= 180 && Math.abs(lat) <= 90 && (lon !== 0 || lat !== 0);
    return {
      takenAt: m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${offset}` : null,
      lon: place ? lon : null,
      lat: place ? lat : null,
    };
  } catch {
    return none;
  }
}

/**
 * A photo's EXIF block — the TIFF structure after a JPEG APP1 segment's `Exif\0\0`, or a PNG's eXIf
 * chunk — found by walking the segment or chunk headers alone (nothing is decompressed), or null when
 * the file has none, it is longer than MAX_EXIF_BYTES or the walk runs off the file.
 */
export function exifBlock(bytes: Buffer, contentType: string): Buffer | null {
  const tiff = (b: Buffer) =>
    b.length >= 8 && b.length <= MAX_EXIF_BYTES && TIFF_MAGIC.includes(b.toString('hex', 0, 4)) ? b : null;
  if (contentType === 'image/jpeg') {
    if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
    let at = 2;
    for (let n = 0; n < MAX_BLOCKS && at + 4 <= bytes.length; n++) {
      if (bytes[at] !== 0xff) return null;
      const marker = bytes[at + 1];
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        at += 2; // markers without a length
        continue;
      }
      if (marker === 0xda || marker === 0xd9) return null; // the image data begins: no EXIF before it
      const length = bytes.readUInt16BE(at + 2);
      if (length < 2 || at + 2 + length > bytes.length) return null;
      if (marker === 0xe1 && bytes.toString('latin1', at + 4, at + 10) === 'Exif\x00\x00')
        return tiff(bytes.subarray(at + 10, at + 2 + length));
      at += 2 + length;
    }
    return null;
  }
  if (contentType === 'image/png') {
    if (bytes.length < 8 || bytes.readUInt32BE(0) !== 0x89504e47 || bytes.readUInt32BE(4) !== 0x0d0a1a0a) return null;
    let at = 8;
    for (let n = 0; n < MAX_BLOCKS && at + 12 <= bytes.length; n++) {
      const length = bytes.readUInt32BE(at);
      const type = bytes.toString('latin1', at + 4, at + 8);
      if (at + 12 + length > bytes.length) return null;
      if (type === 'eXIf') return tiff(bytes.subarray(at + 8, at + 8 + length));
      if (type === 'IEND') return null;
      at += 12 + length;
    }
  }
  return null;
}
