// Changing how a dataset makes entities: turning approvalRequired off with pending submissions (400.29 unless
// ?convert=true|false, as Central), and property names that differ from existing ones only in case (409.17).
import test from 'ava';
import crypto from 'node:crypto';
import { entityForm, entitySubmission, publishForm, submit, withProjects, type ProjectFixtures } from './helpers.ts';

let f: ProjectFixtures;
let registration: string;
const people = () => `/v1/projects/${f.projectA}/datasets/people`;

/** A create-people submission for a new person; returns its entity id and instanceID. */
async function register(name: string) {
  const entity = crypto.randomUUID();
  const instance = `uuid:${crypto.randomUUID()}`;
  const xml = entitySubmission('entities-2024.1-create-people', 'create.xml')
    .replace('4f3e2d1c-0b9a-4877-a665-544332211009', entity)
    .replace(/<instanceID>[^<]*<\/instanceID>/, `<instanceID>${instance}</instanceID>`)
    .replaceAll('Shiv Roy', name);
  await submit(f.server, f.dana.token, f.projectA, registration, xml);
  return { entity, instance };
}

const entityStatus = async (uuid: string) => (await f.server.request(`${people()}/entities/${uuid}`, { token: f.bob.token })).status;
const patch = (query: string, body: unknown) => f.server.request(`${people()}${query}`, { method: 'PATCH', token: f.bob.token, body });

test.before(async () => {
  f = await withProjects();
  registration = await publishForm(f.server, f.bob.token, f.projectA, entityForm('entities-2024.1-create-people'));
});
test.after.always(() => f?.server.close());

test.serial('turning approval off with pending submissions is 400.29 unless ?convert says what to do with them', async (t) => {
  t.is((await patch('', { approvalRequired: true })).status, 200);
  const pending = await register('Pending One');
  const rejected = await register('Rejected One');
  await f.server.request(`/v1/projects/${f.projectA}/forms/${registration}/submissions/${rejected.instance}`,
    { method: 'PATCH', token: f.bob.token, body: { reviewState: 'rejected' } });
  t.is(await entityStatus(pending.entity), 404);

  const refused = await patch('', { approvalRequired: false });
  t.is(refused.status, 400);
  t.deepEqual(refused.body, { code: 400.29, message: 'There are 1 pending submissions', details: { count: 1 } });
  t.true((await f.server.request(people(), { token: f.bob.token })).body.approvalRequired);
  const bad = await patch('?convert=maybe', { approvalRequired: false });
  t.is(bad.status, 400);
  t.is(bad.body.code, 400.8);
  t.is((await f.server.request(`${people()}?convert=true`, { method: 'PATCH', token: f.chelsea.token, body: { approvalRequired: false } })).status, 403);
  // Other changes are not held up by pending submissions.
  t.is((await patch('', { ownerOnly: false })).status, 200);

  const converted = await patch('?convert=true', { approvalRequired: false });
  t.is(converted.status, 200);
  t.false(converted.body.approvalRequired);
  await f.server.drainJobs();
  t.is(await entityStatus(pending.entity), 200);
  t.is(await entityStatus(rejected.entity), 404);
  const entity = (await f.server.request(`${people()}/entities/${pending.entity}`, { token: f.bob.token })).body;
  t.like(entity, { creatorId: f.dana.id });
  t.like(entity.currentVersion, { label: 'Pending One', data: { full_name: 'Pending One' } });
  // New submissions make entities at once now.
  const later = await register('Later One');
  t.is(await entityStatus(later.entity), 200);
});

test.serial('?convert=false turns approval off and leaves pending submissions without entities', async (t) => {
  t.is((await patch('', { approvalRequired: true })).status, 200);
  const pending = await register('Left Pending');
  t.is((await patch('?convert=false', { approvalRequired: false })).status, 200);
  await f.server.drainJobs();
  t.is(await entityStatus(pending.entity), 404);
  // Nothing is pending any more: the setting can be flipped freely.
  t.is((await patch('', { approvalRequired: true })).status, 200);
  t.is((await patch('', { approvalRequired: false })).status, 400);
  t.is((await patch('?convert=false', { approvalRequired: false })).status, 200);
});

test.serial('a form saving to a property that differs from an existing one only in case is 409.17', async (t) => {
  const xml = entityForm('entities-2024.1-create-people')
    .replace('id="one_question_entity"', 'id="cased_people"')
    .replace('entities:saveto="full_name"', 'entities:saveto="Full_Name"');
  const res = await f.server.request(`/v1/projects/${f.projectA}/forms?publish=true&ignoreWarnings=true`,
    { method: 'POST', token: f.bob.token, raw: xml, headers: { 'content-type': 'application/xml' } });
  t.is(res.status, 409);
  t.deepEqual(res.body, { code: 409.17, message: 'This form attempts to create new Entity properties that match with existing ones except for capitalization.' });
  const meta = await f.server.request(people(), { token: f.bob.token });
  t.deepEqual(meta.body.properties.map((p: any) => p.name), ['full_name']);
  t.is((await f.server.request(`/v1/projects/${f.projectA}/forms/cased_people`, { token: f.bob.token })).status, 404);
});
