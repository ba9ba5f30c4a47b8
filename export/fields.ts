import { label } from '../i18n/index.ts';
import type { WorkCalendar } from '../workflow/calendar.ts';
import { isProvisional, workingDaysBetween } from '../workflow/calendar.ts';

/** 1 亩 (mu) = 10000/15 m². */
const M2_PER_MU = 10000 / 15;

/**
 * The attribute table of a patch export. `name` is the field name in GIS files (≤ 10 ASCII
 * characters, so it survives in a Shapefile); `alias` the Chinese heading used where the format
 * allows (spreadsheets, CSV, KML display names).
 */
export const FIELDS = [
  { name: 'code', alias: '图斑编号', type: 'string' },
  { name: 'month', alias: '监测月份', type: 'string' },
  { name: 'before_dt', alias: '前时相', type: 'string' },
  { name: 'after_dt', alias: '后时相', type: 'string' },
  { name: 'district', alias: '区县代码', type: 'string' },
  { name: 'town_code', alias: '镇街代码', type: 'string' },
  { name: 'town', alias: '镇街', type: 'string' },
  { name: 'grid', alias: '网格', type: 'string' },
  { name: 'x', alias: '中心点X', type: 'real' },
  { name: 'y', alias: '中心点Y', type: 'real' },
  { name: 'lon', alias: '经度', type: 'real' },
  { name: 'lat', alias: '纬度', type: 'real' },
  { name: 'area_m2', alias: '面积(平方米)', type: 'real' },
  { name: 'area_mu', alias: '面积(亩)', type: 'real' },
  { name: 'farm_m2', alias: '占耕地(平方米)', type: 'real' },
  { name: 'eco_m2', alias: '占生态红线(平方米)', type: 'real' },
  { name: 'water_m2', alias: '占水域(平方米)', type: 'real' },
  { name: 'change_typ', alias: '变化类型', type: 'string' },
  { name: 'change_cd', alias: '变化类型代码', type: 'string' },
  { name: 'reg_m2', alias: '占登记建筑(平方米)', type: 'real' },
  { name: 'ext_m2', alias: '登记建筑外(平方米)', type: 'real' },
  { name: 'class', alias: '类别', type: 'string' },
  { name: 'class_cd', alias: '类别代码', type: 'string' },
  { name: 'status', alias: '状态', type: 'string' },
  { name: 'status_cd', alias: '状态代码', type: 'string' },
  { name: 'result', alias: '核查结果', type: 'string' },
  { name: 'result_cd', alias: '核查结果代码', type: 'string' },
  { name: 'violation', alias: '违法类型', type: 'string' },
  { name: 'measure', alias: '整改措施', type: 'string' },
  { name: 'escalated', alias: '挂牌督办', type: 'string' },
  { name: 'overdue_dt', alias: '逾期起始', type: 'string' },
  { name: 'verify_due', alias: '核查期限', type: 'string' },
  { name: 'rect_due', alias: '整改期限', type: 'string' },
  { name: 'due_prov', alias: '期限暂定', type: 'string' },
  { name: 'days_late', alias: '逾期工作日', type: 'integer' },
  { name: 'chk_month', alias: '回头看月份', type: 'string' },
  { name: 'chk_result', alias: '回头看结果', type: 'string' },
  { name: 'chk_cd', alias: '回头看结果代码', type: 'string' },
  { name: 'chk_score', alias: '回头看变化概率', type: 'real' },
  { name: 'source', alias: '来源', type: 'string' },
  { name: 'model', alias: '模型', type: 'string' },
  { name: 'confidence', alias: '置信度', type: 'real' },
  { name: 'note', alias: '备注', type: 'string' },
] as const;

type FieldName = (typeof FIELDS)[number]['name'];
export type ExportRecord = Record<FieldName, string | number | null> & {
  geomStorage: unknown;
  geomLonLat: unknown;
  srid: number;
  baselineMonth: string;
};

const round = (v: unknown, d: number) =>
  v === null || v === undefined ? null : Math.round(Number(v) * 10 ** d) / 10 ** d;

/** A database row (sql/export/patches.sql) as an export record, with days overdue on the calendar. */
export function toRecord(r: Record<string, any>, cal: WorkCalendar, today: string): ExportRecord {
  const due = r.status === 'dispatched' ? r.verify_due : r.status === 'rectifying' ? r.rectify_due : null;
  return {
    code: r.code,
    month: r.month,
    before_dt: r.before_date,
    after_dt: r.after_date,
    district: r.district_code,
    town_code: r.town_code,
    town: r.town_name,
    grid: r.grid_code,
    x: round(r.x, 2),
    y: round(r.y, 2),
    lon: round(r.lon, 7),
    lat: round(r.lat, 7),
    // measures to 0.01, as a register keeps them (coordinates keep their own precision)
    area_m2: round(r.area_m2, 2),
    area_mu: round(Number(r.area_m2) / M2_PER_MU, 2),
    farm_m2: round(r.farmland_m2, 2),
    eco_m2: round(r.ecological_m2, 2),
    water_m2: round(r.water_m2, 2),
    // the Chinese columns carry the words (the shared catalogue), the code columns beside them the codes
    change_typ: label('relation', r.building_relation ?? 'new'),
    change_cd: r.building_relation ?? 'new',
    reg_m2: round(r.registered_building_m2 ?? 0, 2),
    ext_m2: round(r.extension_m2 ?? r.area_m2, 2),
    class: label('class', r.class),
    class_cd: r.class,
    status: label('status', r.status),
    status_cd: r.status,
    result: label('result', r.verification_result) || null,
    result_cd: r.verification_result ?? null,
    violation: label('violation', r.violation) || null,
    measure: label('measure', r.measure) || null,
    escalated: r.escalated ? '是' : '否',
    overdue_dt: r.overdue_since ?? null,
    verify_due: r.verify_due,
    rect_due: r.rectify_due,
    // a deadline past the calendar's last year was counted on weekends alone: it may fall on a holiday
    due_prov: isProvisional(cal, r.verify_due) || isProvisional(cal, r.rectify_due) ? '是' : '否',
    days_late: due && due < today ? workingDaysBetween(cal, due, today) : 0,
    chk_month: r.imagery_check?.month ?? null,
    chk_result: label('lookback', r.imagery_check?.result) || null,
    chk_cd: r.imagery_check?.result ?? null,
    chk_score: round(r.imagery_check?.score, 2),
    source: label('source', r.source ?? 'imagery'),
    model: r.model_name ? `${r.model_name} ${r.model_version}` : null,
    confidence: round(r.mean_prob, 2),
    note: r.note ?? null,
    geomStorage: r.geom_storage,
    geomLonLat: r.geom_lonlat,
    srid: Number(r.srid),
    baselineMonth: r.baseline_month,
  };
}
