// Entities from submissions through HTTP: forms create datasets, submissions create and update entities
// (worker jobs), conflicts from concurrent updates, offline branches arriving out of order, approval, errors.
import test from 'ava';
import crypto from 'node:crypto';
import { entityForm, entitySubmission, publishForm, submit, withInstanceId, withProjects, type ProjectFixtures } from './helpers.ts';

let f: ProjectFixtures;
let updateForm: string;
let createForm: string;
const people = () => `/v1/projects/${f.projectA}/datasets/people`;
const sampleUuid = '93a179a0-71b3-42f8-b78e-4c182eaf2ae7';

test.before(async () => {
  f = await withProjects();
  createForm = await publishForm(f.server, f.bob.token, f.projectA, entityForm('entities-2024.1-create-people'));
  updateForm = await publishForm(f.server, f.bob.token, f.projectA, entityForm('entities-2024.1-update-people'));
});
test.after.always(() => f?.server.close());

const get = (path: string, token = f.bob.token) => f.server.request(path, { token });
const newId = () => crypto.randomUUID();

/** An update-people sample re-targeted at another entity, with a fresh instanceID and optional changes. */
function updateXml(file: string, entity: string, changes: { name?: string; label?: string } = {}) {
  let xml = withInstanceId(entitySubmission('entities-2024.1-update-people', file), newId()).replaceAll(sampleUuid, entity);
  if (changes.name) xml = xml.replace(/<name>[^<]*<\/name>/, `<name>${changes.name}</name>`);
  if (changes.label) xml = xml.replace(/<label>[^<]*<\/label>/, `<label>${changes.label}</label>`);
  return xml;
}

async function createPerson(label: string) {
  const uuid = newId();
  const res = await f.server.request(`${people()}/entities`, { method: 'POST', token: f.bob.token, body: { uuid, label, data: { full_name: label } } });
  if (res.status !== 200) throw new Error(res.text);
  return uuid;
}

test.serial('publishing entity forms creates their datasets and properties, recording the forms', async (t) => {
  const meta = await get(people());
  t.is(meta.status, 200);
  t.deepEqual(meta.body.sourceForms.map((s: any) => s.xmlFormId).sort(), [createForm, updateForm].sort());
  t.deepEqual(meta.body.properties.map((p: any) => [p.name, p.forms.map((x: any) => x.xmlFormId).sort()]),
    [['full_name', [createForm, updateForm].sort()]]);
  // The update form reads people.csv: it is linked to the dataset.
  t.deepEqual(meta.body.linkedForms.map((l: any) => l.xmlFormId), [updateForm]);
  t.is((await f.server.request(`/v1/projects/${f.projectA}/datasets/people`, { method: 'DELETE', token: f.bob.token })).body.code, 409.21);
});

test.serial('a create submission makes an entity from its saveto fields, credited to the submitter', async (t) => {
  await submit(f.server, f.dana.token, f.projectA, createForm, entitySubmission('entities-2024.1-create-people', 'create.xml'));
  const entity = await get(`${people()}/entities/4f3e2d1c-0b9a-4877-a665-544332211009`);
  t.is(entity.status, 200);
  t.like(entity.body, { creatorId: f.dana.id, conflict: null });
  t.like(entity.body.currentVersion, { version: 1, label: 'Shiv Roy', data: { full_name: 'Shiv Roy' } });
  const audits = await get(`${people()}/entities/4f3e2d1c-0b9a-4877-a665-544332211009/audits`);
  const created = audits.body.find((a: any) => a.action === 'entity.create');
  t.is(created.actorId, f.dana.id);
  t.truthy(created.details.submissionId);
  const versions = await get(`${people()}/entities/4f3e2d1c-0b9a-4877-a665-544332211009/versions`);
  t.is(versions.body[0].source.submission.instanceId, 'uuid:c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f');
});

test.serial('a submission whose entity is invalid keeps the submission and logs entity.error', async (t) => {
  const xml = entitySubmission('entities-2024.1-create-people', 'create-invalid-entity-id.xml');
  await submit(f.server, f.dana.token, f.projectA, createForm, xml);
  const { rows } = await f.server.sql.query(`select details from app_public.audits where action = 'entity.error'`);
  t.is(rows.length, 1);
  t.like(rows[0].details, { errorMessage: 'Invalid input data type: expected (uuid) to be (valid version 4 UUID)', problem: { problemCode: 400.11 } });
  const instance = /<instanceID>([^<]*)</.exec(xml)![1];
  t.is((await get(`/v1/projects/${f.projectA}/forms/${createForm}/submissions/${encodeURIComponent(instance)}`)).status, 200);
});

