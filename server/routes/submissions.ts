// Submissions over REST: /v1/projects/:projectId/forms/:xmlFormId/submissions… (and …/draft/submissions…):
// create from XML, list, read (JSON or XML), edit by PUT, review, delete/restore, submitters, keys,
// audits, comments, attachments, versions and diffs.
import { Router, type Request, type Response } from 'express';
import type { Db } from '../db.ts';
import { transaction, one, many, extended, idParam, body, optionalString, success } from '../http.ts';
import { Problem, problems } from '../errors.ts';
import { auditJson, type AuditRow } from '../formats/json.ts';
import { parseSubmission, type StructuredValue } from '../formats/submission.ts';
import {
  ingest, readBody, deviceIdOf, submissionColumns, extendedColumns, submissionJson, versionJson,
  type SubmissionRow, type VersionRow,
} from './submission-common.ts';

export const submissions = Router();

interface Target { projectId: number; xmlFormId: string; draft: boolean }

const bases = [
  { path: '/v1/projects/:projectId/forms/:xmlFormId/submissions', draft: false },
  { path: '/v1/projects/:projectId/forms/:xmlFormId/draft/submissions', draft: true },
];

function target(req: Request, draft: boolean): Target {
  return { projectId: idParam(req.params.projectId as string), xmlFormId: String(req.params.xmlFormId), draft };
}

/** The form (checked for verb) whose submissions a route reads. */
async function formId(db: Db, t: Target, verb: string): Promise<number> {
  const row = await one<{ id: number; draft_def_id: number | null }>(db,
    'select id, draft_def_id from app_hidden.form_for($1, $2, $3)', [t.projectId, t.xmlFormId, verb]);
  if (t.draft && row.draft_def_id === null) throw problems.notFound();
  return row.id;
}

/** One submission (by instanceID) with its current version; verb checked on the form. */
async function submissionRow(db: Db, t: Target, instanceId: string, verb: string, ext: boolean): Promise<SubmissionRow> {
  const id = await formId(db, t, verb);
  return one<SubmissionRow>(db, `select ${submissionColumns} ${ext ? extendedColumns : ''}
    from app_public.submissions s join app_public.submission_defs d on d.submission_id = s.id and d.current
    where s.form_id = $1 and s.draft = $2 and s.instance_id = $3 and s.deleted_at is null`, [id, t.draft, instanceId]);
}

function sendXml(res: Response, xml: string) {
  res.status(200).type('application/xml; charset=utf-8').send(xml);
}

