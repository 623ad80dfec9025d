import test from 'ava';
import { withProjects, keyPath, type ProjectFixtures } from './fixtures.ts';

let f: ProjectFixtures;
test.before(async () => { f = await withProjects(); });
test.after.always(() => f?.server.close());

const projectKeys = ['archived', 'createdAt', 'deletedAt', 'description', 'id', 'keyId', 'name', 'updatedAt'];
const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test('an administrator creates a project and gets Central\'s project shape', async (t) => {
  const res = await f.server.request('/v1/projects', { method: 'POST', token: f.alice.token, body: { name: 'Created' } });
  t.is(res.status, 200);
  t.deepEqual(Object.keys(res.body).sort(), projectKeys);
  t.like(res.body, { name: 'Created', description: null, keyId: null, archived: false, updatedAt: null, deletedAt: null });
  t.regex(res.body.createdAt, iso);
  const { rows } = await f.server.sql.query(`select a.details from app_public.audits a join app_public.projects p on p.actee_id = a.actee_id
    where p.id = $1 and a.action = 'project.create'`, [res.body.id]);
  t.is(rows.length, 1);
  t.is(rows[0].details.data.name, 'Created');
});

test('creating a project without a name is 400.2; without project.create it is 403.1', async (t) => {
  const missing = await f.server.request('/v1/projects', { method: 'POST', token: f.alice.token, body: {} });
  t.is(missing.status, 400);
  t.is(missing.body.code, 400.2);
  for (const token of [f.bob.token, f.chelsea.token, f.dana.token, f.eve.token]) {
    const denied = await f.server.request('/v1/projects', { method: 'POST', token, body: { name: 'Nope' } });
    t.is(denied.status, 403);
    t.is(denied.body.code, 403.1);
  }
  const anonymous = await f.server.request('/v1/projects', { method: 'POST', body: { name: 'Nope' } });
  t.is(anonymous.status, 403);
  const appUser = await f.server.request(keyPath(f.appUser.token, '/v1/projects'), { method: 'POST', body: { name: 'Nope' } });
  t.is(appUser.status, 403);
});

test.serial('each actor lists only the projects it may read', async (t) => {
  const names = async (token?: string) =>
    (await f.server.request('/v1/projects', { token })).body.map((p: { name: string }) => p.name);
  t.true((await names(f.alice.token)).includes('Project A'));
  t.true((await names(f.alice.token)).includes('Project B'));
  t.deepEqual(await names(f.bob.token), ['Project A']);
  t.deepEqual(await names(f.chelsea.token), ['Project A']);
  t.deepEqual(await names(f.dana.token), ['Project A']);
  t.deepEqual(await names(f.eve.token), ['Project B']);
  t.deepEqual(await names(undefined), []);
  const appUser = await f.server.request(keyPath(f.appUser.token, '/v1/projects'));
  t.is(appUser.status, 200);
  t.deepEqual(appUser.body, []);
});

test.serial('extended listing adds counts and the actor\'s verbs; ?forms and ?datasets embed lists', async (t) => {
  const res = await f.server.request('/v1/projects?forms=true&datasets=True', { token: f.bob.token, headers: { 'X-Extended-Metadata': 'true' } });
  t.is(res.status, 200);
  const [a] = res.body;
  t.like(a, { id: f.projectA, appUsers: 1, forms: 0, lastSubmission: null, datasets: 0, lastEntity: null, formList: [], datasetList: [] });
  t.true(a.verbs.includes('project.update'));
  t.true(a.verbs.includes('field_key.create'));
  t.false(a.verbs.includes('project.create'));
  const plain = await f.server.request('/v1/projects', { token: f.bob.token });
  t.deepEqual(Object.keys(plain.body[0]).sort(), projectKeys);
});

