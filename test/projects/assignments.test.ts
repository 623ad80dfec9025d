import test from 'ava';
import { withProjects, keyPath, type ProjectFixtures } from './fixtures.ts';

let f: ProjectFixtures;
test.before(async () => { f = await withProjects(); });
test.after.always(() => f?.server.close());

const actorKeys = ['createdAt', 'deletedAt', 'displayName', 'id', 'type', 'updatedAt'];

test.serial('listing a project\'s assignments gives actorId/roleId pairs, or actors with extended metadata', async (t) => {
  const res = await f.server.request(`/v1/projects/${f.projectA}/assignments`, { token: f.bob.token });
  t.is(res.status, 200);
  t.deepEqual(res.body, [
    { actorId: f.bob.id, roleId: 5 },
    { actorId: f.chelsea.id, roleId: 6 },
    { actorId: f.dana.id, roleId: 8 },
  ]);
  const ext = await f.server.request(`/v1/projects/${f.projectA}/assignments`, { token: f.alice.token, headers: { 'X-Extended-Metadata': 'true' } });
  t.deepEqual(Object.keys(ext.body[0]).sort(), ['actor', 'roleId']);
  t.deepEqual(Object.keys(ext.body[0].actor).sort(), actorKeys);
  t.is(ext.body[0].actor.displayName, 'Bob');
});

test.serial('listing the actors of one role accepts a role id or system name', async (t) => {
  const byName = await f.server.request(`/v1/projects/${f.projectA}/assignments/viewer`, { token: f.bob.token });
  t.is(byName.status, 200);
  t.deepEqual(byName.body.map((a: { id: number }) => a.id), [f.chelsea.id]);
  t.deepEqual(Object.keys(byName.body[0]).sort(), actorKeys);
  const byId = await f.server.request(`/v1/projects/${f.projectA}/assignments/5`, { token: f.alice.token });
  t.deepEqual(byId.body.map((a: { id: number }) => a.id), [f.bob.id]);
  const unknown = await f.server.request(`/v1/projects/${f.projectA}/assignments/nonsense`, { token: f.alice.token });
  t.is(unknown.status, 404);
});

test('only those with assignment.list on the project may list its assignments', async (t) => {
  for (const token of [f.chelsea.token, f.dana.token, f.eve.token]) {
    const res = await f.server.request(`/v1/projects/${f.projectA}/assignments`, { token });
    t.is(res.status, 403);
    t.is(res.body.code, 403.1);
  }
  t.is((await f.server.request(`/v1/projects/${f.projectA}/assignments`)).status, 403);
  t.is((await f.server.request(keyPath(f.appUser.token, `/v1/projects/${f.projectA}/assignments`))).status, 403);
  t.is((await f.server.request('/v1/projects/99999/assignments', { token: f.alice.token })).status, 404);
});

test('a manager assigns and revokes project roles, audited as user.assignment.create/delete', async (t) => {
  const frank = await f.server.createUser('frank@getodk.org');
  const assign = await f.server.request(`/v1/projects/${f.projectA}/assignments/formfill/${frank}`, { method: 'POST', token: f.bob.token });
  t.is(assign.status, 200);
  t.deepEqual(assign.body, { success: true });
  const again = await f.server.request(`/v1/projects/${f.projectA}/assignments/formfill/${frank}`, { method: 'POST', token: f.bob.token });
  t.is(again.status, 409);
  t.is(again.body.code, 409.3);
  const frankToken = await f.server.login('frank@getodk.org');
  t.is((await f.server.request(`/v1/projects/${f.projectA}`, { token: frankToken })).status, 200);
  const revoke = await f.server.request(`/v1/projects/${f.projectA}/assignments/8/${frank}`, { method: 'DELETE', token: f.bob.token });
  t.deepEqual(revoke.body, { success: true });
  t.is((await f.server.request(`/v1/projects/${f.projectA}`, { token: frankToken })).status, 403);
  const gone = await f.server.request(`/v1/projects/${f.projectA}/assignments/8/${frank}`, { method: 'DELETE', token: f.bob.token });
  t.is(gone.status, 404);
  const { rows } = await f.server.sql.query(`select action, details from app_public.audits a
    join app_public.actors x on x.actee_id = a.actee_id where x.id = $1 and action like 'user.assignment.%' order by a.id`, [frank]);
  t.deepEqual(rows.map((r) => r.action), ['user.assignment.create', 'user.assignment.delete']);
  t.is(rows[0].details.roleId, 8);
});

test('project roles cannot be handed out by viewers, collectors, other managers or anonymous callers', async (t) => {
  const gina = await f.server.createUser('gina@getodk.org');
  for (const token of [f.chelsea.token, f.dana.token, f.eve.token, undefined]) {
    const res = await f.server.request(`/v1/projects/${f.projectA}/assignments/viewer/${gina}`, { method: 'POST', token });
    t.is(res.status, 403);
  }
  // A manager cannot grant server-wide roles, nor a role with verbs it lacks.
  t.is((await f.server.request(`/v1/projects/${f.projectA}/assignments/admin/${gina}`, { method: 'POST', token: f.bob.token })).status, 403);
  t.is((await f.server.request(`/v1/assignments/admin/${gina}`, { method: 'POST', token: f.bob.token })).status, 403);
  t.is((await f.server.request(`/v1/projects/${f.projectA}/assignments/viewer/999999`, { method: 'POST', token: f.bob.token })).status, 404);
  t.is((await f.server.request(`/v1/projects/${f.projectB}/assignments/viewer/${gina}`, { method: 'DELETE', token: f.bob.token })).status, 403);
});

test('an App User can be given a project role and it is audited as field_key.assignment.create', async (t) => {
  const res = await f.server.request(`/v1/projects/${f.projectA}/assignments/viewer/${f.appUser.id}`, { method: 'POST', token: f.bob.token });
  t.is(res.status, 200);
  const { rows } = await f.server.sql.query(`select action from app_public.audits a join app_public.actors x on x.actee_id = a.actee_id
    where x.id = $1 and action = 'field_key.assignment.create'`, [f.appUser.id]);
  t.is(rows.length, 1);
  await f.server.request(`/v1/projects/${f.projectA}/assignments/viewer/${f.appUser.id}`, { method: 'DELETE', token: f.bob.token });
});

test('form assignment summaries are empty until forms are assigned, and need assignment.list', async (t) => {
  const res = await f.server.request(`/v1/projects/${f.projectA}/assignments/forms`, { token: f.bob.token });
  t.is(res.status, 200);
  t.deepEqual(res.body, []);
  t.deepEqual((await f.server.request(`/v1/projects/${f.projectA}/assignments/forms/app-user`, { token: f.bob.token })).body, []);
  t.is((await f.server.request(`/v1/projects/${f.projectA}/assignments/forms`, { token: f.chelsea.token })).status, 403);
});

test('assignments on a deleted project are not found', async (t) => {
  const { body: p } = await f.server.request('/v1/projects', { method: 'POST', token: f.alice.token, body: { name: 'Gone soon' } });
  await f.server.request(`/v1/projects/${p.id}`, { method: 'DELETE', token: f.alice.token });
  t.is((await f.server.request(`/v1/projects/${p.id}/assignments`, { token: f.alice.token })).status, 404);
  t.is((await f.server.request(`/v1/projects/${p.id}/assignments/viewer/${f.chelsea.id}`, { method: 'POST', token: f.alice.token })).status, 404);
});
