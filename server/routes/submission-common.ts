// What the submission routes share: ingestion (parse once, structure by the form's schema, store in one
// call), Central's Submission JSON shapes, and request helpers for XML and binary bodies.
import type { Request } from 'express';
import type { Db } from '../db.ts';
import { one } from '../http.ts';
import { Problem } from '../errors.ts';
import { parseSubmission, structureSubmission, expectedAttachments, type SchemaField } from '../formats/submission.ts';
import type { SubmittedFile } from '../formats/openrosa-submission.ts';

export interface IngestRequest {
  projectId: number;
  xml: Buffer;
  files: SubmittedFile[];
  draft: boolean;
  /** Draft testing token from /v1/test/:token/…, the credential there. */
  draftToken?: string | null;
  /** REST routes name the form in the URL: the XML must be for it. */
  xmlFormId?: string;
  /** PUT: the XML must replace the version named by this instanceID (deprecatedID). */
  replacing?: string;
  deviceId: string | null;
  userAgent: string | null;
}

export interface IngestResult {
  submissionId: number;
  submissionDefId: number;
  outcome: 'created' | 'edited' | 'resubmitted';
  instanceId: string;
}

/**
 * Field schemas of form versions, by id and SHA-256 of the XML they are derived from: a stored version's
 * fields never change, so they are read once per process (bounded, least recently used first out) rather
 * than on every submission. The hash keeps versions of different databases apart.
 */
const schemas = new Map<string, SchemaField[]>();
const schemaCacheSize = 64;

function cachedSchema(key: string): SchemaField[] | undefined {
  const fields = schemas.get(key);
  if (fields) { schemas.delete(key); schemas.set(key, fields); }
  return fields;
}

function rememberSchema(key: string, fields: SchemaField[]) {
  schemas.set(key, fields);
  if (schemas.size > schemaCacheSize) schemas.delete(schemas.keys().next().value!);
}

/** Step 1 of ingestion: the form version (with Central's checks and problems) and its field schema. */
async function submissionTarget(db: Db, args: [number, string, string, boolean, string | null]): Promise<{ form_def_id: number; fields: SchemaField[] }> {
  const def = await one<{ form_def_id: number; form_def_sha256: string }>(db,
    'select * from app_public.submission_target_def($1, $2, $3, $4, $5)', args);
  const key = `${def.form_def_id} ${def.form_def_sha256}`;
  const fields = cachedSchema(key);
  if (fields) return { form_def_id: def.form_def_id, fields };
  const target = await one<{ form_def_id: number; fields: SchemaField[] }>(db,
    'select * from app_public.submission_target($1, $2, $3, $4, $5)', args);
  if (target.form_def_id === def.form_def_id) rememberSchema(key, target.fields);
  return target;
}

