// Drafts: …/forms/:xmlFormId/draft (create from an upload or a copy of the published version, read,
// delete, publish with an optional new version) and its .xml, /fields and read-only attachments.
import { Router } from 'express';
import { transaction, extended, success } from '../http.ts';
import { Problem } from '../errors.ts';
import { parseXForm, setVersion } from '../formats/xform.ts';
import {
  rawBody, hasBody, readUpload, storeExcel, storeItemsets, parsedJson, sendExcel, isTrue, readForm, projectParam, formParam,
  formJson, extendedFormJson, extendedRow, sendXml, formActee,
} from './forms-common.ts';
import { applyProjectKey } from './project-key.ts';
import { versionResources } from './forms.ts';

export const drafts = Router();

const draft = '/v1/projects/:projectId/forms/:xmlFormId/draft';

drafts.post(draft, rawBody, async (req, res) => {
  const projectId = projectParam(req);
  const xmlFormId = formParam(req);
  await transaction(req, (db) => formActee(db, projectId, xmlFormId, 'form.update'));
  const upload = hasBody(req) ? await readUpload(req) : null;
  await transaction(req, async (db) => {
    if (upload) {
      Object.assign(upload, await applyProjectKey(db, projectId, upload)); // managed encryption: the project's key
      const xls = await storeExcel(db, upload);
      const { rows: [def] } = await db.query('select app_public.create_draft($1, $2, $3, $4::jsonb, $5, $6, false) as id',
        [projectId, xmlFormId, upload.xml, parsedJson(upload.form, upload.xlsFormWarnings), isTrue(req.query.ignoreWarnings), xls]);
      await storeItemsets(db, upload, def.id);
      return;
    }
    // No body: the published version becomes the new draft (its spreadsheet too).
    const { rows: [published] } = await db.query(
      `select d.xml, d.xls_blob_id from app_public.forms f join app_public.form_defs d on d.id = f.current_def_id
       where f.project_id = $1 and f.xml_form_id = $2 and f.deleted_at is null`, [projectId, xmlFormId]);
    if (!published) throw new Problem(400.2, 'Required parameter xml missing.', { field: 'xml' });
    await db.query('select app_public.create_draft($1, $2, $3, $4::jsonb, true, $5, true)',
      [projectId, xmlFormId, published.xml, parsedJson(parseXForm(published.xml)), published.xls_blob_id]);
  });
  res.json(success);
});

drafts.get(draft, async (req, res) => {
  const json = await transaction(req, async (db) => {
    const form = await readForm(db, projectParam(req), formParam(req), { kind: 'draft' });
    return extended(req) ? extendedFormJson(await extendedRow(db, form.id, form.def_id!)) : formJson(form);
  });
  res.json(json);
});

drafts.delete(draft, async (req, res) => {
  await transaction(req, (db) => db.query('select app_public.delete_draft($1, $2)', [projectParam(req), formParam(req)]));
  res.json(success);
});

drafts.get(`${draft}.xml`, async (req, res) => {
  await transaction(req, async (db) => {
    const form = await readForm(db, projectParam(req), formParam(req), { kind: 'draft' });
    const { rows: [def] } = await db.query('select xml from app_public.form_defs where id = $1', [form.def_id]);
    sendXml(res, def.xml);
  });
});

for (const suffix of ['xlsx', 'xls'] as const) {
  drafts.get(`${draft}.${suffix}`, async (req, res) => {
    await transaction(req, async (db) => {
      await sendExcel(db, res, await readForm(db, projectParam(req), formParam(req), { kind: 'draft' }), suffix);
    });
  });
}

drafts.get(`${draft}/dataset-diff`, async (req, res) => {
  const diff = await transaction(req, async (db) => (await db.query(
    'select app_public.form_dataset_diff($1, $2, true) as diff', [projectParam(req), formParam(req)])).rows[0].diff);
  res.json(diff);
});

drafts.post(`${draft}/publish`, async (req, res) => {
  const projectId = projectParam(req);
  const xmlFormId = formParam(req);
  const version = typeof req.query.version === 'string' ? req.query.version : null;
  await transaction(req, async (db) => {
    if (version !== null && version !== '') {
      // A new version string is written into the draft's XML (a new draft version), which is then published.
      await formActee(db, projectId, xmlFormId, 'form.update');
      const form = await readForm(db, projectId, xmlFormId, { kind: 'draft' });
      const { rows: [def] } = await db.query('select xml, xls_blob_id from app_public.form_defs where id = $1', [form.def_id]);
      const xml = setVersion(def.xml, version);
      await db.query('select app_public.create_draft($1, $2, $3, $4::jsonb, true, $5, true)',
        [projectId, xmlFormId, xml, parsedJson(parseXForm(xml)), def.xls_blob_id]);
    }
    await db.query('select app_public.publish_draft($1, $2)', [projectId, xmlFormId]);
  });
  res.json(success);
});

versionResources(drafts, draft, () => ({ kind: 'draft' }));
