// enketo__create: gets Enketo survey ids for a form once it is published (enketoId, enketoOnceId on the form)
// and for its draft (enketoId on the draft version, served from the draft-testing URL), as Central does after
// form.create, form.update.draft.set and form.update.publish. Nothing to do when Enketo is not configured.
import type { Task } from 'graphile-worker';
import { loadConfig } from '../../server/config.ts';
import { enketoSettings, createSurvey, publicBase } from '../../server/enketo.ts';

interface Payload { formActeeId: string }

const isPayload = (p: unknown): p is Payload => typeof (p as Payload)?.formActeeId === 'string';

export const enketo__create: Task = async (payload, helpers) => {
  const config = loadConfig();
  const settings = enketoSettings(config);
  if (!settings || !isPayload(payload)) return;
  const { rows: [form] } = await helpers.query<{
    id: number; project_id: number; xml_form_id: string; current_def_id: number | null; enketo_id: string | null;
    draft_id: number | null; draft_token: string | null; draft_enketo_id: string | null;
  }>(`select f.id, f.project_id, f.xml_form_id, f.current_def_id, f.enketo_id,
             d.id as draft_id, d.draft_token, d.enketo_id as draft_enketo_id
      from app_public.forms f left join app_public.form_defs d on d.id = f.draft_def_id
      where f.actee_id = $1 and f.deleted_at is null`, [payload.formActeeId]);
  if (!form) return;
  const base = publicBase(config);
  if (form.current_def_id !== null && form.enketo_id === null) {
    const ids = await createSurvey(settings, `${base}/v1/projects/${form.project_id}`, form.xml_form_id);
    await helpers.query('update app_public.forms set enketo_id = $2, enketo_once_id = $3 where id = $1 and enketo_id is null',
      [form.id, ids.enketoId, ids.enketoOnceId]);
  }
  if (form.draft_id !== null && form.draft_token !== null && form.draft_enketo_id === null) {
    const serverUrl = `${base}/v1/test/${form.draft_token}/projects/${form.project_id}/forms/${encodeURIComponent(form.xml_form_id)}/draft`;
    const ids = await createSurvey(settings, serverUrl, form.xml_form_id);
    await helpers.query('update app_public.form_defs set enketo_id = $2 where id = $1 and enketo_id is null', [form.draft_id, ids.enketoId]);
  }
};
