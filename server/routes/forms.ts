// Forms: /v1/projects/:projectId/forms…, the form and its published versions (.xml, .xlsx, /fields,
// /attachments), state changes, trash and restore, and role assignments on a form.
import { Router, type Request, type Response } from 'express';
import type { Db } from '../db.ts';
import { transaction, extended, body, idParam, success, optionalString } from '../http.ts';
import { problems } from '../errors.ts';
import { odataFields } from '../formats/xform.ts';
import { projectEmbeds } from './project-embeds.ts';
import {
  rawBody, readUpload, storeExcel, storeItemsets, parsedJson, sendExcel, isTrue, readForm, projectParam, formParam, formJson,
  formColumns, extendedColumns, extendedFormJson, extendedRow, fieldsOf, fieldJson, attachmentsOf, attachmentJson,
  sendAttachment, sendXml, formActee, type FormRow, type ExtendedRow, type Version,
} from './forms-common.ts';
import { applyProjectKey } from './project-key.ts';

export const forms = Router();

const base = '/v1/projects/:projectId/forms';

async function assertProjectVerb(db: Db, projectId: number, verbs: string[]): Promise<void> {
  const { rows: [p] } = await db.query(
    'select a as actee, exists (select 1 from unnest($2::text[]) v where app_hidden.actor_can(v, a)) as ok from app_hidden.project_actee($1) a',
    [projectId, verbs]);
  if (!p?.actee) throw problems.notFound();
  if (!p.ok) throw problems.insufficientRights();
}

forms.get(base, async (req, res) => {
  const projectId = projectParam(req);
  const deleted = isTrue(req.query.deleted);
  const rows = await transaction(req, async (db) => {
    await assertProjectVerb(db, projectId, ['form.list', 'open_form.list']);
    const { rows } = await db.query<ExtendedRow>(
      `select ${formColumns}, d.id as target_def_id ${extended(req) ? `, ${extendedColumns}` : ''}
       from app_public.forms f left join app_public.form_defs d on d.id = coalesce(f.current_def_id, f.draft_def_id)
       where f.project_id = $1 and (f.deleted_at is not null) = $2
       order by coalesce(d.name, f.xml_form_id), f.id`, [projectId, deleted]);
    return rows;
  });
  res.json(rows.map((r) => (extended(req) ? extendedFormJson(r) : formJson(r))));
});

// GET /v1/projects?forms=true nests each project's forms the actor may read (extended, as Central's formList).
projectEmbeds.forms = async (db, projectIds) => {
  const { rows } = await db.query<ExtendedRow>(
    `select ${formColumns}, d.id as target_def_id, ${extendedColumns}
     from app_public.forms f join app_public.form_defs d on d.id = coalesce(f.current_def_id, f.draft_def_id)
     where f.project_id = any ($1::int[]) and f.deleted_at is null
     order by coalesce(d.name, f.xml_form_id), f.id`, [projectIds]);
  const byProject = new Map<number, unknown[]>();
  for (const row of rows) byProject.set(row.project_id, [...(byProject.get(row.project_id) ?? []), extendedFormJson(row)]);
  return byProject;
};

forms.post(base, rawBody, async (req, res) => {
  const projectId = projectParam(req);
  // Permission first (as Central), so an unauthorized upload is 403 whatever its content.
  await transaction(req, (db) => db.query(`select app_hidden.assert_can('form.create', app_hidden.project_actee($1))`, [projectId]));
  const upload = await readUpload(req);
  const form = await transaction(req, async (db) => {
    Object.assign(upload, await applyProjectKey(db, projectId, upload)); // managed encryption: the project's key
    const xls = await storeExcel(db, upload);
    const { rows: [created] } = await db.query('select app_public.create_form($1, $2, $3::jsonb, $4, $5, $6) as id',
      [projectId, upload.xml, parsedJson(upload.form, upload.xlsFormWarnings), isTrue(req.query.publish), isTrue(req.query.ignoreWarnings), xls]);
    const { rows: [row] } = await db.query<FormRow>(
      `select ${formColumns} from app_public.forms f join app_public.form_defs d on d.id = coalesce(f.current_def_id, f.draft_def_id)
       where f.id = $1`, [created.id]);
    await storeItemsets(db, upload, row.def_id!);
    return row;
  });
  res.json(formJson(form));
});

