// What every form route shares: reading the upload (XForm XML or XLSForm through the converter), finding a
// form version the caller may read (404.1 / 403.1 as Central decides), and Central's JSON shapes.
import express, { type Request } from 'express';
import type { Db } from '../db.ts';
import type { Config } from '../config.ts';
import { Problem, problems } from '../errors.ts';
import { idParam } from '../http.ts';
import { parseXForm, type XForm, type FormField } from '../formats/xform.ts';

/** XML and binary bodies (express.json already took JSON and bodiless requests). */
export function rawBody(req: Request, res: express.Response, next: express.NextFunction) {
  const config = req.app.locals.config as Config;
  return express.raw({ type: () => true, limit: config.uploadLimit })(req, res, next);
}

export function hasBody(req: Request): boolean {
  return Buffer.isBuffer(req.body) && req.body.length > 0;
}

const excelTypes: Record<string, string> = {
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'application/vnd.ms-excel': 'xls',
};

export const isTrue = (value: unknown) => typeof value === 'string' && value.toLowerCase() === 'true';

export interface Upload {
  xml: string;
  form: XForm;
  /** The original spreadsheet, when an XLSForm was uploaded. */
  excel: { content: Buffer; contentType: string } | null;
  /** The converter's warnings (raised as 400.16 with the workflow warnings, unless ?ignoreWarnings=true). */
  xlsFormWarnings: string[];
  /** itemsets.csv, when the conversion produced one (external choices). */
  itemsets: string | null;
}

/** Reads the request body as an XForm, converting XLSForms first; parsing happens here, once. */
export async function readUpload(req: Request): Promise<Upload> {
  const contentType = (req.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  const content = hasBody(req) ? req.body as Buffer : Buffer.alloc(0);
  if (excelTypes[contentType]) {
    const converted = await convertXlsForm(req, content);
    return { xml: converted.xml, form: parseXForm(converted.xml), excel: { content, contentType },
      xlsFormWarnings: converted.warnings, itemsets: converted.itemsets };
  }
  const xml = content.toString('utf8');
  return { xml, form: parseXForm(xml), excel: null, xlsFormWarnings: [], itemsets: null };
}

const xlsformNotAvailable = () => new Problem(502.2, 'The XLSForm conversion service could not be contacted.');

/**
 * POSTs the spreadsheet to the pyxform-http–compatible service at XLSFORM_URL (POST /api/v1/convert, the file
 * as the body, the X-XlsForm-FormId-Fallback header passed on). It answers JSON: 200 with {result: <XForm>,
 * itemsets, warnings: [...]}, or 400 with {error, warnings}.
 */
async function convertXlsForm(req: Request, content: Buffer): Promise<{ xml: string; warnings: string[]; itemsets: string | null }> {
  const config = req.app.locals.config as Config;
  if (!config.xlsformUrl) throw new Problem(501.3, 'This ODK Central has not been configured to allow XLSForm conversion. Please upload an XForms XML file (try XLSForm Online) or contact your server administrator.');
  const fallback = req.get('x-xlsform-formid-fallback');
  let response: Response;
  let result: { result?: unknown; error?: unknown; warnings?: unknown; itemsets?: unknown };
  try {
    response = await fetch(`${config.xlsformUrl}/api/v1/convert`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...(fallback !== undefined ? { 'X-XlsForm-FormId-Fallback': fallback } : {}) },
      body: new Uint8Array(content),
      signal: AbortSignal.timeout(60_000),
    });
    result = await response.json() as typeof result;
  } catch {
    throw xlsformNotAvailable();
  }
  const warnings = Array.isArray(result.warnings) ? result.warnings.map(String) : [];
  if (response.status !== 200 || typeof result.result !== 'string' || result.result === '')
    throw new Problem(400.15, 'The given XLSForm file was not valid. Please see the error details for more information.',
      { error: result.error ?? null, warnings: Array.isArray(result.warnings) ? warnings : null });
  return {
    xml: result.result,
    warnings: isTrue(req.query.ignoreWarnings) ? [] : warnings,
    itemsets: typeof result.itemsets === 'string' && result.itemsets !== '' ? result.itemsets : null,
  };
}

