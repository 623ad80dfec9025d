import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';

let f: Fixtures;
let projectId: number;
test.before(async () => {
  f = await withFixtures();
  const { rows: [p] } = await f.server.sql.query(
    `insert into app_public.projects (name, actee_id) values ('Prefs', app_hidden.new_actee('project', '*')) returning id`);
  projectId = p.id;
  await f.server.sql.query(`insert into app_public.assignments (actor_id, role_id, actee_id)
    select $1, 6, actee_id from app_public.projects where id = $2`, [f.chelsea.id, projectId]);
});
test.after.always(() => f?.server.close());

test('site and project preferences are stored, returned in extended users/current and deleted', async (t) => {
  const token = f.chelsea.token;
  t.deepEqual((await f.server.request('/v1/user-preferences/site/projectSortMode', { method: 'PUT', token, body: { propertyValue: 'alphabetical' } })).body, { success: true });
  await f.server.request('/v1/user-preferences/site/projectSortMode', { method: 'PUT', token, body: { propertyValue: 'latest' } });
  await f.server.request(`/v1/user-preferences/project/${projectId}/formTrashCollapsed`, { method: 'PUT', token, body: { propertyValue: false } });
  const me = await f.server.request('/v1/users/current', { token, headers: { 'x-extended-metadata': 'true' } });
  t.deepEqual(me.body.preferences, { site: { projectSortMode: 'latest' }, projects: { [projectId]: { formTrashCollapsed: false } } });
  t.deepEqual((await f.server.request(`/v1/user-preferences/project/${projectId}/formTrashCollapsed`, { method: 'DELETE', token })).body, { success: true });
  t.deepEqual((await f.server.request('/v1/user-preferences/site/projectSortMode', { method: 'DELETE', token })).body, { success: true });
  t.is((await f.server.request('/v1/user-preferences/site/projectSortMode', { method: 'DELETE', token })).status, 404);
});

test('preferences need propertyValue, a known project and a signed-in user', async (t) => {
  t.is((await f.server.request('/v1/user-preferences/site/x', { method: 'PUT', token: f.bob.token, body: {} })).body.code, 400.2);
  t.is((await f.server.request('/v1/user-preferences/project/9999/x', { method: 'PUT', token: f.bob.token, body: { propertyValue: 1 } })).status, 404);
  t.is((await f.server.request('/v1/user-preferences/site/x', { method: 'PUT', body: { propertyValue: 1 } })).status, 403);
});

test('preferences of one user are invisible to another, even by raw SQL', async (t) => {
  await f.server.request('/v1/user-preferences/site/secret', { method: 'PUT', token: f.bob.token, body: { propertyValue: 'bob only' } });
  const rows = await f.server.db.withActor({ actorId: f.chelsea.id }, async (db) =>
    (await db.query(`select * from app_public.user_site_preferences where property_name = 'secret'`)).rows);
  t.deepEqual(rows, []);
});