/** GET …/forms/:xmlFormId, and its .xml / .xlsx / .xls forms (Express cannot split "id.xml" reliably). */
async function sendFormResource(req: Request, res: Response, ref: string, version: (id: string) => Version, name: (id: string) => string) {
  const projectId = projectParam(req);
  const suffix = /\.(xml|xlsx|xls)$/.exec(ref)?.[1];
  const id = suffix ? ref.slice(0, -suffix.length - 1) : ref;
  const wanted = version(id);
  await transaction(req, async (db) => {
    const form = await readForm(db, projectId, name(id), wanted);
    if (suffix === 'xml') {
      const { rows: [def] } = await db.query('select xml from app_public.form_defs where id = $1', [form.def_id]);
      sendXml(res, def.xml);
    } else if (suffix) {
      await sendExcel(db, res, form, suffix as 'xlsx' | 'xls');
    } else if (extended(req)) {
      const row = await extendedRow(db, form.id, form.def_id!);
      // A published version's extended metadata also names who published it (Central's ExtendedFormVersion).
      res.json(wanted.kind === 'version' ? { ...extendedFormJson(row), publishedBy: row.published_by ?? null } : extendedFormJson(row));
    } else {
      res.json(formJson(form));
    }
  });
}

forms.get(`${base}/:xmlFormId`, (req, res) =>
  sendFormResource(req, res, formParam(req), () => ({ kind: 'any' }), (id) => id));

forms.patch(`${base}/:xmlFormId`, async (req, res) => {
  const projectId = projectParam(req);
  const xmlFormId = formParam(req);
  const b = body(req);
  const state = optionalString(b, 'state') ?? null;
  const webforms = typeof b.webformsEnabled === 'boolean' ? b.webformsEnabled : null;
  const form = await transaction(req, async (db) => {
    await db.query('select app_public.update_form($1, $2, $3, $4)', [projectId, xmlFormId, state, webforms]);
    return readForm(db, projectId, xmlFormId);
  });
  res.json(formJson(form));
});

forms.delete(`${base}/:xmlFormId`, async (req, res) => {
  await transaction(req, (db) => db.query('select app_public.delete_form($1, $2)', [projectParam(req), formParam(req)]));
  res.json(success);
});

forms.post(`${base}/:formId/restore`, async (req, res) => {
  const formId = idParam(req.params.formId);
  await transaction(req, (db) => db.query('select app_public.restore_form($1, $2)', [projectParam(req), formId]));
  res.json(success);
});

/** /fields, /attachments and /attachments/:name of one version of a form. */
export function versionResources(router: Router, path: string, version: (req: Request) => Version) {
  router.get(`${path}/fields`, async (req, res) => {
    const fields = await transaction(req, async (db) => {
      const form = await readForm(db, projectParam(req), formParam(req), version(req));
      return fieldsOf(db, form.def_id!);
    });
    res.json((isTrue(req.query.odata) ? odataFields(fields) : fields).map(fieldJson));
  });
  router.get(`${path}/attachments`, async (req, res) => {
    const rows = await transaction(req, async (db) => {
      const form = await readForm(db, projectParam(req), formParam(req), version(req));
      return attachmentsOf(db, form.def_id!);
    });
    res.json(rows.map(attachmentJson));
  });
  router.get(`${path}/attachments/:name`, async (req, res) => {
    await transaction(req, async (db) => {
      const form = await readForm(db, projectParam(req), formParam(req), version(req));
      await sendAttachment(db, res, form.def_id!, String(req.params.name));
    });
  });
}

versionResources(forms, `${base}/:xmlFormId`, () => ({ kind: 'any' }));

// ----------------------------------------------------------------------------------------------
// Published versions.

