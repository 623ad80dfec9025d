// The deep PUT /v1/projects/:id with forms: every form's state and form assignments in one transaction.
import test from 'ava';
import { withProjects, type ProjectFixtures } from './fixtures.ts';
import { readForm as corpusForm, upload } from '../forms/helpers.ts';

let f: ProjectFixtures;
test.before(async () => { f = await withProjects(); });
test.after.always(() => f?.server.close());

const forms = ['basic-one-question-v1', 'geo-geoshape', 'calculate-simple'];
const ids = ['one_question', 'geoshape_test', 'calculate-simple'];

/** A project of bob's with three published forms; chelsea fills one_question, which also has a Public Link. */
async function projectWithForms(name: string) {
  const { server, alice } = f;
  const { body: project } = await server.request('/v1/projects', { method: 'POST', token: alice.token, body: { name, description: 'before' } });
  await server.request(`/v1/projects/${project.id}/assignments/manager/${f.bob.id}`, { method: 'POST', token: alice.token });
  for (const form of forms) {
    const res = await upload(server, alice.token, project.id, corpusForm(form), '?publish=true');
    if (res.status !== 200) throw new Error(`${form}: ${res.text}`);
  }
  const formPath = (id: string) => `/v1/projects/${project.id}/forms/${id}`;
  await server.request(`${formPath('one_question')}/assignments/formfill/${f.chelsea.id}`, { method: 'POST', token: alice.token });
  await server.request(`${formPath('one_question')}/assignments/formview/${f.eve.id}`, { method: 'POST', token: alice.token });
  const { body: link } = await server.request(`${formPath('one_question')}/public-links`, { method: 'POST', token: alice.token, body: { displayName: 'Link' } });
  const { body: appUser } = await server.request(`/v1/projects/${project.id}/app-users`, { method: 'POST', token: alice.token, body: { displayName: 'Phone' } });
  return { id: project.id as number, formPath, link, appUser };
}

async function snapshot(projectId: number) {
  const { server, alice } = f;
  const project = (await server.request(`/v1/projects/${projectId}`, { token: alice.token })).body;
  const states: Record<string, string> = {};
  const assignments: Record<string, unknown> = {};
  for (const id of ids) {
    states[id] = (await server.request(`/v1/projects/${projectId}/forms/${id}`, { token: alice.token })).body.state;
    assignments[id] = (await server.request(`/v1/projects/${projectId}/forms/${id}/assignments`, { token: alice.token })).body;
  }
  const { rows: [audits] } = await server.sql.query('select count(*)::int as n from app_public.audits');
  return { project, states, assignments, audits: audits.n };
}

test.serial('a deep PUT sets every form\'s state and replaces its assignments, keeping Form Viewer and Public Link grants', async (t) => {
  const p = await projectWithForms('Deep');
  const res = await f.server.request(`/v1/projects/${p.id}`, {
    method: 'PUT', token: f.bob.token,
    body: {
      name: 'Deep done', description: 'after', archived: false,
      forms: [
        { xmlFormId: 'one_question', state: 'closing', assignments: [{ roleId: 8, actorId: f.dana.id }] },
        { xmlFormId: 'geoshape_test', state: 'closed' },
        { xmlFormId: 'calculate-simple', state: 'open', assignments: [{ roleId: 2, actorId: p.appUser.id }] },
      ],
    },
  });
  t.is(res.status, 200, res.text);
  t.like(res.body, { id: p.id, name: 'Deep done', description: 'after', archived: false });
  const after = await snapshot(p.id);
  t.deepEqual(after.states, { one_question: 'closing', geoshape_test: 'closed', 'calculate-simple': 'open' });
  // chelsea's Data Collector grant went, dana's came; eve's Form Viewer and the Public Link's grants stay.
  t.deepEqual(after.assignments, {
    one_question: [{ actorId: f.eve.id, roleId: 7 }, { actorId: f.dana.id, roleId: 8 }, { actorId: p.link.id, roleId: 9 }],
    geoshape_test: [],
    'calculate-simple': [{ actorId: p.appUser.id, roleId: 2 }],
  });
  t.is((await f.server.request(`${p.formPath('one_question')}?st=${encodeURIComponent(p.link.token)}`)).status, 200);
  t.is((await f.server.request(p.formPath('one_question'), { token: f.dana.token })).status, 200);
  t.is((await f.server.request(p.formPath('one_question'), { token: f.chelsea.token })).status, 403);
  const { rows } = await f.server.sql.query(
    `select action from app_public.audits where id > (select max(id) from app_public.audits where action = 'field_key.create') order by id`);
  t.deepEqual(rows.map((r) => r.action), ['project.update', 'form.update', 'user.assignment.delete', 'user.assignment.create',
    'form.update', 'form.update', 'field_key.assignment.create']);
  // Omitting forms altogether leaves them alone; so does a form without assignments.
  const plain = await f.server.request(`/v1/projects/${p.id}`, { method: 'PUT', token: f.bob.token, body: { name: 'Plain' } });
  t.is(plain.status, 200);
  t.deepEqual((await snapshot(p.id)).assignments, after.assignments);
});

