// App Users (field keys) and actor properties: /v1/projects/:id/app-users…, /v1/projects/:id/actor-properties.
// An App User's token is revoked through DELETE /v1/sessions/:token (routes/sessions.ts).
import { Router, type Request } from 'express';
import type { Db } from '../db.ts';
import { body, transaction, one, many, extended, idParam, optionalString, success, propertiesOf } from '../http.ts';
import { problems } from '../errors.ts';
import { appUserJson, extendedAppUserJson, type AppUserRow } from '../formats/projects.ts';

export const appUsers = Router();

function appUser(db: Db, projectId: number, actorId: number): Promise<AppUserRow> {
  return one<AppUserRow>(db, 'select * from app_public.project_field_keys($1, $2)', [projectId, actorId]);
}

function format(req: Request, row: AppUserRow) {
  return extended(req) ? extendedAppUserJson(row) : appUserJson(row);
}

appUsers.get('/v1/projects/:id/app-users', async (req, res) => {
  const projectId = idParam(req.params.id);
  const rows = await transaction(req, (db) => many<AppUserRow>(db, 'select * from app_public.project_field_keys($1)', [projectId]));
  res.json(rows.map((r) => format(req, r)));
});

appUsers.post('/v1/projects/:id/app-users', async (req, res) => {
  const projectId = idParam(req.params.id);
  const b = body(req);
  const displayName = optionalString(b, 'displayName') ?? null; // SQL checks rights first, then presence
  const row = await transaction(req, async (db) => {
    const { id } = await one<{ id: number }>(db, 'select app_public.create_field_key($1, $2, $3) as id',
      [projectId, displayName, propertiesOf(b)]);
    return appUser(db, projectId, id);
  });
  res.json(appUserJson(row));
});

appUsers.get('/v1/projects/:id/app-users/:actorId', async (req, res) => {
  const projectId = idParam(req.params.id);
  const actorId = idParam(req.params.actorId);
  res.json(format(req, await transaction(req, (db) => appUser(db, projectId, actorId))));
});

appUsers.patch('/v1/projects/:id/app-users/:actorId', async (req, res) => {
  const projectId = idParam(req.params.id);
  const actorId = idParam(req.params.actorId);
  const properties = propertiesOf(body(req));
  if (properties === null) throw problems.missingParameter('properties');
  const row = await transaction(req, async (db) => {
    await db.query('select app_public.update_field_key($1, $2, $3)', [projectId, actorId, properties]);
    return appUser(db, projectId, actorId);
  });
  res.json(extendedAppUserJson(row));
});

appUsers.delete('/v1/projects/:id/app-users/:actorId', async (req, res) => {
  const projectId = idParam(req.params.id);
  const actorId = idParam(req.params.actorId);
  await transaction(req, (db) => db.query('select app_public.delete_field_key($1, $2)', [projectId, actorId]));
  res.json(success);
});

/* Actor properties. */

appUsers.get('/v1/projects/:id/actor-properties', async (req, res) => {
  const projectId = idParam(req.params.id);
  const rows = await transaction(req, (db) =>
    many<{ name: string; values: string[] }>(db, 'select * from app_public.project_actor_properties($1)', [projectId]));
  res.json(rows.map((r) => extended(req) ? { name: r.name, values: r.values } : { name: r.name }));
});

appUsers.post('/v1/projects/:id/actor-properties', async (req, res) => {
  const projectId = idParam(req.params.id);
  const name = body(req).name;
  await transaction(req, (db) => db.query('select app_public.create_actor_property($1, $2)',
    [projectId, typeof name === 'string' ? name : name === undefined || name === null ? null : JSON.stringify(name)]));
  res.json(success);
});
