import { BadInputError } from './errors.ts';

/** A coordinate reference system as a value: EPSG code and whether coordinates are degrees. */
export interface Crs {
  readonly epsg: number;
  readonly geographic: boolean;
}

export function crs(epsg: number, geographic: boolean): Crs {
  return Object.freeze({ epsg, geographic });
}

/** CGCS2000 / 3-degree Gauss-Kruger CM 117E — Xiamen's usual survey CRS; tuban's default storage CRS. */
export const EPSG_4548 = crs(4548, false);

export function sameCrs(a: Crs, b: Crs): boolean {
  return a.epsg === b.epsg;
}

export function crsLabel(c: Crs): string {
  return `EPSG:${c.epsg}`;
}

/** GeoKey values, as geotiff.js returns them from `image.getGeoKeys()`. */
export interface GeoKeys {
  GTModelTypeGeoKey?: number;
  GTRasterTypeGeoKey?: number;
  GeographicTypeGeoKey?: number;
  ProjectedCSTypeGeoKey?: number;
  ProjLinearUnitsGeoKey?: number;
  [key: string]: unknown;
}

const USER_DEFINED = 32767;
const METRE = 9001;

/**
 * The CRS a GeoTIFF declares in its GeoKeys. Only EPSG-coded CRSs are accepted: a user-defined
 * (32767) or missing code would need WKT parsing and guessing, and a wrong guess silently
 * misplaces every patch, so such files are refused with the reason.
 */
export function crsFromGeoKeys(keys: GeoKeys | null | undefined, file: string): Crs {
  if (!keys || Object.keys(keys).length === 0) {
    throw new BadInputError(
      'no_crs',
      `${file}: no GeoKeys, so the CRS is unknown; re-export the file with its EPSG code (e.g. gdal_translate -a_srs EPSG:4548)`,
      { file },
    );
  }
  const model = keys.GTModelTypeGeoKey;
  if (model === 1 || (model === undefined && keys.ProjectedCSTypeGeoKey)) {
    const code = keys.ProjectedCSTypeGeoKey;
    if (!code || code === USER_DEFINED) {
      throw new BadInputError(
        'unknown_crs',
        `${file}: projected CRS is user-defined (ProjectedCSTypeGeoKey=${code ?? 'missing'}), not an EPSG code; assign one with gdal_translate -a_srs EPSG:NNNN`,
        { file, geoKeys: keys },
      );
    }
    if (keys.ProjLinearUnitsGeoKey !== undefined && keys.ProjLinearUnitsGeoKey !== METRE) {
      throw new BadInputError(
        'unsupported_units',
        `${file}: projected CRS EPSG:${code} uses linear unit ${keys.ProjLinearUnitsGeoKey}, only metres (9001) are supported`,
        { file, epsg: code },
      );
    }
    return crs(code, false);
  }
  if (model === 2 || (model === undefined && keys.GeographicTypeGeoKey)) {
    const code = keys.GeographicTypeGeoKey;
    if (!code || code === USER_DEFINED) {
      throw new BadInputError(
        'unknown_crs',
        `${file}: geographic CRS is user-defined (GeographicTypeGeoKey=${code ?? 'missing'}), not an EPSG code`,
        { file, geoKeys: keys },
      );
    }
    return crs(code, true);
  }
  throw new BadInputError(
    'unknown_crs',
    `${file}: GTModelTypeGeoKey=${model ?? 'missing'} is neither projected (1) nor geographic (2)`,
    { file, geoKeys: keys },
  );
}