export async function ingest(db: Db, r: IngestRequest): Promise<IngestResult> {
  const text = r.xml.toString('utf8');
  const parsed = parseSubmission(text);
  if (r.xmlFormId !== undefined && parsed.formId !== r.xmlFormId) {
    throw new Problem(400.8, `Unexpected form id value ${parsed.formId}; did not match the form ID in the URL (${r.xmlFormId}).`,
      { field: 'form id', value: parsed.formId, reason: `did not match the form ID in the URL (${r.xmlFormId}).` });
  }
  if (r.replacing !== undefined && parsed.deprecatedId === null) {
    throw new Problem(400.19, 'This PUT endpoint expects a deprecatedID metadata tag pointing at the current version instanceID. I cannot find that tag in your request.');
  }
  const target = await submissionTarget(db, [r.projectId, parsed.formId, parsed.version, r.draft, r.draftToken ?? null]);
  if (r.replacing !== undefined) {
    const { rows } = await db.query(
      `select 1 from app_public.submission_defs d join app_public.submissions s on s.id = d.submission_id
       where s.instance_id = $1 and d.instance_id = $2 and d.current and s.draft = $3`, [r.replacing, parsed.deprecatedId, r.draft]);
    if (rows.length === 0) {
      throw new Problem(409.9, `You tried to update a submission, but the copy you were editing (${parsed.deprecatedId}) is now out of date. Please get the new version that has been submitted, and make your edits again.`,
        { deprecatedId: parsed.deprecatedId });
    }
  }
  const data = parsed.encrypted ? {} : structureSubmission(parsed.root, target.fields);
  const expected = parsed.encrypted
    ? [...parsed.encrypted.media, ...(parsed.encrypted.encryptedXmlFile ? [parsed.encrypted.encryptedXmlFile] : [])]
    : expectedAttachments(data, target.fields);
  const row = await one<{ submission_id: number; submission_def_id: number; outcome: IngestResult['outcome'] }>(db,
    `select * from app_public.create_submission($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
    [target.form_def_id, r.draft, r.draftToken ?? null, parsed.instanceId, parsed.deprecatedId, parsed.instanceName,
      text, JSON.stringify(data), parsed.encrypted ? JSON.stringify(parsed.encrypted) : null, expected,
      r.deviceId, r.userAgent, r.files.map((f) => f.name), r.files.map((f) => f.contentType), r.files.map((f) => f.data)]);
  return { submissionId: row.submission_id, submissionDefId: row.submission_def_id, outcome: row.outcome, instanceId: parsed.instanceId };
}

/** Reads the whole request body (XML or a file) as bytes, up to limit. */
export function readBody(req: Request, limit = 100 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) { req.pause(); reject(new Problem(400.36, 'Request body too large.')); return; }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function deviceIdOf(req: Request): string | null {
  const v = req.query.deviceID;
  return typeof v === 'string' && v !== '' ? v : null;
}

/** Columns of a submission joined to its current version (alias s and d), with counts for extended metadata. */
export const submissionColumns = `
  s.id, s.instance_id, s.submitter_id, s.device_id, s.user_agent, s.review_state, s.created_at, s.updated_at, s.deleted_at,
  d.id as def_id, d.instance_id as def_instance_id, d.instance_name, d.submitter_id as def_submitter_id,
  d.device_id as def_device_id, d.user_agent as def_user_agent, d.created_at as def_created_at`;

export const extendedColumns = `,
  app_hidden.submission_actor_json(s.submitter_id) as submitter,
  app_hidden.submission_actor_json(d.submitter_id) as def_submitter,
  (select count(*) from app_public.submission_attachments a where a.submission_def_id = d.id and a.blob_id is not null)::int as attachments_present,
  (select count(*) from app_public.submission_attachments a where a.submission_def_id = d.id)::int as attachments_expected`;

export interface SubmissionRow {
  id: number;
  instance_id: string;
  submitter_id: number | null;
  device_id: string | null;
  user_agent: string | null;
  review_state: string | null;
  created_at: Date;
  updated_at: Date | null;
  deleted_at: Date | null;
  def_id: number;
  def_instance_id: string;
  instance_name: string | null;
  def_submitter_id: number | null;
  def_device_id: string | null;
  def_user_agent: string | null;
  def_created_at: Date;
  submitter?: unknown;
  def_submitter?: unknown;
  attachments_present?: number;
  attachments_expected?: number;
}

export interface VersionRow {
  instance_id: string;
  instance_name: string | null;
  submitter_id: number | null;
  device_id: string | null;
  user_agent: string | null;
  created_at: Date;
  current: boolean;
  submitter?: unknown;
  form_version?: string;
}

export function versionJson(v: VersionRow, extended: boolean) {
  return {
    instanceId: v.instance_id, instanceName: v.instance_name, submitterId: v.submitter_id, deviceId: v.device_id,
    userAgent: v.user_agent, createdAt: v.created_at, current: v.current,
    ...(extended ? { submitter: v.submitter ?? null, ...(v.form_version !== undefined ? { formVersion: v.form_version } : {}) } : {}),
  };
}

export function submissionJson(s: SubmissionRow, extended: boolean) {
  return {
    instanceId: s.instance_id, submitterId: s.submitter_id, deviceId: s.device_id, userAgent: s.user_agent,
    reviewState: s.review_state, createdAt: s.created_at, updatedAt: s.updated_at, deletedAt: s.deleted_at,
    currentVersion: versionJson({
      instance_id: s.def_instance_id, instance_name: s.instance_name, submitter_id: s.def_submitter_id, device_id: s.def_device_id,
      user_agent: s.def_user_agent, created_at: s.def_created_at, current: true, submitter: s.def_submitter,
    }, extended),
    ...(extended ? { submitter: s.submitter ?? null, attachmentsPresent: s.attachments_present, attachmentsExpected: s.attachments_expected } : {}),
  };
}
