// OpenRosa form discovery for Collect: formList (also as /v1/key/<token>/…), manifests, and the
// draft-testing endpoints under /v1/test/<draftToken>/… that need no other credentials.
import { Router, type Request } from 'express';
import type { Db } from '../db.ts';
import { transaction } from '../http.ts';
import { Problem, problems, toProblem } from '../errors.ts';
import { formList, formManifest, origin, parentPath, sendOpenRosaXml, openRosaErrors, type FormListEntry, type ManifestFile } from '../formats/openrosa.ts';
import { projectParam, formParam, readForm, sendXml, sendAttachment, type Version } from './forms-common.ts';

export const openRosa = Router();

/** Uploaded files and dataset-linked entity lists (with their integrity URL under projectPath) of a version. */
async function manifestFiles(db: Db, defId: number, projectPath: string): Promise<ManifestFile[]> {
  const { rows } = await db.query<{ name: string; md5: string; type: string | null; dataset_name: string | null }>(
    'select * from app_public.form_manifest_files($1)', [defId]);
  return rows.map((r) => ({ name: r.name, md5: r.md5, type: r.type,
    integrityUrl: r.dataset_name === null ? null : `${projectPath}/datasets/${encodeURIComponent(r.dataset_name)}/integrity` }));
}

/** The project's URL as the client called it (under /v1/key/<token>/ too; draft-testing paths use the plain one). */
function projectUrl(req: Request): string {
  const path = req.originalUrl.split('?')[0].replace(/^\/v1\/test\/[^/]+\//, '/v1/');
  return origin(req) + (/^.*?\/projects\/[^/]+/.exec(path)?.[0] ?? path);
}

openRosa.get('/v1/projects/:projectId/formList', async (req, res) => {
  if (req.auth.actorId === null) {
    res.set('WWW-Authenticate', 'Basic charset="UTF-8"');
    throw problems.authenticationFailed();
  }
  const projectId = projectParam(req);
  const forms = await transaction(req, async (db) => {
    await db.query('select app_hidden.live_project($1)', [projectId]);
    const { rows } = await db.query<FormListEntry>(
      `select f.xml_form_id as "xmlFormId", d.name, d.version, d.hash,
              exists (select 1 from app_public.form_attachments a where a.form_def_id = d.id) as "hasAttachments"
       from app_public.forms f join app_public.form_defs d on d.id = f.current_def_id
       where f.project_id = $1 and f.deleted_at is null and f.state = 'open'
       order by coalesce(d.name, f.xml_form_id), f.id`, [projectId]);
    return rows;
  });
  sendOpenRosaXml(res, formList(forms, origin(req), parentPath(req)));
});

const manifestRoute = (path: string, version: Version) => openRosa.get(path, async (req, res) => {
  const files = await transaction(req, async (db) => {
    const form = await readForm(db, projectParam(req), formParam(req), version);
    return manifestFiles(db, form.def_id!, projectUrl(req));
  });
  sendOpenRosaXml(res, formManifest(files, origin(req), parentPath(req)));
});
manifestRoute('/v1/projects/:projectId/forms/:xmlFormId/manifest', { kind: 'any' });
manifestRoute('/v1/projects/:projectId/forms/:xmlFormId/draft/manifest', { kind: 'draft' });

// ----------------------------------------------------------------------------------------------
// Draft testing: the draft token in the path stands in for credentials.

const test = '/v1/test/:token/projects/:projectId/forms/:xmlFormId/draft';

/** Runs fn with the draft visible through its token; any failure to find it is `failure`. */
export async function withDraftToken<T>(req: Request, failure: () => Problem, fn: (db: Db, defId: number) => Promise<T>): Promise<T> {
  try {
    return await transaction(req, async (db) => {
      await db.query(`select set_config('fieldbase.draft_token', $1, true)`, [String(req.params.token)]);
      const form = await readForm(db, projectParam(req), formParam(req), { kind: 'draft' });
      const { rows: [ok] } = await db.query('select draft_token = $2 as ok from app_public.form_defs where id = $1', [form.def_id, String(req.params.token)]);
      if (!ok?.ok) throw problems.notFound();
      return fn(db, form.def_id!);
    });
  } catch (err) {
    const problem = toProblem(err);
    if (problem.code === 404.1 || problem.code === 403.1) throw failure();
    throw err;
  }
}

const failedDraftAccess = () => new Problem(404.4, 'You tried to access a draft testing endpoint, but it does not exist anymore or your access is no longer valid. If the form has been published and you would like to submit to it, you should configure your device with an App User token. If there is a new draft, you may have to reconfigure your device from the draft settings.');

openRosa.get(`${test}/formList`, async (req, res) => {
  const entry = await withDraftToken(req, failedDraftAccess, async (db, defId) => {
    const { rows: [row] } = await db.query<FormListEntry>(
      `select f.xml_form_id as "xmlFormId", d.name, d.version, d.hash,
              exists (select 1 from app_public.form_attachments a where a.form_def_id = d.id) as "hasAttachments"
       from app_public.form_defs d join app_public.forms f on f.id = d.form_id where d.id = $1`, [defId]);
    return row;
  });
  sendOpenRosaXml(res, formList([entry], origin(req), parentPath(req, 4), true));
});

openRosa.get(`${test}.xml`, async (req, res) => {
  const xml = await withDraftToken(req, problems.notFound, async (db, defId) =>
    (await db.query('select xml from app_public.form_defs where id = $1', [defId])).rows[0].xml as string);
  sendXml(res, xml);
});

openRosa.get(`${test}/manifest`, async (req, res) => {
  const files = await withDraftToken(req, problems.notFound, (db, defId) => manifestFiles(db, defId, projectUrl(req)));
  sendOpenRosaXml(res, formManifest(files, origin(req), parentPath(req)));
});

openRosa.get(`${test}/attachments/:name`, async (req, res) => {
  await withDraftToken(req, problems.notFound, (db, defId) => sendAttachment(db, res, defId, String(req.params.name)));
});

openRosa.use(openRosaErrors);
