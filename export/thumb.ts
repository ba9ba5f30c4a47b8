import sharp from 'sharp';

/** The longest side of an evidence thumbnail, px. */
export const THUMB_PX = 240;

/**
 * A photo's thumbnail for the patch page: turned upright by its EXIF orientation, fitted inside
 * THUMB_PX, as JPEG. Null for what is not a photo (a PDF) or a photo libvips cannot decode (the
 * file itself is still there to download).
 */
export async function evidenceThumbnail(bytes: Buffer, contentType: string): Promise<Buffer | null> {
  if (!contentType.startsWith('image/')) return null;
  try {
    return await sharp(bytes, { limitInputPixels: 100_000_000 })
      .rotate()
      .resize(THUMB_PX, THUMB_PX, { fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 70 })
      .toBuffer();
  } catch {
    return null;
  }
}
