import test from 'ava';
import { withProjects, type ProjectFixtures } from './helpers.ts';

let f: ProjectFixtures;
test.before(async () => { f = await withProjects(); });
test.after.always(() => f?.server.close());

const req = (path: string, token: string | null, method = 'GET', body?: unknown) =>
  f.server.request(path, { method, token, body });

test('a manager creates a dataset and sees Central\'s metadata shape; listings show it', async (t) => {
  const created = await req(`/v1/projects/${f.projectA}/datasets`, f.bob.token, 'POST', { name: 'trees', approvalRequired: true });
  t.is(created.status, 200);
  t.like(created.body, { name: 'trees', projectId: f.projectA, approvalRequired: true, ownerOnly: false, accessFilter: null,
    sourceForms: [], linkedForms: [], properties: [] });
  t.truthy(created.body.lastUpdate);
  const list = await req(`/v1/projects/${f.projectA}/datasets`, f.chelsea.token);
  t.deepEqual(Object.keys(list.body.find((d: any) => d.name === 'trees')).sort(),
    ['accessFilter', 'approvalRequired', 'createdAt', 'name', 'ownerOnly', 'projectId']);
  const ext = await f.server.request(`/v1/projects/${f.projectA}/datasets`, { token: f.chelsea.token, headers: { 'x-extended-metadata': 'true' } });
  t.like(ext.body.find((d: any) => d.name === 'trees'), { name: 'trees', entities: 0, conflicts: 0, lastEntity: null });
  const audit = await f.server.sql.query(`select 1 from app_public.audits a join app_public.datasets d on d.actee_id = a.actee_id
    where a.action = 'dataset.create' and d.name = 'trees'`);
  t.is(audit.rowCount, 1);
});

test('dataset names are unique per project regardless of case, and must be valid', async (t) => {
  await req(`/v1/projects/${f.projectA}/datasets`, f.bob.token, 'POST', { name: 'People' });
  const same = await req(`/v1/projects/${f.projectA}/datasets`, f.bob.token, 'POST', { name: 'People' });
  t.is(same.status, 409);
  t.deepEqual(same.body, { code: 409.3, message: `A resource already exists with name,projectId value(s) of People,${f.projectA}.`,
    details: { fields: ['name', 'projectId'], values: ['People', f.projectA] } });
  const cased = await req(`/v1/projects/${f.projectA}/datasets`, f.bob.token, 'POST', { name: 'people' });
  t.is(cased.body.code, 409.16);
  t.deepEqual(cased.body.details, { current: 'People', provided: 'people' });
  t.is((await req(`/v1/projects/${f.projectA}/datasets`, f.bob.token, 'POST', { name: '__system' })).body.code, 400.8);
  t.is((await req(`/v1/projects/${f.projectA}/datasets`, f.bob.token, 'POST', {})).body.code, 400.2);
  // Another project may reuse the name.
  t.is((await req(`/v1/projects/${f.projectB}/datasets`, f.eve.token, 'POST', { name: 'People' })).status, 200);
});

test('PATCH changes approvalRequired, ownerOnly and accessFilter, and validates them', async (t) => {
  await req(`/v1/projects/${f.projectA}/datasets`, f.bob.token, 'POST', { name: 'households' });
  const owner = await req(`/v1/projects/${f.projectA}/datasets/households`, f.bob.token, 'PATCH', { ownerOnly: true });
  t.like(owner.body, { ownerOnly: true, accessFilter: { type: 'ownerOnly' } });
  const filter = { type: 'property', rules: [{ datasetProperty: 'state', actorProperty: 'region' }] };
  const prop = await req(`/v1/projects/${f.projectA}/datasets/households`, f.bob.token, 'PATCH', { accessFilter: filter, approvalRequired: true });
  t.like(prop.body, { ownerOnly: false, approvalRequired: true, accessFilter: filter });
  const cleared = await req(`/v1/projects/${f.projectA}/datasets/households`, f.bob.token, 'PATCH', { accessFilter: null });
  t.is(cleared.body.accessFilter, null);
  t.is((await req(`/v1/projects/${f.projectA}/datasets/households`, f.bob.token, 'PATCH', { approvalRequired: 'yes' })).body.code, 400.11);
  t.is((await req(`/v1/projects/${f.projectA}/datasets/households`, f.bob.token, 'PATCH', { accessFilter: { type: 'x' } })).body.code, 400.8);
  t.is((await req(`/v1/projects/${f.projectA}/datasets/households`, f.chelsea.token, 'PATCH', { ownerOnly: true })).status, 403);
});