/** Stores the uploaded spreadsheet (returns its blob id, null for XML uploads). */
export async function storeExcel(db: Db, upload: Upload): Promise<number | null> {
  if (!upload.excel) return null;
  const { rows: [blob] } = await db.query('select app_public.ensure_blob($1, $2) as id', [upload.excel.content, upload.excel.contentType]);
  return blob.id;
}

/** After the version is stored: the converter's itemsets.csv becomes its expected itemsets.csv attachment. */
export async function storeItemsets(db: Db, upload: Upload, defId: number): Promise<void> {
  if (upload.itemsets === null) return;
  await db.query(`select app_public.set_itemsets($1, app_public.ensure_blob(convert_to($2, 'UTF8'), 'text/csv'))`, [defId, upload.itemsets]);
}

/** The parsed upload as the SQL API functions take it (the converter's warnings ride along as xlsFormWarnings). */
export const parsedJson = (form: XForm, xlsFormWarnings: string[] = []) => JSON.stringify({ ...form, xlsFormWarnings });

/** GET of the original spreadsheet of a version (.xlsx or .xls, 404.1 when the version was uploaded otherwise). */
export async function sendExcel(db: Db, res: express.Response, form: FormRow, suffix: 'xlsx' | 'xls'): Promise<void> {
  const { rows: [blob] } = await db.query('select content, content_type from app_public.blobs where id = $1', [form.xls_blob_id]);
  const expected = Object.keys(excelTypes).find((type) => excelTypes[type] === suffix)!;
  if (!blob || blob.content_type !== expected) throw problems.notFound();
  res.set('Content-Disposition', contentDisposition(`${form.xml_form_id}.${suffix}`));
  res.type(expected).send(blob.content);
}

// ---------------------------------------------------------------------------------------------

export interface FormRow {
  id: number;
  project_id: number;
  xml_form_id: string;
  state: string;
  actee_id: string;
  enketo_id: string | null;
  enketo_once_id: string | null;
  webforms_enabled: boolean;
  created_at: Date;
  updated_at: Date | null;
  deleted_at: Date | null;
  current_def_id: number | null;
  draft_def_id: number | null;
  target_def_id: number | null;
  def_id: number | null;
  name: string | null;
  version: string | null;
  hash: string | null;
  sha: string | null;
  sha256: string | null;
  key_id: number | null;
  draft_token: string | null;
  def_enketo_id: string | null;
  published_at: Date | null;
  xls_blob_id: number | null;
}

export const formColumns = `f.id, f.project_id, f.xml_form_id, f.state, f.actee_id, f.enketo_id, f.enketo_once_id,
  f.webforms_enabled, f.created_at, f.updated_at, f.deleted_at, f.current_def_id, f.draft_def_id,
  d.id as def_id, d.name, d.version, d.hash, d.sha, d.sha256, d.key_id, d.draft_token, d.enketo_id as def_enketo_id,
  d.published_at, d.xls_blob_id`;

/** Which version of a form a route is about. */
export type Version = { kind: 'any' } | { kind: 'draft' } | { kind: 'published' } | { kind: 'version'; version: string };

function defExpression(version: Version): string {
  switch (version.kind) {
    case 'any': return 'coalesce(f.current_def_id, f.draft_def_id)';
    case 'draft': return 'f.draft_def_id';
    case 'published': return 'f.current_def_id';
    case 'version': return `(select x.id from app_public.form_defs x where x.form_id = f.id and x.version = $3 and x.published_at is not null
                             order by x.published_at desc limit 1)`;
  }
}

/**
 * The form (and the def of the requested version) if the caller may read it. A form that does not exist is
 * 404.1, one the caller may not see is 403.1, a missing draft or version is 404.1.
 */