for (const base of bases) {
  const { draft } = base;

  submissions.post(base.path, async (req, res) => {
    const type = (req.get('content-type') ?? '').toLowerCase();
    if (!type.includes('xml')) throw problems.unacceptableFormat(['text/xml', 'application/xml']);
    const t = target(req, draft);
    const xml = await readBody(req);
    const row = await transaction(req, async (db) => {
      await formId(db, t, 'submission.create');
      const result = await ingest(db, { projectId: t.projectId, xml, files: [], draft, xmlFormId: t.xmlFormId,
        deviceId: deviceIdOf(req), userAgent: req.get('user-agent') ?? null });
      if (result.outcome !== 'created') {
        throw new Problem(409.3, `A resource already exists with instanceId value(s) of ${result.instanceId}.`,
          { fields: ['instanceId'], values: [result.instanceId] });
      }
      // Submitters who may not read submissions (Data Collectors, App Users) get Central's plain success.
      // Asked first: a failed read would abort the transaction and lose the submission.
      const { rows: [readable] } = await db.query(
        `select app_hidden.actor_can('submission.read', actee_id) as ok from app_public.forms
         where project_id = $1 and xml_form_id = $2 and deleted_at is null`, [t.projectId, t.xmlFormId]);
      return readable?.ok ? submissionRow(db, t, result.instanceId, 'submission.read', false) : null;
    });
    res.json(row ? submissionJson(row, false) : success);
  });

  submissions.get(base.path, async (req, res) => {
    const t = target(req, draft);
    const ext = extended(req);
    const deleted = String(req.query.deleted).toLowerCase() === 'true';
    const rows = await transaction(req, async (db) => {
      const id = await formId(db, t, 'submission.list');
      return many<SubmissionRow>(db, `select ${submissionColumns} ${ext ? extendedColumns : ''}
        from app_public.submissions s join app_public.submission_defs d on d.submission_id = s.id and d.current
        where s.form_id = $1 and s.draft = $2 and (s.deleted_at is not null) = $3
        order by s.created_at desc, s.id desc`, [id, draft, deleted]);
    });
    res.json(rows.map((r) => submissionJson(r, ext)));
  });

  submissions.get(`${base.path}/keys`, async (req, res) => {
    const t = target(req, draft);
    const keys = await transaction(req, async (db) => {
      const id = await formId(db, t, 'submission.read');
      return many<{ id: number; public: string; managed: boolean | null; hint: string | null }>(db,
        `select k.id, k.public, k.managed, k.hint from app_public.keys k where k.id in (
           select fd.key_id from app_public.submission_defs d join app_public.form_defs fd on fd.id = d.form_def_id
           join app_public.submissions s on s.id = d.submission_id
           where d.form_id = $1 and s.draft = $2 and d.encryption is not null) order by k.id`, [id, draft]);
    });
    res.json(keys.map((k) => ({ id: k.id, public: k.public, managed: k.managed ?? false, hint: k.hint })));
  });

  submissions.get(`${base.path}/submitters`, async (req, res) => {
    const t = target(req, draft);
    const actors = await transaction(req, (db) => many<{ j: unknown }>(db,
      'select app_hidden.actor_json(a) as j from app_public.form_submitters($1, $2, $3) a', [t.projectId, t.xmlFormId, draft]));
    res.json(actors.map((a) => a.j));
  });

  submissions.get(`${base.path}/:instanceId`, async (req, res) => {
    const t = target(req, draft);
    let instanceId = String(req.params.instanceId);
    const asXml = instanceId.endsWith('.xml');
    if (asXml) instanceId = instanceId.slice(0, -4);
    const ext = extended(req);
    const result = await transaction(req, async (db) => {
      const row = await submissionRow(db, t, instanceId, 'submission.read', ext);
      const xml = asXml ? (await one<{ xml: string }>(db, 'select xml from app_public.submission_defs where id = $1', [row.def_id])).xml : null;
      return { row, xml };
    });
    if (result.xml !== null) sendXml(res, result.xml);
    else res.json(submissionJson(result.row, ext));
  });

  submissions.get(`${base.path}/:instanceId/attachments`, async (req, res) => {
    const t = target(req, draft);
    const list = await transaction(req, async (db) => {
      const row = await submissionRow(db, t, String(req.params.instanceId), 'submission.read', false);
      return attachmentList(db, row.def_id);
    });
    res.json(list);
  });

  submissions.get(`${base.path}/:instanceId/attachments/:filename`, async (req, res) => {
    const t = target(req, draft);
    const file = await transaction(req, async (db) => {
      const row = await submissionRow(db, t, String(req.params.instanceId), 'submission.read', false);
      return attachmentContent(db, row.def_id, String(req.params.filename));
    });
    sendFile(req, res, String(req.params.filename), file);
  });

  // Uploading or clearing an expected file of the current version (draft test submissions too).
  submissions.post(`${base.path}/:instanceId/attachments/:filename`, async (req, res) => {
    const t = target(req, draft);
    const content = await readBody(req);
    await transaction(req, (db) => db.query('select app_public.set_submission_attachment($1, $2, $3, $4, $5, $6, $7)',
      [t.projectId, t.xmlFormId, String(req.params.instanceId), draft, String(req.params.filename),
        req.get('content-type') ?? 'application/octet-stream', content]));
    res.json(success);
  });

  submissions.delete(`${base.path}/:instanceId/attachments/:filename`, async (req, res) => {
    const t = target(req, draft);
    await transaction(req, (db) => db.query('select app_public.set_submission_attachment($1, $2, $3, $4, $5, null, null)',
      [t.projectId, t.xmlFormId, String(req.params.instanceId), draft, String(req.params.filename)]));
    res.json(success);
  });
}

async function attachmentList(db: Db, defId: number) {
  const rows = await many<{ name: string; exists: boolean }>(db,
    `select name, blob_id is not null as exists from app_public.submission_attachments where submission_def_id = $1 order by name`, [defId]);
  return rows.map((r) => ({ name: r.name, exists: r.exists }));
}

interface FileRow { content: Buffer; content_type: string; md5: string }

async function attachmentContent(db: Db, defId: number, name: string): Promise<FileRow> {
  return one<FileRow>(db, `select b.content, b.content_type, b.md5 from app_public.submission_attachments a
    join app_public.blobs b on b.id = a.blob_id where a.submission_def_id = $1 and a.name = $2`, [defId, name]);
}

function sendFile(req: Request, res: Response, name: string, file: FileRow) {
  const etag = `"${file.md5}"`;
  res.set('ETag', etag);
  if (req.get('if-none-match') === etag) { res.status(304).end(); return; }
  const inline = /^(image|audio|video)\//.test(file.content_type);
  res.set('Content-Disposition', `${inline ? 'inline' : 'attachment'}; filename="${name.replace(/["\\]/g, '')}"; filename*=UTF-8''${encodeURIComponent(name)}`);
  res.type(file.content_type).send(file.content);
}

