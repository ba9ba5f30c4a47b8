import { writeArrayBuffer } from 'geotiff';
import type { Crs } from '../../core/crs.ts';
import { isNorthUp, type GeoTransform } from '../geotransform.ts';

export interface WriteRasterInput {
  widthPx: number;
  heightPx: number;
  /** Pixel-interleaved samples (band-fastest), length width × height × bands. */
  samples: Uint8Array | Uint16Array | Float32Array;
  bands: number;
  crs: Crs;
  geoTransform: GeoTransform;
  nodata?: number | null;
}

/**
 * An uncompressed, single-strip GeoTIFF (geotiff.js's writer) with full georeferencing:
 * ModelTiepoint + ModelPixelScale for north-up grids, ModelTransformation otherwise, and the
 * EPSG code in the GeoKeys. PixelIsArea, as GDAL writes by default.
 */
export function encodeGeoTiff(input: WriteRasterInput): ArrayBuffer {
  const gt = input.geoTransform;
  const meta: Record<string, unknown> = {
    width: input.widthPx,
    height: input.heightPx,
    SamplesPerPixel: input.bands,
    PhotometricInterpretation: input.bands === 3 && input.samples instanceof Uint8Array ? 2 : 1,
    GTModelTypeGeoKey: input.crs.geographic ? 2 : 1,
    GTRasterTypeGeoKey: 1,
  };
  if (input.crs.geographic) meta.GeographicTypeGeoKey = input.crs.epsg;
  else meta.ProjectedCSTypeGeoKey = input.crs.epsg;
  if (isNorthUp(gt)) {
    meta.ModelPixelScale = [gt[1], -gt[5], 0];
    meta.ModelTiepoint = [0, 0, 0, gt[0], gt[3], 0];
  } else {
    meta.ModelTransformation = [gt[1], gt[2], 0, gt[0], gt[4], gt[5], 0, gt[3], 0, 0, 0, 0, 0, 0, 0, 1];
  }
  if (input.nodata !== undefined && input.nodata !== null) meta.GDAL_NODATA = `${input.nodata}\0`;
  return writeArrayBuffer(input.samples as never, meta as never);
}
