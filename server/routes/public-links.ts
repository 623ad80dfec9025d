// Public Links of a form: actors of type public_link whose token (?st=) lets anyone fill that one form.
import { Router } from 'express';
import type { Db } from '../db.ts';
import { transaction, extended, body, idParam, success, optionalString, propertiesOf } from '../http.ts';
import { problems } from '../errors.ts';
import { projectParam, formParam, formActee } from './forms-common.ts';

export const publicLinks = Router();

const path = '/v1/projects/:projectId/forms/:xmlFormId/public-links';

const linkColumns = `a.id, a.type, a.display_name, a.created_at, a.updated_at, a.deleted_at, l.once,
  app_hidden.public_link_token(a.id) as token,
  (select app_hidden.actor_json(c) from app_public.actors c where c.id = l.created_by) as created_by,
  app_hidden.public_link_properties(a.id) as properties`;

async function links(db: Db, projectId: number, xmlFormId: string, only: number | null) {
  const { rows } = await db.query(
    `select ${linkColumns} from app_public.public_links l join app_public.actors a on a.id = l.actor_id
     join app_hidden.form_for($1, $2) f on f.id = l.form_id
     where a.deleted_at is null and ($3::int is null or a.id = $3) order by a.created_at, a.id`, [projectId, xmlFormId, only]);
  return rows;
}

/** Central's PublicLink; extended adds createdBy and the actor property values (null when none is set). */
function linkJson(r: Record<string, any>, isExtended: boolean) {
  return {
    id: r.id, type: r.type, displayName: r.display_name, createdAt: r.created_at, updatedAt: r.updated_at,
    deletedAt: r.deleted_at, token: r.token ?? null, once: r.once,
    ...(isExtended ? { createdBy: r.created_by ?? null, properties: r.properties ?? null } : {}),
  };
}

publicLinks.get(path, async (req, res) => {
  const rows = await transaction(req, async (db) => {
    await formActee(db, projectParam(req), formParam(req), 'public_link.list');
    return links(db, projectParam(req), formParam(req), null);
  });
  res.json(rows.map((r) => linkJson(r, extended(req))));
});

publicLinks.post(path, async (req, res) => {
  const b = body(req);
  const displayName = optionalString(b, 'displayName') ?? null;
  const once = b.once === true;
  const row = await transaction(req, async (db) => {
    const { rows: [created] } = await db.query('select app_public.create_public_link($1, $2, $3, $4, $5) as id',
      [projectParam(req), formParam(req), displayName, once, propertiesOf(b)]);
    return (await links(db, projectParam(req), formParam(req), created.id))[0];
  });
  res.json(linkJson(row, false));
});

publicLinks.get(`${path}/:linkId`, async (req, res) => {
  const linkId = idParam(req.params.linkId);
  const row = await transaction(req, async (db) => {
    await formActee(db, projectParam(req), formParam(req), 'public_link.read');
    return (await links(db, projectParam(req), formParam(req), linkId))[0];
  });
  if (!row) throw problems.notFound();
  res.json(linkJson(row, extended(req)));
});

publicLinks.patch(`${path}/:linkId`, async (req, res) => {
  const linkId = idParam(req.params.linkId);
  const properties = propertiesOf(body(req));
  const row = await transaction(req, async (db) => {
    await db.query('select app_public.update_public_link($1, $2, $3, $4)', [projectParam(req), formParam(req), linkId, properties]);
    return (await links(db, projectParam(req), formParam(req), linkId))[0];
  });
  res.json(linkJson(row, true));
});

publicLinks.delete(`${path}/:linkId`, async (req, res) => {
  const linkId = idParam(req.params.linkId);
  await transaction(req, (db) => db.query('select app_public.delete_public_link($1, $2, $3)', [projectParam(req), formParam(req), linkId]));
  res.json(success);
});