const base = '/v1/projects/:projectId/forms/:xmlFormId/submissions/:instanceId';
const published = (req: Request) => target(req, false);

submissions.put(base, async (req, res) => {
  const t = published(req);
  const instanceId = String(req.params.instanceId);
  const xml = await readBody(req);
  const row = await transaction(req, async (db) => {
    await submissionRow(db, t, instanceId, 'submission.update', false);
    await ingest(db, { projectId: t.projectId, xml, files: [], draft: false, xmlFormId: t.xmlFormId, replacing: instanceId,
      deviceId: deviceIdOf(req), userAgent: req.get('user-agent') ?? null });
    return submissionRow(db, t, instanceId, 'submission.read', false);
  });
  res.json(submissionJson(row, false));
});

submissions.patch(base, async (req, res) => {
  const t = published(req);
  const b = body(req);
  const state = b.reviewState === null ? 'null' : optionalString(b, 'reviewState');
  const row = await transaction(req, async (db) => {
    await db.query('select app_public.review_submission($1, $2, $3, $4)', [t.projectId, t.xmlFormId, String(req.params.instanceId), state ?? null]);
    return submissionRow(db, t, String(req.params.instanceId), 'submission.read', false);
  });
  res.json(submissionJson(row, false));
});

submissions.delete(base, async (req, res) => {
  const t = published(req);
  await transaction(req, (db) => db.query('select app_public.delete_submission($1, $2, $3)', [t.projectId, t.xmlFormId, String(req.params.instanceId)]));
  res.json(success);
});

submissions.post(`${base}/restore`, async (req, res) => {
  const t = published(req);
  await transaction(req, (db) => db.query('select app_public.restore_submission($1, $2, $3)', [t.projectId, t.xmlFormId, String(req.params.instanceId)]));
  res.json(success);
});

// …/edit (the Enketo edit URL) lives in enketo.ts.

submissions.get(`${base}/audits`, async (req, res) => {
  const t = published(req);
  const ext = extended(req);
  const rows = await transaction(req, (db) => many<AuditRow & { actor: unknown; actee: unknown }>(db,
    `select a.*, app_hidden.submission_actor_json(a.actor_id) as actor, case when $4 then app_hidden.actee_json(a.actee_id) end as actee
     from app_public.submission_audits($1, $2, $3) a`,
    [t.projectId, t.xmlFormId, String(req.params.instanceId), ext]));
  res.json(rows.map((r) => ({ ...auditJson(r), ...(ext ? { actor: r.actor ?? null, actee: r.actee ?? null } : {}) })));
});

submissions.get(`${base}/comments`, async (req, res) => {
  const t = published(req);
  const ext = extended(req);
  const rows = await transaction(req, async (db) => {
    const s = await submissionRow(db, t, String(req.params.instanceId), 'submission.read', false);
    return many<{ body: string; actor_id: number; created_at: Date; actor: unknown }>(db,
      `select body, actor_id, created_at, app_hidden.submission_actor_json(actor_id) as actor
       from app_public.submission_comments where submission_id = $1 order by created_at desc, id desc`, [s.id]);
  });
  res.json(rows.map((c) => ({ body: c.body, actorId: c.actor_id, createdAt: c.created_at, ...(ext ? { actor: c.actor } : {}) })));
});

submissions.post(`${base}/comments`, async (req, res) => {
  const t = published(req);
  const text = optionalString(body(req), 'body') ?? null;
  const c = await transaction(req, (db) => one<{ body: string; actor_id: number; created_at: Date }>(db,
    'select * from app_public.add_submission_comment($1, $2, $3, $4)', [t.projectId, t.xmlFormId, String(req.params.instanceId), text]));
  res.json({ body: c.body, actorId: c.actor_id, createdAt: c.created_at });
});

/** The versions of a submission, newest first. */
async function versions(db: Db, t: Target, instanceId: string, ext: boolean) {
  const s = await submissionRow(db, t, instanceId, 'submission.read', false);
  return many<VersionRow & { id: number; xml: string; data: Record<string, StructuredValue>; form_version: string }>(db,
    `select d.id, d.instance_id, d.instance_name, d.submitter_id, d.device_id, d.user_agent, d.created_at, d.current, d.xml, d.data,
            fd.version as form_version ${ext ? ', app_hidden.submission_actor_json(d.submitter_id) as submitter' : ''}
     from app_public.submission_defs d join app_public.form_defs fd on fd.id = d.form_def_id
     where d.submission_id = $1 order by d.id desc`, [s.id]);
}