export async function readForm(db: Db, projectId: number, xmlFormId: string, version: Version = { kind: 'any' }): Promise<FormRow> {
  const target = defExpression(version);
  const params: unknown[] = [projectId, xmlFormId];
  if (version.kind === 'version') params.push(version.version);
  const { rows } = await db.query<FormRow>(
    `select ${formColumns}, ${target} as target_def_id
     from app_public.forms f left join app_public.form_defs d on d.id = ${target}
     where f.project_id = $1 and f.xml_form_id = $2 and f.deleted_at is null
       and app_hidden.project_actee(f.project_id) is not null`, params);
  const row = rows[0];
  if (!row) {
    await db.query('select app_hidden.form_for($1, $2)', [projectId, xmlFormId]);
    throw problems.insufficientRights();
  }
  if (row.target_def_id === null) throw problems.notFound();
  if (row.def_id === null) throw problems.insufficientRights();
  return row;
}

/** The actee of a live form after checking verb on it: 404.1 when there is none, then 403.1. */
export async function formActee(db: Db, projectId: number, xmlFormId: string, verb: string): Promise<string> {
  const { rows: [f] } = await db.query<{ actee_id: string }>('select actee_id from app_hidden.form_for($1, $2, $3)',
    [projectId, xmlFormId, verb]);
  return f.actee_id;
}

export function projectParam(req: Request): number {
  return idParam(String(req.params.projectId));
}

export function formParam(req: Request): string {
  return String(req.params.xmlFormId);
}

export function formJson(r: FormRow) {
  const isDraft = r.def_id !== null && r.def_id === r.draft_def_id;
  const isCurrent = r.def_id !== null && r.def_id === r.current_def_id;
  return {
    projectId: r.project_id,
    xmlFormId: r.xml_form_id,
    state: r.state,
    enketoId: isDraft ? r.def_enketo_id : isCurrent ? r.enketo_id : null,
    enketoOnceId: isCurrent ? r.enketo_once_id : null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    webformsEnabled: r.webforms_enabled,
    keyId: r.key_id,
    version: r.version,
    hash: r.hash,
    sha: r.sha,
    sha256: r.sha256,
    draftToken: r.draft_token,
    publishedAt: r.published_at,
    name: r.name,
    ...(r.deleted_at ? { deletedAt: r.deleted_at, id: r.id } : {}),
  };
}

/** Extended metadata columns for a form row aliased f and def d (Central's Form.Extended). */
export const extendedColumns = `
  (select count(*)::int from app_public.submissions s where s.form_id = f.id and s.draft = (d.id = f.draft_def_id) and s.deleted_at is null) as submissions,
  (select count(*)::int from app_public.submissions s where s.form_id = f.id and s.draft = (d.id = f.draft_def_id) and s.deleted_at is null and s.review_state is null) as received,
  (select count(*)::int from app_public.submissions s where s.form_id = f.id and s.draft = (d.id = f.draft_def_id) and s.deleted_at is null and s.review_state = 'hasIssues') as has_issues,
  (select count(*)::int from app_public.submissions s where s.form_id = f.id and s.draft = (d.id = f.draft_def_id) and s.deleted_at is null and s.review_state = 'edited') as edited,
  (select max(s.created_at) from app_public.submissions s where s.form_id = f.id and s.draft = (d.id = f.draft_def_id) and s.deleted_at is null) as last_submission,
  app_hidden.form_created_by(f.actee_id) as created_by,
  (select b.content_type from app_public.blobs b where b.id = d.xls_blob_id) as excel_content_type,
  coalesce(jsonb_array_length(d.entities->'datasets') > 0, false) as entity_related,
  app_hidden.public_link_count(f.id) as public_links,
  app_hidden.def_publish_notes(f.actee_id, f.current_def_id) as publish_notes,
  app_hidden.actor_can('form.update', f.actee_id) as can_update,
  app_hidden.def_published_by(f.actee_id, d.id) as published_by`;