test('GET /v1/projects/:id: readers get it, others 403.1, unknown ids 404.1', async (t) => {
  for (const token of [f.alice.token, f.bob.token, f.chelsea.token, f.dana.token]) {
    const res = await f.server.request(`/v1/projects/${f.projectA}`, { token });
    t.is(res.status, 200);
    t.is(res.body.name, 'Project A');
  }
  const other = await f.server.request(`/v1/projects/${f.projectA}`, { token: f.eve.token });
  t.is(other.status, 403);
  t.is(other.body.code, 403.1);
  t.is((await f.server.request(`/v1/projects/${f.projectA}`)).status, 403);
  t.is((await f.server.request(keyPath(f.appUser.token, `/v1/projects/${f.projectA}`))).status, 403);
  const missing = await f.server.request('/v1/projects/999999', { token: f.alice.token });
  t.is(missing.status, 404);
  t.is(missing.body.code, 404.1);
  t.is((await f.server.request('/v1/projects/abc', { token: f.alice.token })).status, 404);
});

test('extended project details carry the verbs the actor holds on it', async (t) => {
  const viewer = await f.server.request(`/v1/projects/${f.projectA}`, { token: f.chelsea.token, headers: { 'X-Extended-Metadata': 'true' } });
  t.deepEqual([...viewer.body.verbs].sort(), ['actor_property.list', 'dataset.list', 'dataset.read', 'entity.list', 'entity.read',
    'form.list', 'form.read', 'project.read', 'submission.list', 'submission.read']);
  t.is(viewer.body.appUsers, 1);
  const collector = await f.server.request(`/v1/projects/${f.projectA}`, { token: f.dana.token, headers: { 'X-Extended-Metadata': 'true' } });
  t.deepEqual([...collector.body.verbs].sort(), ['open_form.list', 'open_form.read', 'project.read', 'submission.create']);
});

test('PATCH changes only the given fields; managers may, viewers and collectors may not', async (t) => {
  const { body: created } = await f.server.request('/v1/projects', { method: 'POST', token: f.alice.token, body: { name: 'Patchable', description: 'first' } });
  await f.server.request(`/v1/projects/${created.id}/assignments/manager/${f.bob.id}`, { method: 'POST', token: f.alice.token });
  await f.server.request(`/v1/projects/${created.id}/assignments/viewer/${f.chelsea.id}`, { method: 'POST', token: f.alice.token });
  const res = await f.server.request(`/v1/projects/${created.id}`, { method: 'PATCH', token: f.bob.token, body: { archived: true } });
  t.is(res.status, 200);
  t.like(res.body, { name: 'Patchable', description: 'first', archived: true });
  t.regex(res.body.updatedAt, iso);
  const renamed = await f.server.request(`/v1/projects/${created.id}`, { method: 'PATCH', token: f.alice.token, body: { name: 'Renamed', description: null } });
  t.like(renamed.body, { name: 'Renamed', description: null, archived: true });
  t.is((await f.server.request(`/v1/projects/${created.id}`, { method: 'PATCH', token: f.chelsea.token, body: { name: 'x' } })).status, 403);
  t.is((await f.server.request(`/v1/projects/${created.id}`, { method: 'PATCH', token: f.eve.token, body: { name: 'x' } })).status, 403);
  t.is((await f.server.request(`/v1/projects/${created.id}`, { method: 'PATCH', body: { name: 'x' } })).status, 403);
  const blank = await f.server.request(`/v1/projects/${created.id}`, { method: 'PATCH', token: f.alice.token, body: { name: '' } });
  t.is(blank.body.code, 400.2);
  const { rows } = await f.server.sql.query(`select a.details from app_public.audits a join app_public.projects p on p.actee_id = a.actee_id
    where p.id = $1 and a.action = 'project.update' order by a.id`, [created.id]);
  t.deepEqual(rows.map((r) => r.details.data), [{ archived: true }, { name: 'Renamed', description: null }]);
});

