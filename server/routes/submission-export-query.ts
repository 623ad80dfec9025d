// What the CSV export takes from its query string beyond the layout flags: `$filter` over Central's
// submission metadata (compiled by the OData compiler into one SQL condition on alias s), and
// `deletedFields`, which brings back every field older published versions of the form had.
import type { Request } from 'express';
import pg from 'pg';
import type { Db } from '../db.ts';
import { many } from '../http.ts';
import { SqlParams, compileFilter, type Column } from '../formats/odata-query.ts';
import type { SchemaField } from '../formats/submission.ts';

/** What an export's $filter may name (Central allows only submission metadata there). */
const exportColumns = new Map<string, Column>([
  ['__id', { sql: 's.instance_id', type: 'text', notNull: true }],
  ['__system/submissionDate', { sql: 's.created_at', type: 'timestamptz', notNull: true }],
  ['__system/updatedAt', { sql: 's.updated_at', type: 'timestamptz' }],
  ['__system/submitterId', { sql: 's.submitter_id', type: 'bigint' }],
  ['__system/reviewState', { sql: 's.review_state', type: 'text' }],
  ['__system/deviceId', { sql: 's.device_id', type: 'text' }],
]);

function single(value: unknown): string | undefined {
  if (Array.isArray(value)) return single(value[0]);
  return typeof value === 'string' ? value : undefined;
}

/**
 * The export's `$filter` as one self-contained SQL condition over alias s ('true' without a filter): bind
 * parameters are inlined as quoted, typed literals so the condition fits any of the export's queries.
 * 400.18 when unparseable, 501.4/501.5 for what is not supported (as OData).
 */
export function exportFilterSql(req: Request): string {
  const params = new SqlParams();
  const compiled = compileFilter(single(req.query.$filter), exportColumns, params);
  return compiled.sql.replace(/\$(\d+)/g, (_m, n: string) => pg.escapeLiteral(String(params.values[Number(n) - 1])));
}

/** Whether `deletedFields=true` (case-insensitive). */
export function wantsDeletedFields(req: Request): boolean {
  return single(req.query.deletedFields)?.toLowerCase() === 'true';
}

/**
 * The current schema with the fields only older published versions had put back, each after the field that
 * preceded it in its own version (Central's merged fields for `deletedFields=true`).
 */
export async function allKnownFields(db: Db, formId: number, current: SchemaField[]): Promise<SchemaField[]> {
  const rows = await many<{ def_id: number; path: string; type: string; binary: boolean; select_multiple: boolean }>(db,
    `select ff.form_def_id as def_id, ff.path, ff.type, ff."binary", ff.select_multiple
     from app_public.form_fields ff join app_public.form_defs d on d.id = ff.form_def_id
     where d.form_id = $1 and d.published_at is not null order by d.published_at desc, d.id desc, ff.ord`, [formId]);
  const merged = [...current];
  const known = new Set(current.map((f) => f.path));
  let previousDef = -1;
  let anchor = -1;
  for (const r of rows) {
    if (r.def_id !== previousDef) { previousDef = r.def_id; anchor = -1; }
    if (known.has(r.path)) { anchor = merged.findIndex((f) => f.path === r.path); continue; }
    merged.splice(anchor + 1, 0, { path: r.path, type: r.type, binary: r.binary, selectMultiple: r.select_multiple });
    known.add(r.path);
    anchor += 1;
  }
  return merged;
}