/** Central writes an empty version as ___ in URLs. */
const versionName = (raw: string) => (raw === '___' ? '' : raw);

forms.get(`${base}/:xmlFormId/versions`, async (req, res) => {
  const projectId = projectParam(req);
  const xmlFormId = formParam(req);
  const rows = await transaction(req, async (db) => {
    await formActee(db, projectId, xmlFormId, 'form.update');
    const { rows } = await db.query(
      `select ${formColumns}, d.id as target_def_id,
              app_hidden.def_published_by(f.actee_id, d.id) as published_by,
              app_hidden.def_publish_notes(f.actee_id, d.id) as publish_notes,
              (select b.content_type from app_public.blobs b where b.id = d.xls_blob_id) as excel_content_type
       from app_public.forms f join app_public.form_defs d on d.form_id = f.id and d.published_at is not null
       where f.project_id = $1 and f.xml_form_id = $2 and f.deleted_at is null
       order by d.published_at desc, d.id desc`, [projectId, xmlFormId]);
    return rows;
  });
  res.json(rows.map((r) => (extended(req)
    ? { ...formJson(r), publishedBy: r.published_by ?? null, excelContentType: r.excel_content_type,
        publishNotes: r.publish_notes }
    : formJson(r))));
});

forms.get(`${base}/:xmlFormId/versions/:version`, (req, res) =>
  sendFormResource(req, res, String(req.params.version), (v) => ({ kind: 'version', version: versionName(v) }), () => formParam(req)));

versionResources(forms, `${base}/:xmlFormId/versions/:version`,
  (req) => ({ kind: 'version', version: versionName(String(req.params.version)) }));

forms.get(`${base}/:xmlFormId/dataset-diff`, async (req, res) => {
  const diff = await transaction(req, async (db) => (await db.query(
    'select app_public.form_dataset_diff($1, $2, false) as diff', [projectParam(req), formParam(req)])).rows[0].diff);
  res.json(diff);
});

// ----------------------------------------------------------------------------------------------
// Role assignments on one form.

forms.get(`${base}/:xmlFormId/assignments`, async (req, res) => {
  const rows = await transaction(req, async (db) => {
    const actee = await formActee(db, projectParam(req), formParam(req), 'assignment.list');
    const { rows } = await db.query(
      `select s.actor_id, s.role_id, app_hidden.actor_json(a) as actor from app_public.assignments s
       join lateral (select * from app_public.actors x where x.id = s.actor_id) a on true
       where s.actee_id = $1 order by s.role_id, s.actor_id`, [actee]);
    return rows;
  });
  res.json(rows.map((r) => (extended(req) ? { actor: r.actor, roleId: r.role_id } : { actorId: r.actor_id, roleId: r.role_id })));
});

forms.get(`${base}/:xmlFormId/assignments/:roleId`, async (req, res) => {
  const rows = await transaction(req, async (db) => {
    const actee = await formActee(db, projectParam(req), formParam(req), 'assignment.list');
    const { rows } = await db.query(
      `select app_hidden.actor_json(a) as actor from app_public.assignments s join app_public.actors a on a.id = s.actor_id
       where s.actee_id = $1 and s.role_id = (app_hidden.role_by_ref($2)).id and a.deleted_at is null order by a.id`,
      [actee, String(req.params.roleId)]);
    return rows;
  });
  res.json(rows.map((r) => r.actor));
});

for (const [method, fn] of [['post', 'assign_role'], ['delete', 'unassign_role']] as const) {
  forms[method](`${base}/:xmlFormId/assignments/:roleId/:actorId`, async (req, res) => {
    const actorId = idParam(req.params.actorId);
    await transaction(req, async (db) => {
      const { rows: [f] } = await db.query('select actee_id from app_hidden.form_for($1, $2)', [projectParam(req), formParam(req)]);
      await db.query(`select app_public.${fn}($1, $2, $3)`, [String(req.params.roleId), actorId, f.actee_id]);
    });
    res.json(success);
  });
}