test.serial('two updates from the same base version end in a hard conflict with the whole history kept; resolving clears it', async (t) => {
  const uuid = await createPerson('Roman Roy');
  await submit(f.server, f.dana.token, f.projectA, updateForm, updateXml('update-online.xml', uuid, { name: 'Roman Roy Jr', label: 'Roman Roy Jr' }));
  const v2 = await get(`${people()}/entities/${uuid}`);
  t.like(v2.body, { conflict: null });
  t.like(v2.body.currentVersion, { version: 2, baseVersion: 1, conflictingProperties: null, data: { full_name: 'Roman Roy Jr' } });
  // A second collector also started from version 1.
  await submit(f.server, f.dana.token, f.projectA, updateForm, updateXml('update-online.xml', uuid, { name: 'Romulus', label: 'Romulus' }));
  const v3 = await get(`${people()}/entities/${uuid}`);
  t.is(v3.body.conflict, 'hard');
  t.like(v3.body.currentVersion, { version: 3, baseVersion: 1, label: 'Romulus', conflictingProperties: ['full_name', 'label'] });
  const versions = (await get(`${people()}/entities/${uuid}/versions`)).body;
  t.deepEqual(versions.map((v: any) => [v.version, v.label, v.conflict, v.lastGoodVersion, v.relevantToConflict]),
    [[1, 'Roman Roy', null, false, true], [2, 'Roman Roy Jr', null, true, true], [3, 'Romulus', 'hard', false, true]]);
  t.deepEqual(versions[2].serverDiff.sort(), ['full_name', 'label']);
  t.is((await get(`${people()}/entities/${uuid}/versions?relevantToConflict=true`)).body.length, 3);
  const listed = await get(`/v1/projects/${f.projectA}/datasets`, f.chelsea.token);
  t.truthy(listed.body.find((d: any) => d.name === 'people'));
  const resolved = await f.server.request(`${people()}/entities/${uuid}?resolve=true`, { method: 'PATCH', token: f.bob.token, body: {} });
  t.is(resolved.status, 200, resolved.text);
  t.is(resolved.body.conflict, null);
  t.is(resolved.body.currentVersion.version, 3);
  const after = (await get(`${people()}/entities/${uuid}/versions`)).body;
  t.like(after[2], { conflict: 'hard', resolved: true, lastGoodVersion: true });
  t.deepEqual((await get(`${people()}/entities/${uuid}/versions?relevantToConflict=true`)).body, []);
  t.true((await get(`${people()}/entities/${uuid}/audits`)).body.some((a: any) => a.action === 'entity.update.resolve'));
});

test.serial('updates to different properties from a stale base are a soft conflict', async (t) => {
  const uuid = await createPerson('Kendall Roy');
  await f.server.request(`${people()}/entities/${uuid}?baseVersion=1`, { method: 'PATCH', token: f.bob.token, body: { label: 'Kendall R.' } });
  // Changes full_name only (same label as the base): no overlap with the label the server changed.
  let xml = updateXml('update-online.xml', uuid, { name: 'Ken Roy' });
  xml = xml.replace(/<label>[^<]*<\/label>/, '<label></label>');
  await submit(f.server, f.dana.token, f.projectA, updateForm, xml);
  const e = await get(`${people()}/entities/${uuid}`);
  t.is(e.body.conflict, 'soft');
  t.like(e.body.currentVersion, { version: 3, baseVersion: 1, label: 'Kendall R.', conflictingProperties: [], data: { full_name: 'Ken Roy' } });
});

