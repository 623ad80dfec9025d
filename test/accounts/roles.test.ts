import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';

let f: Fixtures;
test.before(async () => { f = await withFixtures(); });
test.after.always(() => f?.server.close());

test('anyone lists Central\'s system roles with their verbs', async (t) => {
  const res = await f.server.request('/v1/roles');
  t.is(res.status, 200);
  t.deepEqual(res.body.map((r: any) => [r.id, r.system, r.name]), [
    [1, 'admin', 'Administrator'], [2, 'app-user', 'App User'], [3, 'pwreset', 'Password Reset Token'],
    [5, 'manager', 'Project Manager'], [6, 'viewer', 'Project Viewer'], [7, 'formview', 'Form Viewer'],
    [8, 'formfill', 'Data Collector'], [9, 'pub-link', 'Public Link'],
  ]);
  t.deepEqual(Object.keys(res.body[0]).sort(), ['createdAt', 'id', 'name', 'system', 'updatedAt', 'verbs']);
  const formfill = res.body.find((r: any) => r.system === 'formfill');
  t.deepEqual(formfill.verbs, ['project.read', 'open_form.list', 'open_form.read', 'submission.create']);
});

test('a role is found by numeric id or by system name; an unknown one is 404.1', async (t) => {
  t.is((await f.server.request('/v1/roles/admin')).body.id, 1);
  t.is((await f.server.request('/v1/roles/5')).body.system, 'manager');
  const missing = await f.server.request('/v1/roles/nonesuch');
  t.is(missing.status, 404);
  t.is(missing.body.code, 404.1);
});

test('an administrator assigns and revokes the server-wide admin role', async (t) => {
  const dave = await f.server.createUser('dave@getodk.org');
  const daveToken = await f.server.login('dave@getodk.org');
  t.is((await f.server.request('/v1/users', { token: daveToken })).body.length, 0);
  const assign = await f.server.request(`/v1/assignments/admin/${dave}`, { method: 'POST', token: f.alice.token });
  t.deepEqual(assign.body, { success: true });
  t.true((await f.server.request('/v1/users', { token: daveToken })).body.length > 0);
  const list = await f.server.request('/v1/assignments', { token: f.alice.token });
  t.true(list.body.some((a: any) => a.actorId === dave && a.roleId === 1));
  const byRole = await f.server.request('/v1/assignments/admin', { token: f.alice.token });
  t.true(byRole.body.some((a: any) => a.id === dave && a.type === 'user'));
  const ext = await f.server.request('/v1/assignments', { token: f.alice.token, headers: { 'x-extended-metadata': 'true' } });
  t.true(ext.body.some((a: any) => a.actor.id === dave && a.roleId === 1));
  const twice = await f.server.request(`/v1/assignments/admin/${dave}`, { method: 'POST', token: f.alice.token });
  t.is(twice.status, 409);
  t.is(twice.body.code, 409.3);
  t.deepEqual((await f.server.request(`/v1/assignments/1/${dave}`, { method: 'DELETE', token: f.alice.token })).body, { success: true });
  t.deepEqual((await f.server.request('/v1/users', { token: daveToken })).body, []);
  t.is((await f.server.request(`/v1/assignments/1/${dave}`, { method: 'DELETE', token: f.alice.token })).status, 404);
  const { rows } = await f.server.sql.query(
    `select action, details from app_public.audits where action like 'user.assignment.%' and actee_id = (select actee_id from app_public.actors where id = $1) order by id`, [dave]);
  t.deepEqual(rows, [
    { action: 'user.assignment.create', details: { roleId: 1, grantedActeeId: '*' } },
    { action: 'user.assignment.delete', details: { roleId: 1, revokedActeeId: '*' } },
  ]);
});

test('users without assignment rights cannot list, assign or revoke', async (t) => {
  t.is((await f.server.request('/v1/assignments', { token: f.chelsea.token })).status, 403);
  t.is((await f.server.request('/v1/assignments/admin', { token: f.chelsea.token })).status, 403);
  const selfAssign = await f.server.request(`/v1/assignments/admin/${f.chelsea.id}`, { method: "POST", token: f.chelsea.token });
  t.is(selfAssign.status, 403, selfAssign.text);
  t.is((await f.server.request(`/v1/assignments/admin/${f.alice.id}`, { method: 'DELETE', token: f.chelsea.token })).status, 403);
  t.is((await f.server.request(`/v1/assignments/admin/${f.chelsea.id}`, { method: 'POST' })).status, 403);
});

test('assigning an unknown role or actor is 404.1', async (t) => {
  t.is((await f.server.request(`/v1/assignments/nonesuch/${f.bob.id}`, { method: 'POST', token: f.alice.token })).status, 404);
  t.is((await f.server.request('/v1/assignments/admin/424242', { method: 'POST', token: f.alice.token })).status, 404);
});