test.serial('a bad form state in the middle of the list changes nothing: project, other forms, assignments', async (t) => {
  const p = await projectWithForms('All or nothing deep');
  const before = await snapshot(p.id);
  const res = await f.server.request(`/v1/projects/${p.id}`, {
    method: 'PUT', token: f.alice.token,
    body: {
      name: 'Changed', description: 'changed', archived: true,
      forms: [
        { xmlFormId: 'one_question', state: 'closed', assignments: [{ roleId: 8, actorId: f.dana.id }] },
        { xmlFormId: 'geoshape_test', state: 'bogus' },
        { xmlFormId: 'calculate-simple', state: 'closing', assignments: [] },
      ],
    },
  });
  t.is(res.status, 400);
  t.deepEqual(res.body, { code: 400.8, message: 'Unexpected state value bogus; not a recognized form state.',
    details: { field: 'state', value: 'bogus', reason: 'not a recognized form state.' } });
  t.deepEqual(await snapshot(p.id), before);
  t.like(before.project, { name: 'All or nothing deep', description: 'before', archived: false });
});

test.serial('a forms list that does not match the project\'s forms is 501.2; duplicates and bad assignments are 400s; nothing changes', async (t) => {
  const p = await projectWithForms('Mismatch');
  const before = await snapshot(p.id);
  const put = (formList: unknown) => f.server.request(`/v1/projects/${p.id}`,
    { method: 'PUT', token: f.alice.token, body: { name: 'Changed', forms: formList } });
  const all = (extra: Record<string, unknown> = {}) => ids.map((xmlFormId) => ({ xmlFormId, state: 'closed', ...(xmlFormId === 'geoshape_test' ? extra : {}) }));
  const unexpected = { code: 501.2, message: 'This endpoint does not allow creation or deletion of forms. Please check that you have sent the correct detail for all forms in this project.' };
  t.deepEqual((await put(all().slice(0, 2))).body, unexpected);
  t.deepEqual((await put([...all(), { xmlFormId: 'new_form', state: 'open' }])).body, unexpected);
  t.deepEqual((await put([...all().slice(0, 2), { xmlFormId: 'new_form', state: 'open' }])).body, unexpected);
  const missingListed = await put([]);
  t.is(missingListed.status, 501);
  const duplicate = await put([...all().slice(0, 2), { xmlFormId: 'one_question', state: 'open' }]);
  t.is(duplicate.status, 400);
  t.deepEqual(duplicate.body, { code: 400.8, message: 'Unexpected xmlFormId value one_question; duplicate value',
    details: { field: 'xmlFormId', value: 'one_question', reason: 'duplicate value' } });
  const noActor = await put(all({ assignments: [{ roleId: 8 }] }));
  t.deepEqual(noActor.body, { code: 400.2, message: 'Required parameter assignment actorId missing.', details: { field: 'assignment actorId' } });
  const noRole = await put(all({ assignments: [{ actorId: f.dana.id }] }));
  t.is(noRole.body.code, 400.2);
  const badRole = await put(all({ assignments: [{ roleId: 99, actorId: f.dana.id }] }));
  t.deepEqual(badRole.body, { code: 400.14, message: 'The given roleId 99 for roles does not exist.', details: { field: 'roleId', value: 99, table: 'roles' } });
  const badActor = await put(all({ assignments: [{ roleId: 8, actorId: 999999 }] }));
  t.deepEqual(badActor.body, { code: 400.14, message: 'The given actorId 999999 for actors does not exist.', details: { field: 'actorId', value: 999999, table: 'actors' } });
  t.deepEqual(await snapshot(p.id), before);
});

test.serial('deep PUT rights: viewers and other managers are refused; a manager cannot hand out a role above their own', async (t) => {
  const p = await projectWithForms('Rights');
  await f.server.request(`/v1/projects/${p.id}/assignments/viewer/${f.chelsea.id}`, { method: 'POST', token: f.alice.token });
  const before = await snapshot(p.id);
  const body = { name: 'Taken', forms: ids.map((xmlFormId) => ({ xmlFormId, state: 'closed' })) };
  for (const token of [f.chelsea.token, f.eve.token, f.dana.token, null]) {
    const res = await f.server.request(`/v1/projects/${p.id}`, { method: 'PUT', token, body });
    t.is(res.status, 403);
    t.is(res.body.code, 403.1);
  }
  const admin = await f.server.request(`/v1/projects/${p.id}`, {
    method: 'PUT', token: f.bob.token,
    body: { name: 'Escalate', forms: ids.map((xmlFormId) => ({ xmlFormId, state: 'closed', assignments: [{ roleId: 1, actorId: f.dana.id }] })) },
  });
  t.is(admin.status, 403);
  t.deepEqual(await snapshot(p.id), before);
});
