// Public Links: actor property values (at creation, by PATCH, in extended metadata), the `once` flag, and the
// ?st= token flow end to end: read the open form, submit to it, and nothing once revoked, deleted or closed.
import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { submitOpenRosa } from '../submissions/helpers.ts';
import { readForm, createProject, upload } from './helpers.ts';

let f: Fixtures;
let projectId: number;
const extended = { 'x-extended-metadata': 'true' };
const links = () => `/v1/projects/${projectId}/forms/one_question/public-links`;

test.before(async () => {
  f = await withFixtures();
  projectId = await createProject(f.server, f.alice.token, 'Public links');
  for (const name of ['basic-one-question-v1', 'geo-geoshape'])
    if ((await upload(f.server, f.alice.token, projectId, readForm(name), '?publish=true')).status !== 200) throw new Error(name);
  for (const name of ['region', 'supervisor'])
    await f.server.request(`/v1/projects/${projectId}/actor-properties`, { method: 'POST', token: f.alice.token, body: { name } });
  // chelsea views the project: Central's viewers neither list nor change Public Links.
  await f.server.request(`/v1/projects/${projectId}/assignments/viewer/${f.chelsea.id}`, { method: 'POST', token: f.alice.token });
});
test.after.always(() => f?.server.close());

const submission = (instanceId: string, formId = 'one_question', version = '1') =>
  `<data id="${formId}" version="${version}"><age>42</age><meta><instanceID>${instanceId}</instanceID></meta></data>`;

test.serial('a Public Link carries actor property values: set at creation, shown with extended metadata, changed by PATCH', async (t) => {
  const created = await f.server.request(links(), { method: 'POST', token: f.alice.token,
    body: { displayName: 'North survey', once: true, properties: { region: ' North ' } } });
  t.is(created.status, 200);
  t.deepEqual(Object.keys(created.body).sort(), ['createdAt', 'deletedAt', 'displayName', 'id', 'once', 'token', 'type', 'updatedAt']);
  t.like(created.body, { displayName: 'North survey', once: true, type: 'public_link' });
  const plain = await f.server.request(links(), { method: 'POST', token: f.alice.token, body: { displayName: 'Plain' } });
  t.is(plain.body.once, false);

  const one = await f.server.request(`${links()}/${created.body.id}`, { token: f.alice.token, headers: extended });
  t.deepEqual(one.body.properties, { region: 'North' });
  t.like(one.body.createdBy, { id: f.alice.id, displayName: 'Alice' });
  t.false('properties' in (await f.server.request(`${links()}/${created.body.id}`, { token: f.alice.token })).body);
  t.is((await f.server.request(links(), { token: f.chelsea.token })).body.code, 403.1, 'viewers do not list links');
  const list = await f.server.request(links(), { token: f.alice.token, headers: extended });
  t.deepEqual(list.body.map((l: any) => [l.displayName, l.properties]), [['North survey', { region: 'North' }], ['Plain', null]]);

  const patched = await f.server.request(`${links()}/${created.body.id}`, { method: 'PATCH', token: f.alice.token,
    body: { properties: { supervisor: 'Sam', region: null } } });
  t.is(patched.status, 200);
  t.deepEqual(patched.body.properties, { supervisor: 'Sam' });
  t.like(patched.body, { id: created.body.id, displayName: 'North survey', token: created.body.token });
  t.truthy(patched.body.updatedAt);
  t.like(patched.body.createdBy, { id: f.alice.id });

  const unknown = await f.server.request(`${links()}/${created.body.id}`, { method: 'PATCH', token: f.alice.token, body: { properties: { planet: 'Mars' } } });
  t.is(unknown.status, 400);
  t.is(unknown.body.code, 400.8);
  const missing = await f.server.request(`${links()}/${created.body.id}`, { method: 'PATCH', token: f.alice.token, body: {} });
  t.deepEqual(missing.body, { code: 400.2, message: 'Required parameter properties missing.', details: { field: 'properties' } });
  t.is((await f.server.request(`${links()}/${created.body.id}`, { method: 'PATCH', token: f.chelsea.token, body: { properties: { region: 'x' } } })).body.code, 403.1);
  t.is((await f.server.request(`${links()}/${created.body.id}`, { method: 'PATCH', token: f.bob.token, body: { properties: { region: 'x' } } })).body.code, 403.1);
  t.is((await f.server.request(`${links()}/999999`, { method: 'PATCH', token: f.alice.token, body: { properties: { region: 'x' } } })).body.code, 404.1);
  const badCreate = await f.server.request(links(), { method: 'POST', token: f.alice.token, body: { displayName: 'Bad', properties: { planet: 'x' } } });
  t.is(badCreate.body.code, 400.8);
  t.is((await f.server.request(links(), { token: f.alice.token })).body.length, 2, 'nothing created on a bad property');

  const values = await f.server.request(`/v1/projects/${projectId}/actor-properties`, { token: f.alice.token, headers: extended });
  t.deepEqual(values.body, [{ name: 'region', values: [] }, { name: 'supervisor', values: ['Sam'] }]);
  const { rows } = await f.server.sql.query(`select au.action, au.details from app_public.audits au
    join app_public.actors a on a.actee_id = au.actee_id where a.id = $1 order by au.id`, [created.body.id]);
  t.deepEqual(rows, [
    { action: 'public_link.create', details: null },
    { action: 'public_link.property.set', details: { properties: { region: 'North' } } },
    { action: 'public_link.property.set', details: { properties: { supervisor: 'Sam', region: null } } },
  ]);
});

