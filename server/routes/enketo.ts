// Enketo-facing routes: GET /v1/form-links/:enketoId/form (a form by the Enketo id of its published version,
// its single-submission id, or its draft) and GET …/submissions/:instanceId/edit, which asks Enketo for an
// edit URL for the current version and redirects there (501.8 when Enketo is not configured).
import { Router, type Request } from 'express';
import type { Config } from '../config.ts';
import { transaction, one, many, idParam } from '../http.ts';
import { Problem } from '../errors.ts';
import { enketoSettings, enketoProblems, editUrl } from '../enketo.ts';
import { readForm, formJson } from './forms-common.ts';

export const enketo = Router();

const config = (req: Request) => req.app.locals.config as Config;

/** Where this server is reached: the configured public URL, else the request's own origin. */
function ownBase(req: Request): string {
  return config(req).baseUrl ?? `${req.protocol}://${req.get('host')}`;
}

const path = (strings: TemplateStringsArray, ...values: (string | number)[]) =>
  strings.reduce((out, s, i) => out + s + (i < values.length ? encodeURIComponent(String(values[i])) : ''), '');

enketo.get('/v1/form-links/:enketoId/form', async (req, res) => {
  const json = await transaction(req, async (db) => {
    const target = await one<{ project_id: number; xml_form_id: string; draft: boolean }>(db,
      'select * from app_hidden.form_by_enketo_id($1)', [String(req.params.enketoId)]);
    const form = await readForm(db, target.project_id, target.xml_form_id, target.draft ? { kind: 'draft' } : { kind: 'published' });
    return formJson(form);
  });
  res.json(json);
});

enketo.get('/v1/projects/:projectId/forms/:xmlFormId/submissions/:instanceId/edit', async (req, res) => {
  const projectId = idParam(String(req.params.projectId));
  const xmlFormId = String(req.params.xmlFormId);
  const instanceId = String(req.params.instanceId);
  const edit = await transaction(req, async (db) => {
    const s = await one<{ state: string; def_id: number; def_instance_id: string; xml: string }>(db,
      `select (f).state, d.id as def_id, d.instance_id as def_instance_id, d.xml
       from (select app_hidden.submission_for($1, $2, $3, false, 'submission.update') s,
                    app_hidden.form_for($1, $2, 'submission.update') f) x
       join app_public.submission_defs d on d.submission_id = (x.s).id and d.current`, [projectId, xmlFormId, instanceId]);
    if (s.state !== 'open') {
      throw new Problem(409.12, 'You are trying to edit a submission of a Form that is in Closing or Closed state. In this version of Central, you can only edit the submissions of Open Forms. We will fix this in a future version for Central.');
    }
    const settings = enketoSettings(config(req));
    if (!settings) throw enketoProblems.notConfigured();
    const base = ownBase(req);
    const files = await many<{ name: string }>(db,
      'select name from app_public.submission_attachments where submission_def_id = $1 and blob_id is not null order by name', [s.def_id]);
    const attachments = Object.fromEntries(files.map((f) => [f.name,
      base + path`/v1/projects/${projectId}/forms/${xmlFormId}/submissions/${instanceId}/versions/${s.def_instance_id}/attachments/${f.name}`]));
    return { settings, request: {
      serverUrl: `${base}/v1/projects/${projectId}`, xmlFormId, instanceXml: s.xml, instanceId: s.def_instance_id, attachments,
      returnUrl: base + path`/#/projects/${projectId}/forms/${xmlFormId}/submissions/${instanceId}`,
    } };
  });
  // Enketo is called outside the transaction: no connection is held while it answers.
  res.redirect(302, await editUrl(edit.settings, edit.request, config(req).baseUrl));
});
