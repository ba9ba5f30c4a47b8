import type { GeoTIFFImage } from 'geotiff';

/**
 * The TIFF tags of one image as plain lookups by name, for the readers that look past geotiff.js
 * (compression, layout, block offsets, georeferencing). geotiff.js types its lookups by literal tag
 * names; this is the one place that steps around that.
 */
export class TiffTags {
  private readonly fd: {
    hasTag(t: string): boolean;
    getValue(t: string): unknown;
    loadValue(t: string): Promise<ArrayLike<number>>;
  };

  constructor(image: GeoTIFFImage) {
    this.fd = image.fileDirectory as unknown as TiffTags['fd'];
  }

  has(tag: string): boolean {
    return this.fd.hasTag(tag);
  }

  /** A single-valued tag as a number (the first value of a list), or `dflt` when the tag is absent. */
  number(tag: string, dflt: number): number {
    if (!this.fd.hasTag(tag)) return dflt;
    const v = this.fd.getValue(tag);
    return Number(typeof v === 'object' && v !== null ? (v as ArrayLike<number>)[0] : v);
  }

  /** A tag's values, or undefined when it is absent. */
  numbers(tag: string): number[] | undefined {
    if (!this.fd.hasTag(tag)) return undefined;
    const v = this.fd.getValue(tag);
    return v === undefined || v === null
      ? undefined
      : typeof v === 'object'
        ? Array.from(v as ArrayLike<number>)
        : [Number(v)];
  }

  /** A tag stored out of line that geotiff.js reads only on request (strip and tile offsets, byte counts). */
  load(tag: string): Promise<ArrayLike<number>> {
    return this.fd.loadValue(tag);
  }
}
