// Draft attachments: upload the file an expected attachment names (raw body, its content type kept) or clear it,
// or link it to the dataset it names (PATCH {dataset: true|false}; entity lists are served by datasets.ts).
import { Router } from 'express';
import { transaction, body, success } from '../http.ts';
import { rawBody, hasBody, projectParam, formParam, readForm, attachmentsOf, attachmentJson } from './forms-common.ts';

export const formAttachments = Router();

const path = '/v1/projects/:projectId/forms/:xmlFormId/draft/attachments/:name';

const typesByExtension: Record<string, string> = {
  csv: 'text/csv', xml: 'application/xml', geojson: 'application/geo+json', json: 'application/json',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', svg: 'image/svg+xml', webp: 'image/webp',
  mp3: 'audio/mpeg', wav: 'audio/wav', ogg: 'audio/ogg', m4a: 'audio/mp4', mp4: 'video/mp4', txt: 'text/plain',
};

/** Central falls back to a type guessed from the file name when the upload has none. */
export function defaultContentType(name: string): string {
  return typesByExtension[name.split('.').pop()?.toLowerCase() ?? ''] ?? 'application/octet-stream';
}

formAttachments.post(path, rawBody, async (req, res) => {
  const name = String(req.params.name);
  const content = hasBody(req) ? req.body as Buffer : Buffer.alloc(0);
  const contentType = req.get('content-type') || defaultContentType(name);
  const attachment = await transaction(req, async (db) => {
    const { rows: [blob] } = await db.query('select app_public.ensure_blob($1, $2) as id', [content, contentType]);
    await db.query('select app_public.set_draft_attachment($1, $2, $3, $4)', [projectParam(req), formParam(req), name, blob.id]);
    const form = await readForm(db, projectParam(req), formParam(req), { kind: 'draft' });
    return (await attachmentsOf(db, form.def_id!)).find((a) => a.name === name)!;
  });
  res.json(attachmentJson(attachment));
});

formAttachments.delete(path, async (req, res) => {
  await transaction(req, (db) => db.query('select app_public.set_draft_attachment($1, $2, $3, null)',
    [projectParam(req), formParam(req), String(req.params.name)]));
  res.json({ success: true });
});

formAttachments.patch(path, async (req, res) => {
  const link = Boolean(body(req).dataset); // Central links on any truthy value, unlinks otherwise
  await transaction(req, (db) => db.query('select app_public.link_draft_attachment($1, $2, $3, $4)',
    [projectParam(req), formParam(req), String(req.params.name), link]));
  res.json(success);
});
