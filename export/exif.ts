import exifr from 'exifr';

/** When and where a photo was taken, by its EXIF tags; nulls when it has none (or is not a photo). */
export interface PhotoPlace {
  takenAt: string | null;
  lon: number | null;
  lat: number | null;
}

/**
 * The camera's time (DateTimeOriginal, with OffsetTimeOriginal when recorded) as
 * YYYY-MM-DDTHH:MM:SS[±HH:MM], and the GPS position in WGS 84 degrees. EXIF that does not parse is
 * no position: the photo itself is still kept.
 */
export async function photoPlace(bytes: Buffer, contentType: string): Promise<PhotoPlace> {
  const none = { takenAt: null, lon: null, lat: null };
  if (contentType !== 'image/jpeg' && contentType !== 'image/png') return none;
  try {
    const tags = (await exifr.parse(bytes, {
      gps: true,
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