test.serial('a Public Link token (?st=) reads its open form and submits to it, and nothing else', async (t) => {
  const { body: link } = await f.server.request(links(), { method: 'POST', token: f.alice.token, body: { displayName: 'Field link' } });
  const st = `st=${encodeURIComponent(link.token)}`;
  const form = await f.server.request(`/v1/projects/${projectId}/forms/one_question?${st}`);
  t.is(form.status, 200);
  t.is(form.body.xmlFormId, 'one_question');
  t.is((await f.server.request(`/v1/projects/${projectId}/forms/one_question.xml?${st}`)).text, readForm('basic-one-question-v1'));
  t.is((await f.server.request(`/v1/projects/${projectId}/forms/one_question/manifest?${st}`)).status, 200);

  const sent = await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission?${st}`, submission('uuid:pl-1'));
  t.is(sent.status, 201, sent.text);
  const stored = await f.server.request(`/v1/projects/${projectId}/forms/one_question/submissions/uuid:pl-1`, { token: f.alice.token });
  t.is(stored.status, 200);
  t.is(stored.body.submitterId, link.id);

  // The link reaches only its own form, and none of the project's management.
  t.is((await f.server.request(`/v1/projects/${projectId}/forms/geoshape_test?${st}`)).status, 403);
  const other = await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission?${st}`,
    '<data id="geoshape_test"><meta><instanceID>uuid:pl-x</instanceID></meta></data>');
  t.is(other.status, 403);
  t.is((await f.server.request(`/v1/projects/${projectId}/forms/one_question/submissions?${st}`)).status, 403);
  t.is((await f.server.request(`/v1/projects/${projectId}/forms?${st}`)).status, 403);
  t.is((await f.server.request(`${links()}?${st}`)).status, 403);
  t.is((await f.server.request(`/v1/projects/${projectId}/app-users?${st}`)).status, 403);
});

test.serial('a closing form still takes Public Link submissions; a closed one hides from the link and refuses them (409.2)', async (t) => {
  const { body: link } = await f.server.request(links(), { method: 'POST', token: f.alice.token, body: { displayName: 'Closing link' } });
  const st = `st=${encodeURIComponent(link.token)}`;
  const setState = (state: string) => f.server.request(`/v1/projects/${projectId}/forms/one_question`, { method: 'PATCH', token: f.alice.token, body: { state } });
  await setState('closing');
  t.is((await f.server.request(`/v1/projects/${projectId}/forms/one_question?${st}`)).status, 200);
  t.is((await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission?${st}`, submission('uuid:pl-closing'))).status, 201);
  await setState('closed');
  t.is((await f.server.request(`/v1/projects/${projectId}/forms/one_question?${st}`)).status, 403);
  const refused = await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission?${st}`, submission('uuid:pl-closed'));
  t.is(refused.status, 409);
  t.true(refused.text.includes('This form is not currently accepting submissions.'));
  await setState('open');
  t.is((await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission?${st}`, submission('uuid:pl-reopened'))).status, 201);
});

test.serial('a revoked or deleted Public Link\'s token stops working at once (401.2)', async (t) => {
  const { body: revoked } = await f.server.request(links(), { method: 'POST', token: f.alice.token, body: { displayName: 'To revoke' } });
  const { body: deleted } = await f.server.request(links(), { method: 'POST', token: f.alice.token, body: { displayName: 'To delete' } });
  t.deepEqual((await f.server.request(`/v1/sessions/${encodeURIComponent(revoked.token)}`, { method: 'DELETE', token: f.alice.token })).body, { success: true });
  t.deepEqual((await f.server.request(`${links()}/${deleted.id}`, { method: 'DELETE', token: f.alice.token })).body, { success: true });
  for (const link of [revoked, deleted]) {
    const st = `st=${encodeURIComponent(link.token)}`;
    const read = await f.server.request(`/v1/projects/${projectId}/forms/one_question?${st}`);
    t.is(read.status, 401);
    t.is(read.body.code, 401.2);
    t.is((await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission?${st}`, submission(`uuid:pl-${link.id}`))).status, 401);
  }
  // The revoked link is still listed, without a token; the deleted one is gone.
  const list = await f.server.request(links(), { token: f.alice.token });
  t.is(list.body.find((l: any) => l.id === revoked.id).token, null);
  t.false(list.body.some((l: any) => l.id === deleted.id));
  const audits = await f.server.sql.query(`select action from app_public.audits where action in ('public_link.session.end', 'public_link.delete')`);
  t.deepEqual(audits.rows.map((r) => r.action).sort(), ['public_link.delete', 'public_link.session.end']);
});
