import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { exifBlock, photoPlace } from '../export/exif.ts';

/** A photo's time and place, read from its EXIF block alone (issue 29: never the rest of the file's metadata). */
describe('photo EXIF', () => {
  const exif = {
    IFD0: { Make: 'tuban' },
    IFD2: { DateTimeOriginal: '2024:03:20 10:31:05', OffsetTimeOriginal: '+08:00' },
    IFD3: {
      GPSLatitudeRef: 'N',
      GPSLatitude: '24/1 30/1 5616/100',
      GPSLongitudeRef: 'E',
      GPSLongitude: '118/1 6/1 1212/100',
    },
  };
  const photo = (format: 'jpeg' | 'png') =>
    sharp({ create: { width: 40, height: 30, channels: 3, background: '#686' } })
      .withExif(exif)
      [format]()
      .toBuffer();

  for (const [format, type] of [
    ['jpeg', 'image/jpeg'],
    ['png', 'image/png'],
  ] as const)
    it(`reads the time and GPS position of a ${format.toUpperCase()} from its EXIF block`, async () => {
      const bytes = await photo(format);
      const block = exifBlock(bytes, type);
      expect(block?.toString('latin1', 0, 2)).toMatch(/II|MM/);
      const p = await photoPlace(bytes, type);
      expect(p.takenAt).toBe('2024-03-20T10:31:05+08:00');
      expect(p.lat).toBeCloseTo(24 + 30 / 60 + 56.16 / 3600, 6);
      expect(p.lon).toBeCloseTo(118 + 6 / 60 + 12.12 / 3600, 6);
    });

  it('finds nothing in a photo without EXIF, a truncated one, or what is not a photo', async () => {
    const plain = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
      .jpeg()
      .toBuffer();
    expect(exifBlock(plain, 'image/jpeg')).toBeNull();
    const withExif = await photo('jpeg');
    expect(exifBlock(withExif.subarray(0, 40), 'image/jpeg')).toBeNull();
    expect(exifBlock(Buffer.from('%PDF-1.4'), 'application/pdf')).toBeNull();
    expect(await photoPlace(withExif.subarray(0, 40), 'image/jpeg')).toEqual({ takenAt: null, lon: null, lat: null });
  });
});
