// Roles and server-wide assignments: /v1/roles…, /v1/assignments….
import { Router } from 'express';
import { transaction, one, many, extended, idParam, success } from '../http.ts';
import { roleJson, actorJson, actorColumns, type RoleRow, type ActorRow } from '../formats/json.ts';

export const roles = Router();

roles.get('/v1/roles', async (req, res) => {
  const rows = await transaction(req, (db) => many<RoleRow>(db, 'select * from app_public.roles order by id'));
  res.json(rows.map(roleJson));
});

roles.get('/v1/roles/:id', async (req, res) => {
  const row = await transaction(req, (db) => one<RoleRow>(db, 'select (app_hidden.role_by_ref($1)).*', [req.params.id]));
  res.json(roleJson(row));
});

roles.get('/v1/assignments', async (req, res) => {
  const rows = await transaction(req, async (db) => {
    await db.query(`select app_hidden.assert_can('assignment.list', '*')`);
    return many<ActorRow & { role_id: number }>(db,
      `select ${actorColumns}, s.role_id from app_public.assignments s join app_public.actors a on a.id = s.actor_id
       where s.actee_id = '*' and a.deleted_at is null order by s.role_id, a.id`);
  });
  res.json(rows.map((r) => extended(req) ? { actor: actorJson(r), roleId: r.role_id } : { actorId: r.id, roleId: r.role_id }));
});

roles.get('/v1/assignments/:roleId', async (req, res) => {
  const rows = await transaction(req, async (db) => {
    await db.query(`select app_hidden.assert_can('assignment.list', '*')`);
    return many<ActorRow>(db,
      `select ${actorColumns} from app_public.assignments s join app_public.actors a on a.id = s.actor_id
       where s.actee_id = '*' and s.role_id = (app_hidden.role_by_ref($1)).id and a.deleted_at is null order by a.id`,
      [req.params.roleId]);
  });
  res.json(rows.map(actorJson));
});

roles.post('/v1/assignments/:roleId/:actorId', async (req, res) => {
  const actorId = idParam(req.params.actorId);
  await transaction(req, (db) => db.query(`select app_public.assign_role($1, $2, '*')`, [req.params.roleId, actorId]));
  res.json(success);
});

roles.delete('/v1/assignments/:roleId/:actorId', async (req, res) => {
  const actorId = idParam(req.params.actorId);
  await transaction(req, (db) => db.query(`select app_public.unassign_role($1, $2, '*')`, [req.params.roleId, actorId]));
  res.json(success);
});