test('PUT replaces every project field: omitted ones are nulled', async (t) => {
  const { body: created } = await f.server.request('/v1/projects', { method: 'POST', token: f.alice.token, body: { name: 'Put me', description: 'old', archived: true } });
  const res = await f.server.request(`/v1/projects/${created.id}`, { method: 'PUT', token: f.alice.token, body: { name: 'Put done' } });
  t.is(res.status, 200);
  t.like(res.body, { name: 'Put done', description: null, archived: false });
  const withForms = await f.server.request(`/v1/projects/${created.id}`, { method: 'PUT', token: f.alice.token, body: { name: 'With forms', description: 'd', archived: false, forms: [] } });
  t.is(withForms.status, 200);
  t.like(withForms.body, { name: 'With forms', description: 'd' });
  const noName = await f.server.request(`/v1/projects/${created.id}`, { method: 'PUT', token: f.alice.token, body: { description: 'x' } });
  t.is(noName.status, 400);
  t.is(noName.body.code, 400.2);
});

test('a deep PUT naming forms that do not match the project\'s forms is 501.2 and changes nothing', async (t) => {
  const { body: created } = await f.server.request('/v1/projects', { method: 'POST', token: f.alice.token, body: { name: 'All or nothing', description: 'kept' } });
  const res = await f.server.request(`/v1/projects/${created.id}`, {
    method: 'PUT', token: f.alice.token,
    body: { name: 'Changed', description: 'changed', archived: true, forms: [{ xmlFormId: 'simple', state: 'open' }] },
  });
  t.is(res.status, 501);
  t.is(res.body.code, 501.2);
  const after = await f.server.request(`/v1/projects/${created.id}`, { token: f.alice.token });
  t.like(after.body, { name: 'All or nothing', description: 'kept', archived: false, updatedAt: null });
  const { rows } = await f.server.sql.query(`select 1 from app_public.audits a join app_public.projects p on p.actee_id = a.actee_id
    where p.id = $1 and a.action = 'project.update'`, [created.id]);
  t.is(rows.length, 0);
  const notArray = await f.server.request(`/v1/projects/${created.id}`, { method: 'PUT', token: f.alice.token, body: { name: 'x', forms: 'all' } });
  t.is(notArray.body.code, 400.11);
});

test('a viewer or another project\'s manager cannot PUT', async (t) => {
  for (const token of [f.chelsea.token, f.dana.token, f.eve.token]) {
    const res = await f.server.request(`/v1/projects/${f.projectA}`, { method: 'PUT', token, body: { name: 'Taken' } });
    t.is(res.status, 403);
  }
  t.is((await f.server.request(`/v1/projects/${f.projectA}`, { token: f.alice.token })).body.name, 'Project A');
});

test('deleting a project hides it from listings and lookups and is audited', async (t) => {
  const { body: created } = await f.server.request('/v1/projects', { method: 'POST', token: f.alice.token, body: { name: 'Doomed' } });
  await f.server.request(`/v1/projects/${created.id}/assignments/manager/${f.bob.id}`, { method: 'POST', token: f.alice.token });
  t.is((await f.server.request(`/v1/projects/${created.id}`, { method: 'DELETE', token: f.chelsea.token })).status, 403);
  const res = await f.server.request(`/v1/projects/${created.id}`, { method: 'DELETE', token: f.bob.token });
  t.deepEqual(res.body, { success: true });
  for (const token of [f.alice.token, f.bob.token]) {
    const list = await f.server.request('/v1/projects', { token });
    t.false(list.body.some((p: { id: number }) => p.id === created.id));
    t.is((await f.server.request(`/v1/projects/${created.id}`, { token })).status, 404);
  }
  t.is((await f.server.request(`/v1/projects/${created.id}`, { method: 'PATCH', token: f.alice.token, body: { name: 'x' } })).status, 404);
  t.is((await f.server.request(`/v1/projects/${created.id}`, { method: 'DELETE', token: f.alice.token })).status, 404);
  t.is((await f.server.request(`/v1/projects/${created.id}/app-users`, { token: f.alice.token })).status, 404);
  const audit = await f.server.request('/v1/audits?action=project.delete', { token: f.alice.token });
  t.is(audit.body.length, 1);
});