test('properties are added once (any case), listed with odataName, and deleted only when empty', async (t) => {
  await req(`/v1/projects/${f.projectA}/datasets`, f.bob.token, 'POST', { name: 'plots' });
  t.deepEqual((await req(`/v1/projects/${f.projectA}/datasets/plots/properties`, f.bob.token, 'POST', { name: 'the.age' })).body, { success: true });
  t.is((await req(`/v1/projects/${f.projectA}/datasets/plots/properties`, f.bob.token, 'POST', { name: 'THE.AGE' })).body.code, 409.3);
  t.is((await req(`/v1/projects/${f.projectA}/datasets/plots/properties`, f.bob.token, 'POST', { name: 'label' })).body.code, 400.8);
  const meta = await req(`/v1/projects/${f.projectA}/datasets/plots`, f.chelsea.token);
  t.like(meta.body.properties[0], { name: 'the.age', odataName: 'the_age', forms: [] });
  await req(`/v1/projects/${f.projectA}/datasets/plots/entities`, f.bob.token, 'POST',
    { uuid: '12345678-1234-4123-8234-123456789abc', label: 'Plot 1', data: { 'the.age': '3' } });
  const blocked = await req(`/v1/projects/${f.projectA}/datasets/plots/properties/the.age`, f.bob.token, 'DELETE');
  t.is(blocked.status, 409);
  t.is(blocked.body.code, 409.22);
  t.deepEqual(blocked.body.details.prerequisites.nonEmptyEntities.details,
    { totalCount: 1, entities: [{ uuid: '12345678-1234-4123-8234-123456789abc', label: 'Plot 1' }] });
  const cleared = await req(`/v1/projects/${f.projectA}/datasets/plots/entities/12345678-1234-4123-8234-123456789abc?force=true`, f.bob.token, 'PATCH',
    { data: { 'the.age': '' } });
  t.is(cleared.status, 200, cleared.text);
  t.deepEqual((await req(`/v1/projects/${f.projectA}/datasets/plots/properties/the.age`, f.bob.token, 'DELETE')).body, { success: true });
  t.deepEqual((await req(`/v1/projects/${f.projectA}/datasets/plots`, f.bob.token)).body.properties, []);
});

test('deleting a dataset trashes it: listed with ?deleted=true and id, entities downloadable from the trash', async (t) => {
  await req(`/v1/projects/${f.projectA}/datasets`, f.bob.token, 'POST', { name: 'wells' });
  await req(`/v1/projects/${f.projectA}/datasets/wells/entities`, f.bob.token, 'POST', { label: 'Well 1', data: {} });
  t.deepEqual((await req(`/v1/projects/${f.projectA}/datasets/wells`, f.bob.token, 'DELETE')).body, { success: true });
  t.is((await req(`/v1/projects/${f.projectA}/datasets/wells`, f.bob.token)).status, 404);
  const deleted = await req(`/v1/projects/${f.projectA}/datasets?deleted=true`, f.bob.token);
  const wells = deleted.body.find((d: any) => d.name === 'wells');
  t.truthy(wells.id);
  t.truthy(wells.deletedAt);
  const csv = await req(`/v1/projects/${f.projectA}/trash/datasets/${wells.id}/entities.csv`, f.bob.token);
  t.is(csv.status, 200);
  t.regex(csv.headers.get('content-disposition')!, /wells-deleted\.csv/);
  t.regex(csv.text, /^__id,label,__createdAt,__creatorId,__creatorName,__updates,__updatedAt,__version\n[0-9a-f-]{36},Well 1,/);
  t.is((await req(`/v1/projects/${f.projectA}/trash/datasets/${wells.id}/entities.csv`, f.eve.token)).status, 403);
  // The name can be used again.
  t.is((await req(`/v1/projects/${f.projectA}/datasets`, f.bob.token, 'POST', { name: 'wells' })).status, 200);
  // After 30 days the trashed dataset and its entities are purged.
  await f.server.sql.query(`update app_public.datasets set deleted_at = now() - interval '31 days' where id = $1`, [wells.id]);
  await f.server.sql.query('select app_hidden.purge_entities()');
  t.is((await f.server.sql.query('select 1 from app_public.datasets where id = $1', [wells.id])).rowCount, 0);
});

test('who may see and change datasets: admin, manager, viewer, data collector, other manager, anonymous', async (t) => {
  const path = `/v1/projects/${f.projectA}/datasets`;
  t.is((await req(path, f.alice.token)).status, 200);
  t.is((await req(path, f.chelsea.token)).status, 200);
  t.is((await req(path, f.dana.token)).status, 403);
  t.is((await req(path, f.eve.token)).status, 403);
  t.is((await req(path, null)).status, 403);
  t.is((await req(path, f.chelsea.token, 'POST', { name: 'viewerMade' })).status, 403);
  t.is((await req(path, f.dana.token, 'POST', { name: 'collectorMade' })).status, 403);
  t.is((await req(`${path}/trees`, f.dana.token)).status, 403);
  t.is((await req(`${path}/nope`, f.alice.token)).status, 404);
  t.is((await req(`/v1/projects/99999/datasets`, f.alice.token)).status, 404);
});