/** A version as Central shows it, with the version of the form it was submitted to (plain and extended). */
function versionWithFormVersion(v: VersionRow & { form_version: string }, ext: boolean) {
  return { ...versionJson(v, ext), formVersion: v.form_version };
}

async function version(db: Db, req: Request, ext: boolean) {
  let versionId = String(req.params.versionId);
  const asXml = versionId.endsWith('.xml');
  if (asXml) versionId = versionId.slice(0, -4);
  const all = await versions(db, published(req), String(req.params.instanceId), ext);
  const v = all.find((x) => x.instance_id === versionId);
  if (!v) throw problems.notFound();
  return { v, asXml };
}

submissions.get(`${base}/versions`, async (req, res) => {
  const ext = extended(req);
  const rows = await transaction(req, (db) => versions(db, published(req), String(req.params.instanceId), ext));
  res.json(rows.map((v) => versionWithFormVersion(v, ext)));
});

submissions.get(`${base}/versions/:versionId`, async (req, res) => {
  const ext = extended(req);
  const { v, asXml } = await transaction(req, (db) => version(db, req, ext));
  if (asXml) sendXml(res, v.xml);
  else res.json(versionWithFormVersion(v, ext));
});

submissions.get(`${base}/versions/:versionId/attachments`, async (req, res) => {
  const list = await transaction(req, async (db) => attachmentList(db, (await version(db, req, false)).v.id));
  res.json(list);
});

submissions.get(`${base}/versions/:versionId/attachments/:filename`, async (req, res) => {
  const file = await transaction(req, async (db) => attachmentContent(db, (await version(db, req, false)).v.id, String(req.params.filename)));
  sendFile(req, res, String(req.params.filename), file);
});

submissions.delete(`${base}/versions/:versionId/attachments/:filename`, async (req, res) => {
  const t = published(req);
  await transaction(req, (db) => db.query('select app_public.clear_submission_version_attachment($1, $2, $3, $4, $5)',
    [t.projectId, t.xmlFormId, String(req.params.instanceId), String(req.params.versionId), String(req.params.filename)]));
  res.json(success);
});

submissions.get(`${base}/diffs`, async (req, res) => {
  const rows = await transaction(req, (db) => versions(db, published(req), String(req.params.instanceId), false));
  const result: Record<string, DiffEntry[]> = {};
  for (let i = 0; i < rows.length - 1; i++) {
    result[rows[i].instance_id] = withDeprecatedId(diff(rows[i + 1].data, rows[i].data, []), rows[i + 1].xml, rows[i].xml);
  }
  res.json(result);
});

/** Central's diffs also show meta/deprecatedID (outside the form's fields), right after the instanceID change. */
function withDeprecatedId(entries: DiffEntry[], beforeXml: string, afterXml: string): DiffEntry[] {
  const before = parseSubmission(beforeXml).deprecatedId;
  const after = parseSubmission(afterXml).deprecatedId;
  if (before === after) return entries;
  const at = entries.findIndex((e) => e.path[e.path.length - 1] === 'instanceID');
  const path = at >= 0 ? [...entries[at].path.slice(0, -1), 'deprecatedID'] : ['meta', 'deprecatedID'];
  const entry = { old: before, new: after, path };
  return at >= 0 ? [...entries.slice(0, at + 1), entry, ...entries.slice(at + 1)] : [...entries, entry];
}

interface DiffEntry { old: unknown; new: unknown; path: (string | number)[] }

/** Central's diff: changed leaves by path (repeat instances as [name, index]); whole subtrees as JSON when added or removed. */
export function diff(before: StructuredValue | undefined, after: StructuredValue | undefined, path: (string | number)[]): DiffEntry[] {
  if (typeof before === 'string' || typeof after === 'string' || before === undefined || after === undefined) {
    if (before === after) return [];
    if (typeof before === 'string' && typeof after === 'string') return [{ old: before, new: after, path }];
    return [{ old: before ?? null, new: after ?? null, path }];
  }
  if (Array.isArray(before) || Array.isArray(after)) {
    const a = Array.isArray(before) ? before : [before];
    const b = Array.isArray(after) ? after : [after];
    const out: DiffEntry[] = [];
    const name = path[path.length - 1];
    const parent = path.slice(0, -1);
    for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...diff(a[i], b[i], [...parent, [name, i] as unknown as string]));
    return out;
  }
  const out: DiffEntry[] = [];
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    out.push(...diff(before[key], after[key], [...path, key]));
  }
  return out;
}
