// Project managed encryption: POST /v1/projects/:id/key {passphrase, hint}. The key pair is made here, the
// private half sealed under the passphrase (which is then forgotten); every form of the project without a
// self-supplied key is re-published (and its draft replaced) with the public key in its XML and Central's
// "[encrypted:…]" version suffix. Forms uploaded later into the project get the key too (applyProjectKey).
import { Router } from 'express';
import type { Db } from '../db.ts';
import { transaction, one, many, body, optionalString, idParam } from '../http.ts';
import { Problem, problems } from '../errors.ts';
import { parseXForm, setVersion } from '../formats/xform.ts';
import { generateManagedKey, injectPublicKey, versionSuffix } from '../formats/decrypt.ts';
import { projectJson, type ProjectRow } from '../formats/projects.ts';
import type { Upload } from './forms-common.ts';

export const projectKey = Router();

/** The form XML with the key written in and, when re-publishing, the version suffixed. */
function keyedXml(xml: string, publicKey: string, suffix: string | null): { xml: string; parsed: string } {
  let keyed = injectPublicKey(xml, publicKey);
  if (suffix !== null) keyed = setVersion(keyed, parseXForm(keyed).version + suffix);
  return { xml: keyed, parsed: JSON.stringify(parseXForm(keyed)) };
}

projectKey.post('/v1/projects/:id/key', async (req, res) => {
  const projectId = idParam(req.params.id);
  const b = body(req);
  const passphrase = optionalString(b, 'passphrase');
  const hint = optionalString(b, 'hint') ?? null;
  const project = await transaction(req, async (db) => {
    await db.query(`select app_hidden.assert_can('project.update', app_hidden.project_actee($1))`, [projectId]);
    if (passphrase === undefined || passphrase === '') throw problems.missingParameter('passphrase');
    if (passphrase.length < 10) throw new Problem(400.21, 'The password or passphrase provided does not meet the required length.');
    if (Buffer.byteLength(passphrase) > 72) throw new Problem(400.38, 'The password or passphrase provided exceeds the maximum length.');
    const { publicKey, sealed } = generateManagedKey(passphrase);
    await db.query('select app_public.enable_managed_encryption($1, $2, $3::jsonb, $4)', [projectId, publicKey, JSON.stringify(sealed), hint]);
    const suffix = versionSuffix();
    const forms = await many<{ xml_form_id: string; published: string | null; draft: string | null }>(db,
      `select f.xml_form_id,
              (select d.xml from app_public.form_defs d where d.id = f.current_def_id and d.key_id is null) as published,
              (select d.xml from app_public.form_defs d where d.id = f.draft_def_id and d.key_id is null) as draft
       from app_public.forms f where f.project_id = $1 and f.deleted_at is null order by f.id`, [projectId]);
    for (const form of forms) {
      if (form.published === null && form.draft === null) continue;
      const published = form.published === null ? null : keyedXml(form.published, publicKey, suffix);
      const draft = form.draft === null ? null : keyedXml(form.draft, publicKey, suffix);
      await db.query('select app_public.set_form_managed_key($1, $2, $3, $4::jsonb, $5, $6::jsonb)',
        [projectId, form.xml_form_id, published?.xml ?? null, published?.parsed ?? null, draft?.xml ?? null, draft?.parsed ?? null]);
    }
    return one<ProjectRow>(db, 'select * from app_public.projects where id = $1', [projectId]);
  });
  res.json(projectJson(project));
});

/** An upload into a project with managed encryption carries the project's key (unless it brings its own). */
export async function applyProjectKey(db: Db, projectId: number, upload: Upload): Promise<Upload> {
  if (upload.form.base64RsaPublicKey) return upload;
  const { rows: [key] } = await db.query<{ public: string }>(
    `select k.public from app_public.projects p join app_public.keys k on k.id = p.key_id where p.id = $1`, [projectId]);
  if (!key) return upload;
  const xml = injectPublicKey(upload.xml, key.public);
  return { ...upload, xml, form: parseXForm(xml) };
}