test.serial('an offline branch arriving out of order is held, then applied in branch order without conflict', async (t) => {
  const uuid = await createPerson('Connor Roy');
  const second = updateXml('update-offline-branch-2-of-2.xml', uuid);
  const first = updateXml('update-offline-branch-1-of-2.xml', uuid);
  await submit(f.server, f.dana.token, f.projectA, updateForm, second);
  t.is((await get(`${people()}/entities/${uuid}`)).body.currentVersion.version, 1);
  const held = await f.server.sql.query('select * from app_private.entity_submission_backlog where entity_uuid = $1', [uuid]);
  t.is(held.rowCount, 1);
  await submit(f.server, f.dana.token, f.projectA, updateForm, first);
  const e = await get(`${people()}/entities/${uuid}`);
  t.is(e.body.conflict, null);
  t.like(e.body.currentVersion, { version: 3, baseVersion: 2, branchBaseVersion: 2, trunkVersion: 1, label: 'Rome Roy' });
  const versions = (await get(`${people()}/entities/${uuid}/versions`)).body;
  t.deepEqual(versions.map((v: any) => [v.version, v.baseVersion, v.branchBaseVersion, v.label, v.conflict]),
    [[1, null, null, 'Connor Roy', null], [2, 1, 1, 'Romulus Roy', null], [3, 2, 2, 'Rome Roy', null]]);
  t.is((await f.server.sql.query('select * from app_private.entity_submission_backlog where entity_uuid = $1', [uuid])).rowCount, 0);
  const actions = (await f.server.sql.query(`select action from app_public.audits where action like 'submission.backlog.%' order by id`)).rows.map((r) => r.action);
  t.deepEqual(actions, ['submission.backlog.hold', 'submission.backlog.reprocess']);
});

test.serial('a held update whose predecessor never arrives is force-processed after 5 days by the scheduled job', async (t) => {
  const uuid = await createPerson('Logan Roy');
  await submit(f.server, f.dana.token, f.projectA, updateForm, updateXml('update-offline-branch-2-of-2.xml', uuid));
  await f.server.sql.query(`select app_hidden.process_entity_backlog()`);
  t.is((await get(`${people()}/entities/${uuid}`)).body.currentVersion.version, 1, 'not before 5 days');
  await f.server.sql.query(`update app_private.entity_submission_backlog set logged_at = now() - interval '5 days 1 minute' where entity_uuid = $1`, [uuid]);
  await f.server.sql.query(`select graphile_worker.add_job('entities__process_backlog', '{}')`);
  await f.server.drainJobs();
  const e = await get(`${people()}/entities/${uuid}`);
  t.like(e.body.currentVersion, { version: 2, baseVersion: 1, branchBaseVersion: 2, label: 'Rome Roy' });
  t.true((await f.server.sql.query(`select 1 from app_public.audits where action = 'submission.backlog.force'`)).rowCount === 1);
});

test.serial('approvalRequired datasets create entities only when the submission is approved', async (t) => {
  await f.server.request(people(), { method: 'PATCH', token: f.bob.token, body: { approvalRequired: true } });
  const id = newId();
  const entityId = newId();
  const xml = withInstanceId(entitySubmission('entities-2024.1-create-people', 'create.xml'), id)
    .replace('4f3e2d1c-0b9a-4877-a665-544332211009', entityId);
  await submit(f.server, f.dana.token, f.projectA, createForm, xml);
  t.is((await get(`${people()}/entities/${entityId}`)).status, 404);
  const review = await f.server.request(`/v1/projects/${f.projectA}/forms/${createForm}/submissions/uuid:${id}`,
    { method: 'PATCH', token: f.bob.token, body: { reviewState: 'approved' } });
  t.is(review.status, 200, review.text);
  await f.server.drainJobs();
  const e = await get(`${people()}/entities/${entityId}`);
  t.is(e.status, 200);
  t.is(e.body.creatorId, f.dana.id);
  await f.server.request(people(), { method: 'PATCH', token: f.bob.token, body: { approvalRequired: false } });
});

test.serial('one submission creates entities in several lists, including one per repeat instance', async (t) => {
  const form = await publishForm(f.server, f.bob.token, f.projectA, entityForm('entities-2025.1-multi-list-households-members'));
  await submit(f.server, f.dana.token, f.projectA, form,
    entitySubmission('entities-2025.1-multi-list-households-members', 'create-household-with-two-members.xml'));
  const households = await get(`/v1/projects/${f.projectA}/datasets/households/entities/2e1d0c9b-8f7a-4c5d-ae3f-4a2b1c0d9e8f`);
  t.like(households.body.currentVersion, { label: 'HH-042', data: { hhid: 'HH-042', geometry: '-1.292066 36.821946 1680.0 6.4' } });
  const members = await get(`/v1/projects/${f.projectA}/datasets/members/entities`);
  t.deepEqual(members.body.map((m: any) => m.currentVersion.label).sort(), ['Amina Otieno', 'Baraka Otieno']);
  const amina = await get(`/v1/projects/${f.projectA}/datasets/members/entities/0c9b8a7d-6e5f-4a3b-8c1d-2e0f9a8b7c6d`);
  t.deepEqual(amina.body.currentVersion.data, { phone: '+254700000001', hhid: 'HH-042' });
});
