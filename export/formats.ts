/** The forms a patch list is delivered in: GIS files, spreadsheets, PDF verification sheets, a zip package per town. */
export const EXPORT_FORMATS = ['gpkg', 'shp', 'geojson', 'kml', 'csv', 'xlsx', 'pdf', 'zip'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