export interface ExtendedRow extends FormRow {
  submissions: number; received: number; has_issues: number; edited: number; last_submission: Date | null;
  created_by: unknown; excel_content_type: string | null; entity_related: boolean; public_links: number; publish_notes: string | null;
  /** Whether the caller may update the form: only then is publishNotes shown (null when none were given). */
  can_update: boolean;
  published_by: unknown;
}

export function extendedFormJson(r: ExtendedRow) {
  return {
    ...formJson(r),
    submissions: r.submissions ?? 0,
    entityRelated: r.entity_related,
    reviewStates: { received: r.received ?? 0, hasIssues: r.has_issues ?? 0, edited: r.edited ?? 0 },
    lastSubmission: r.last_submission,
    excelContentType: r.excel_content_type,
    publicLinks: r.public_links ?? 0,
    createdBy: r.created_by ?? null,
    ...(r.can_update ? { publishNotes: r.publish_notes } : {}),
  };
}

/** The extended row for one already-authorized def. */
export async function extendedRow(db: Db, formId: number, defId: number): Promise<ExtendedRow> {
  const { rows: [row] } = await db.query<ExtendedRow>(
    `select ${formColumns}, d.id as target_def_id, ${extendedColumns}
     from app_public.forms f join app_public.form_defs d on d.id = $2 where f.id = $1`, [formId, defId]);
  return row;
}

// ---------------------------------------------------------------------------------------------

export async function fieldsOf(db: Db, defId: number): Promise<FormField[]> {
  const { rows } = await db.query(
    `select name, path, type, "binary", select_multiple from app_public.form_fields where form_def_id = $1 order by ord`, [defId]);
  return rows.map((r) => ({ name: r.name, path: r.path, type: r.type, binary: r.binary, selectMultiple: r.select_multiple }));
}

/** Central's /fields: binary and selectMultiple are true or null. */
export function fieldJson(f: FormField) {
  return { name: f.name, path: f.path, type: f.type, binary: f.binary ? true : null, selectMultiple: f.selectMultiple ? true : null };
}

export interface AttachmentRow {
  name: string;
  type: string;
  blob_id: number | null;
  dataset_id: number | null;
  updated_at: Date | null;
  md5: string | null;
  size: number | null;
}

export async function attachmentsOf(db: Db, defId: number): Promise<AttachmentRow[]> {
  const { rows } = await db.query<AttachmentRow>(
    `select a.name, a.type, a.blob_id, a.dataset_id, a.updated_at, b.md5, length(b.content) as size
     from app_public.form_attachments a left join app_public.blobs b on b.id = a.blob_id
     where a.form_def_id = $1 order by a.name`, [defId]);
  return rows;
}

export function attachmentJson(a: AttachmentRow) {
  return {
    name: a.name,
    type: a.type,
    exists: a.blob_id !== null || a.dataset_id !== null,
    blobExists: a.blob_id !== null,
    datasetExists: a.dataset_id !== null,
    hash: a.md5,
    ...(a.blob_id !== null ? { size: a.size } : {}),
    updatedAt: a.updated_at,
  };
}

/** Sends an attachment's bytes (404.1 when nothing was uploaded for it). */
export async function sendAttachment(db: Db, res: express.Response, defId: number, name: string): Promise<void> {
  const { rows: [file] } = await db.query(
    `select a.name, b.content, b.content_type, b.md5 from app_public.form_attachments a
     join app_public.blobs b on b.id = a.blob_id where a.form_def_id = $1 and a.name = $2`, [defId, name]);
  if (!file) throw problems.notFound();
  res.set('Content-Disposition', contentDisposition(file.name));
  res.set('ETag', `"${file.md5}"`);
  res.type(file.content_type ?? 'application/octet-stream').send(file.content);
}

export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

export function sendXml(res: express.Response, xml: string): void {
  res.status(200).type('application/xml; charset=utf-8').send(xml);
}
