// Users: /v1/users…, password changes and resets.
import { Router, type Request } from 'express';
import type { Db } from '../db.ts';
import { body, transaction, one, many, extended, idParam, optionalString, requiredString, success } from '../http.ts';
import { problems } from '../errors.ts';
import { userJson, actorJson, userColumns, actorColumns, type UserRow, type ActorRow } from '../formats/json.ts';

export const users = Router();

const userById = `select ${userColumns} from app_public.users u join app_public.actors a on a.id = u.actor_id
                  where a.id = $1 and not u.deleted`;

/** The user if the actor may read it; otherwise 403.1 or 404.1, decided by SQL. */
async function readableUser(db: Db, id: number): Promise<UserRow> {
  const { rows } = await db.query(userById, [id]);
  if (rows[0]) return rows[0];
  await db.query('select app_hidden.live_user($1), app_hidden.assert_can($2, app_hidden.actee_of($1))', [id, 'user.read']);
  throw problems.notFound();
}

users.get('/v1/users', async (req, res) => {
  if (req.auth.actorId === null) throw problems.insufficientRights();
  const q = typeof req.query.q === 'string' ? req.query.q : null;
  const rows = await transaction(req, (db) => many<UserRow>(db, 'select * from app_public.search_users($1)', [q]));
  res.json(rows.map(userJson));
});

users.post('/v1/users', async (req, res) => {
  const b = body(req);
  const email = requiredString(b, 'email');
  const password = optionalString(b, 'password') ?? null;
  const displayName = optionalString(b, 'displayName') ?? null;
  const user = await transaction(req, async (db) => {
    const { actor_id } = await one<{ actor_id: number }>(db, 'select actor_id from app_public.create_user($1, $2, $3)',
      [email, password, displayName]);
    return one<UserRow>(db, userById.replace('not u.deleted', 'true'), [actor_id]).catch(() =>
      // The creator may lack user.read on the new user (a custom role): show what was created anyway.
      one<UserRow>(db, `select ${actorColumns}, $2::text as email, null::timestamptz as last_login_at
                        from app_public.actors a where a.id = $1`, [actor_id, email]));
  });
  res.json(userJson(user));
});

async function currentUser(req: Request, db: Db) {
  const actor = await one<ActorRow & { email: string | null; last_login_at: Date | null }>(db,
    `select ${actorColumns}, u.email::text, u.last_login_at
     from app_public.actors a left join app_public.users u on u.actor_id = a.id where a.id = $1`, [req.auth.actorId]);
  const json = actor.email === null ? actorJson(actor) : userJson(actor as UserRow);
  if (!extended(req)) return json;
  const { rows: [extra] } = await db.query(
    `select app_hidden.actor_verbs('*') as verbs,
            (select coalesce(jsonb_object_agg(property_name, property_value), '{}') from app_public.user_site_preferences
             where user_id = $1) as site,
            (select coalesce(jsonb_object_agg(project_id::text, prefs), '{}') from (
               select project_id, jsonb_object_agg(property_name, property_value) as prefs
               from app_public.user_project_preferences where user_id = $1 group by project_id) p) as projects`,
    [req.auth.actorId]);
  return { ...json, verbs: extra.verbs, preferences: { site: extra.site, projects: extra.projects } };
}

users.get('/v1/users/current', async (req, res) => {
  if (req.auth.actorId === null) throw problems.authenticationFailed();
  res.json(await transaction(req, (db) => currentUser(req, db)));
});

users.get('/v1/users/:id', async (req, res) => {
  const id = idParam(req.params.id);
  res.json(userJson(await transaction(req, (db) => readableUser(db, id))));
});

users.patch('/v1/users/:id', async (req, res) => {
  const id = idParam(req.params.id);
  const b = body(req);
  const email = optionalString(b, 'email') ?? null;
  const displayName = optionalString(b, 'displayName') ?? null;
  const user = await transaction(req, async (db) => {
    await db.query('select app_public.update_user($1, $2, $3)', [id, email, displayName]);
    return readableUser(db, id);
  });
  res.json(userJson(user));
});

users.put('/v1/users/:id/password', async (req, res) => {
  const id = idParam(req.params.id);
  const b = body(req);
  const oldPassword = optionalString(b, 'old') ?? null;
  const newPassword = optionalString(b, 'new') ?? null;
  await transaction(req, (db) => db.query('select app_public.change_password($1, $2, $3)', [id, oldPassword, newPassword]));
  res.json(success);
});

users.delete('/v1/users/:id', async (req, res) => {
  const id = idParam(req.params.id);
  await transaction(req, (db) => db.query('select app_public.delete_user($1)', [id]));
  res.json(success);
});

users.post('/v1/users/reset/initiate', async (req, res) => {
  const email = requiredString(body(req), 'email');
  const invalidate = String(req.query.invalidate).toLowerCase() === 'true';
  await transaction(req, (db) => db.query('select app_public.initiate_password_reset($1, $2)', [email, invalidate]));
  res.json(success);
});

users.post('/v1/users/reset/verify', async (req, res) => {
  const newPassword = requiredString(body(req), 'new');
  if (req.auth.actorId === null) throw problems.insufficientRights();
  await transaction(req, (db) => db.query('select app_public.complete_password_reset($1)', [newPassword]));
  res.json(success);
});
