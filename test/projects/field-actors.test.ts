// App Users and Public Links act only on the forms they fill: every project-level endpoint refuses them (403.1).
// And a deleted project takes its forms with it, from every listing and lookup (formList, forms, OData).
import test from 'ava';
import { withProjects, keyPath, type ProjectFixtures } from './fixtures.ts';
import { readForm, upload } from '../forms/helpers.ts';

let f: ProjectFixtures;
let linkToken: string;
test.before(async () => {
  f = await withProjects();
  const res = await upload(f.server, f.alice.token, f.projectA, readForm('basic-one-question-v1'), '?publish=true');
  if (res.status !== 200) throw new Error(res.text);
  await f.server.request(`/v1/projects/${f.projectA}/forms/one_question/assignments/app-user/${f.appUser.id}`, { method: 'POST', token: f.alice.token });
  const link = await f.server.request(`/v1/projects/${f.projectA}/forms/one_question/public-links`, { method: 'POST', token: f.alice.token, body: { displayName: 'Link' } });
  linkToken = link.body.token;
});
test.after.always(() => f?.server.close());

/** Project-level calls neither an App User nor a Public Link may make, with bodies good enough to pass validation. */
function projectCalls(): [string, string, unknown?][] {
  const p = `/v1/projects/${f.projectA}`;
  return [
    ['GET', p], ['PATCH', p, { name: 'Taken' }], ['PUT', p, { name: 'Taken' }], ['DELETE', p], ['POST', '/v1/projects', { name: 'New' }],
    ['GET', `${p}/assignments`], ['GET', `${p}/assignments/manager`], ['POST', `${p}/assignments/manager/${f.dana.id}`],
    ['DELETE', `${p}/assignments/viewer/${f.chelsea.id}`], ['GET', `${p}/assignments/forms`],
    ['GET', `${p}/app-users`], ['POST', `${p}/app-users`, { displayName: 'Mine' }], ['GET', `${p}/app-users/${f.appUser.id}`],
    ['PATCH', `${p}/app-users/${f.appUser.id}`, { properties: {} }], ['DELETE', `${p}/app-users/${f.appUser.id}`],
    ['GET', `${p}/actor-properties`], ['POST', `${p}/actor-properties`, { name: 'region' }],
    ['GET', `${p}/forms`], ['PATCH', `${p}/forms/one_question`, { state: 'closed' }], ['DELETE', `${p}/forms/one_question`],
    ['GET', `${p}/forms/one_question/versions`], ['GET', `${p}/forms/one_question/assignments`],
    ['POST', `${p}/forms/one_question/assignments/app-user/${f.dana.id}`], ['GET', `${p}/forms/one_question/public-links`],
    ['POST', `${p}/forms/one_question/public-links`, { displayName: 'Another' }], ['POST', `${p}/forms/one_question/draft`],
    ['GET', `${p}/forms/one_question/dataset-diff`],
  ];
}

test.serial('an App User (through /v1/key/<token>/) is refused every project-level call but reads its assigned form', async (t) => {
  for (const [method, path, body] of projectCalls()) {
    const res = await f.server.request(keyPath(f.appUser.token, path), { method, body });
    t.is(res.status, 403, `${method} ${path}`);
    t.is(res.body.code, 403.1, `${method} ${path}`);
  }
  t.is((await f.server.request(keyPath(f.appUser.token, `/v1/projects/${f.projectA}/forms/one_question`))).status, 200);
  t.is((await f.server.request(`/v1/projects/${f.projectA}`, { token: f.alice.token })).body.name, 'Project A');
});

test.serial('a Public Link (?st=) is refused every project-level call but reads its form', async (t) => {
  for (const [method, path, body] of projectCalls()) {
    const res = await f.server.request(`${path}?st=${encodeURIComponent(linkToken)}`, { method, body });
    t.is(res.status, 403, `${method} ${path}`);
    t.is(res.body.code, 403.1, `${method} ${path}`);
  }
  t.deepEqual((await f.server.request(`/v1/projects?st=${encodeURIComponent(linkToken)}`)).body, []);
  t.is((await f.server.request(`/v1/projects/${f.projectA}/forms/one_question?st=${encodeURIComponent(linkToken)}`)).status, 200);
});

test.serial('deleting a project hides its forms everywhere: formList, forms list and lookups, OData, project embeds', async (t) => {
  const { server, alice } = f;
  const { body: project } = await server.request('/v1/projects', { method: 'POST', token: alice.token, body: { name: 'Going away' } });
  t.is((await upload(server, alice.token, project.id, readForm('basic-one-question-v1'), '?publish=true')).status, 200);
  const { body: appUser } = await server.request(`/v1/projects/${project.id}/app-users`, { method: 'POST', token: alice.token, body: { displayName: 'Phone' } });
  await server.request(`/v1/projects/${project.id}/forms/one_question/assignments/app-user/${appUser.id}`, { method: 'POST', token: alice.token });
  const base = `/v1/projects/${project.id}`;
  const formList = () => server.request(keyPath(appUser.token, `${base}/formList`), { headers: { 'x-openrosa-version': '1.0' } });
  t.true((await formList()).text.includes('<formID>one_question</formID>'));
  t.is((await server.request(`${base}/forms/one_question.svc`, { token: alice.token })).status, 200);
  const embedded = async () => (await server.request('/v1/projects?forms=true', { token: alice.token })).body
    .flatMap((p: any) => p.formList.map((x: any) => `${p.id}/${x.xmlFormId}`));
  t.true((await embedded()).includes(`${project.id}/one_question`));

  t.deepEqual((await server.request(base, { method: 'DELETE', token: alice.token })).body, { success: true });
  t.is((await formList()).status, 404);
  for (const path of [`${base}/forms`, `${base}/forms/one_question`, `${base}/forms/one_question.xml`, `${base}/forms/one_question/fields`,
    `${base}/forms/one_question/versions`, `${base}/forms/one_question/manifest`, `${base}/forms/one_question.svc`,
    `${base}/forms/one_question.svc/Submissions`, `${base}/forms/one_question/submissions`]) {
    t.is((await server.request(path, { token: alice.token })).status, 404, path);
  }
  t.is((await server.request(keyPath(appUser.token, `${base}/forms/one_question.xml`))).status, 404);
  t.false((await embedded()).includes(`${project.id}/one_question`));
  const { rows } = await server.sql.query('select deleted_at from app_public.forms f where f.project_id = $1', [project.id]);
  t.is(rows.length, 1, 'the form row stays (soft delete), only hidden');
});
