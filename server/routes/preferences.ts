// A user's own UI preferences: /v1/user-preferences/site/:name and /project/:projectId/:name.
import { Router, type Request } from 'express';
import { body, transaction, idParam, success } from '../http.ts';
import { problems } from '../errors.ts';

export const preferences = Router();

function propertyValue(req: Request): string {
  const b = body(req);
  if (!('propertyValue' in b)) throw problems.missingParameter('propertyValue');
  return JSON.stringify(b.propertyValue);
}

function signedIn(req: Request): void {
  if (req.auth.actorId === null) throw problems.insufficientRights();
}

preferences.put('/v1/user-preferences/site/:name', async (req, res) => {
  signedIn(req);
  const value = propertyValue(req);
  await transaction(req, (db) => db.query(
    `insert into app_public.user_site_preferences (user_id, property_name, property_value)
     values (app_hidden.current_actor_id(), $1, $2)
     on conflict (user_id, property_name) do update set property_value = excluded.property_value`, [req.params.name, value]));
  res.json(success);
});

preferences.delete('/v1/user-preferences/site/:name', async (req, res) => {
  signedIn(req);
  const { rowCount } = await transaction(req, (db) => db.query(
    'delete from app_public.user_site_preferences where user_id = app_hidden.current_actor_id() and property_name = $1',
    [req.params.name]));
  if (!rowCount) throw problems.notFound();
  res.json(success);
});

preferences.put('/v1/user-preferences/project/:projectId/:name', async (req, res) => {
  signedIn(req);
  const projectId = idParam(req.params.projectId);
  const value = propertyValue(req);
  await transaction(req, async (db) => {
    const { rowCount } = await db.query('select 1 from app_public.projects where id = $1 and deleted_at is null', [projectId]);
    if (!rowCount) throw problems.notFound();
    await db.query(
      `insert into app_public.user_project_preferences (user_id, project_id, property_name, property_value)
       values (app_hidden.current_actor_id(), $1, $2, $3)
       on conflict (user_id, project_id, property_name) do update set property_value = excluded.property_value`,
      [projectId, req.params.name, value]);
  });
  res.json(success);
});

preferences.delete('/v1/user-preferences/project/:projectId/:name', async (req, res) => {
  signedIn(req);
  const projectId = idParam(req.params.projectId);
  const { rowCount } = await transaction(req, (db) => db.query(
    `delete from app_public.user_project_preferences
     where user_id = app_hidden.current_actor_id() and project_id = $1 and property_name = $2`, [projectId, req.params.name]));
  if (!rowCount) throw problems.notFound();
  res.json(success);
});
