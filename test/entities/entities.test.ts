import test from 'ava';
import { withProjects, type ProjectFixtures } from './helpers.ts';

let f: ProjectFixtures;
let ds: string;
test.before(async () => {
  f = await withProjects();
  ds = `/v1/projects/${f.projectA}/datasets/people`;
  await f.server.request(`/v1/projects/${f.projectA}/datasets`, { method: 'POST', token: f.bob.token, body: { name: 'people' } });
  for (const name of ['first_name', 'age', 'geometry'])
    await f.server.request(`${ds}/properties`, { method: 'POST', token: f.bob.token, body: { name } });
});
test.after.always(() => f?.server.close());

const req = (path: string, token: string | null, method = 'GET', body?: unknown, headers?: Record<string, string>) =>
  f.server.request(path, { method, token, body, headers });
const uuid = (n: number) => `12345678-1234-4123-8234-${String(n).padStart(12, '0')}`;

test.serial('creating an entity returns Central\'s Entity shape with version 1', async (t) => {
  const res = await req(`${ds}/entities`, f.bob.token, 'POST', { uuid: uuid(1), label: 'John Doe (22)', data: { first_name: 'John', age: '22' } },
    { 'user-agent': 'FieldbaseTest/1.0' });
  t.is(res.status, 200, res.text);
  t.deepEqual(Object.keys(res.body).sort(), ['conflict', 'createdAt', 'creatorId', 'currentVersion', 'deletedAt', 'updatedAt', 'uuid']);
  t.like(res.body, { uuid: uuid(1), creatorId: f.bob.id, conflict: null, updatedAt: null, deletedAt: null });
  t.deepEqual(res.body.currentVersion, {
    label: 'John Doe (22)', current: true, createdAt: res.body.currentVersion.createdAt, creatorId: f.bob.id, userAgent: 'FieldbaseTest/1.0',
    version: 1, baseVersion: null, branchId: null, trunkVersion: null, branchBaseVersion: null, conflictingProperties: null,
    data: { first_name: 'John', age: '22' }, dataReceived: { first_name: 'John', age: '22', label: 'John Doe (22)' },
  });
  const ext = await req(`${ds}/entities/${uuid(1)}`, f.chelsea.token, 'GET', undefined, { 'x-extended-metadata': 'true' });
  t.is(ext.body.creator.displayName, 'Bob');
  t.is(ext.body.currentVersion.creator.id, f.bob.id);
  const audits = await req(`${ds}/entities/${uuid(1)}/audits`, f.bob.token);
  t.deepEqual(audits.body.map((a: any) => a.action), ['entity.create']);
  t.like(audits.body[0].details, { entity: { uuid: uuid(1), dataset: 'people' } });
});

test.serial('entity bodies are validated as Central does', async (t) => {
  const post = (body: unknown) => req(`${ds}/entities`, f.bob.token, 'POST', body);
  t.is((await post({ data: { first_name: 'x' } })).body.code, 400.2);
  t.is((await post({ label: '  ', data: {} })).body.code, 400.8);
  t.deepEqual((await post({ label: 'x', data: { nope: 'x' } })).body, { code: 400.28,
    message: 'The entity is invalid. You specified the dataset property [nope] which does not exist.',
    details: { reason: 'You specified the dataset property [nope] which does not exist.' } });
  t.is((await post({ label: 'x', data: { age: 3 } })).body.code, 400.11);
  t.is((await post({ label: 'x', uuid: 'not-a-uuid', data: {} })).body.code, 400.11);
  t.is((await post({ label: 'x', data: {}, extra: 1 })).body.code, 400.31);
  await post({ uuid: uuid(2), label: 'Two', data: {} });
  const dup = await post({ uuid: uuid(2), label: 'Two again', data: {} });
  t.is(dup.status, 409);
  t.is(dup.body.code, 409.3);
});

test.serial('bulk creation makes every entity or none, audited once with its source', async (t) => {
  const entities = [10, 11, 12].map((n) => ({ uuid: uuid(n), label: `Bulk ${n}`, data: { age: String(n) } }));
  const failed = await req(`${ds}/entities`, f.bob.token, 'POST', { entities: [...entities, { label: 'bad', data: { nope: '1' } }], source: { name: 'people.csv' } });
  t.is(failed.body.code, 400.28);
  t.is((await req(`${ds}/entities/${uuid(10)}`, f.bob.token)).status, 404);
  t.is((await req(`${ds}/entities`, f.bob.token, 'POST', { entities })).body.code, 400.2);
  const ok = await req(`${ds}/entities`, f.bob.token, 'POST', { entities, source: { name: 'people.csv', size: 100 } });
  t.deepEqual(ok.body, { success: true });
  t.is((await req(`${ds}/entities/${uuid(11)}`, f.bob.token)).body.currentVersion.label, 'Bulk 11');
  const { rows } = await f.server.sql.query(`select a.details, s.details as source from app_public.audits a
    join app_public.entity_def_sources s on s.id = (a.details->>'sourceId')::bigint where a.action = 'entity.bulk.create'`);
  t.is(rows.length, 1);
  t.like(rows[0].source, { name: 'people.csv', size: 100, count: 3 });
  t.true((await req(`${ds}/entities/${uuid(12)}/audits`, f.bob.token)).body.some((a: any) => a.action === 'entity.bulk.create'));
});

test.serial('updates need the current baseVersion or force; versions and diffs record every change', async (t) => {
  await req(`${ds}/entities`, f.bob.token, 'POST', { uuid: uuid(20), label: 'Amy (38)', data: { first_name: 'Amy', age: '38' } });
  t.deepEqual((await req(`${ds}/entities/${uuid(20)}`, f.bob.token, 'PATCH', { data: { age: '39' } })).body.code, 400.2);
  const stale = await req(`${ds}/entities/${uuid(20)}?baseVersion=3`, f.bob.token, 'PATCH', { data: { age: '39' } });
  t.is(stale.status, 409);
  t.deepEqual(stale.body, { code: 409.15, details: { current: 1, provided: 3 },
    message: 'Current version of the Entity is \'1\' and you provided \'3\'. Please correct the version number or pass \'?force=true\' in the URL to forcefully update the Entity.' });
  const v2 = await req(`${ds}/entities/${uuid(20)}?baseVersion=1`, f.bob.token, 'PATCH', { label: 'Amy (39)', data: { age: '39' } });
  t.is(v2.status, 200, v2.text);
  t.like(v2.body.currentVersion, { version: 2, baseVersion: 1, label: 'Amy (39)', data: { first_name: 'Amy', age: '39' },
    dataReceived: { age: '39', label: 'Amy (39)' } });
  t.truthy(v2.body.updatedAt);
  const v3 = await req(`${ds}/entities/${uuid(20)}?force=true`, f.bob.token, 'PATCH', { data: { first_name: 'Amelia' } });
  t.like(v3.body.currentVersion, { version: 3, baseVersion: 2, label: 'Amy (39)' });
  t.is((await req(`${ds}/entities/${uuid(20)}?force=true&resolve=true`, f.bob.token, 'PATCH', {})).body.code, 400.32);
  const versions = await req(`${ds}/entities/${uuid(20)}/versions`, f.chelsea.token);
  t.deepEqual(versions.body.map((v: any) => [v.version, v.current, v.conflict, v.lastGoodVersion, v.baseDiff, v.serverDiff]),
    [[1, false, null, false, [], []], [2, false, null, false, ['age', 'label'], ['age', 'label']], [3, true, null, true, ['first_name'], ['first_name']]]);
  t.deepEqual((await req(`${ds}/entities/${uuid(20)}/versions?relevantToConflict=true`, f.chelsea.token)).body, []);
  t.deepEqual((await req(`${ds}/entities/${uuid(20)}/diffs`, f.chelsea.token)).body, [
    [{ old: '38', new: '39', propertyName: 'age' }, { old: 'Amy (38)', new: 'Amy (39)', propertyName: 'label' }],
    [{ old: 'Amy', new: 'Amelia', propertyName: 'first_name' }],
  ]);
  t.is((await req(`${ds}/entities/${uuid(20)}?force=true`, f.chelsea.token, 'PATCH', { data: { age: '1' } })).status, 403);
});

test.serial('entities are deleted and restored, singly and in bulk; deleted uuids cannot be reused', async (t) => {
  for (const n of [30, 31, 32]) await req(`${ds}/entities`, f.bob.token, 'POST', { uuid: uuid(n), label: `E${n}`, data: {} });
  t.deepEqual((await req(`${ds}/entities/${uuid(30)}`, f.bob.token, 'DELETE')).body, { success: true });
  t.is((await req(`${ds}/entities/${uuid(30)}`, f.bob.token)).status, 404);
  const deletedList = await req(`${ds}/entities?deleted=true`, f.bob.token);
  t.true(deletedList.body.some((e: any) => e.uuid === uuid(30) && e.deletedAt !== null));
  const reuse = await req(`${ds}/entities`, f.bob.token, 'POST', { uuid: uuid(30), label: 'again', data: {} });
  t.is(reuse.body.code, 409.19);
  t.deepEqual(reuse.body.details, { entityUuids: [uuid(30)] });
  t.deepEqual((await req(`${ds}/entities/${uuid(30)}/restore`, f.bob.token, 'POST')).body, { success: true });
  t.is((await req(`${ds}/entities/${uuid(30)}`, f.bob.token)).status, 200);
  t.is((await req(`${ds}/entities/${uuid(30)}/restore`, f.bob.token, 'POST')).status, 404);
  // Bulk: all or nothing.
  t.is((await req(`${ds}/entities/bulk-delete`, f.bob.token, 'POST', { ids: [uuid(31), uuid(99)] })).status, 404);
  t.is((await req(`${ds}/entities/${uuid(31)}`, f.bob.token)).status, 200);
  t.deepEqual((await req(`${ds}/entities/bulk-delete`, f.bob.token, 'POST', { ids: [uuid(31), uuid(32)] })).body, { success: true });
  t.deepEqual((await req(`${ds}/entities/bulk-restore`, f.bob.token, 'POST', { ids: [uuid(31), uuid(32)] })).body, { success: true });
  const actions = (await f.server.sql.query(`select action from app_public.audits where action like 'entity.%delete' or action like 'entity.%restore' order by id`)).rows.map((r) => r.action);
  t.deepEqual(actions, ['entity.delete', 'entity.restore', 'entity.bulk.delete', 'entity.bulk.restore']);
  t.is((await req(`${ds}/entities/${uuid(31)}`, f.chelsea.token, 'DELETE')).status, 403);
  // Purged 30 days after deletion; the uuid stays unusable.
  await req(`${ds}/entities/${uuid(32)}`, f.bob.token, 'DELETE');
  await f.server.sql.query(`update app_public.entities set deleted_at = now() - interval '31 days' where uuid = $1`, [uuid(32)]);
  await f.server.drainJobs();
  await f.server.sql.query('select app_hidden.purge_entities()');
  t.is((await req(`${ds}/entities?deleted=true`, f.bob.token)).body.filter((e: any) => e.uuid === uuid(32)).length, 0);
  t.is((await req(`${ds}/entities`, f.bob.token, 'POST', { uuid: uuid(32), label: 'again', data: {} })).body.code, 409.19);
  const integrity = await req(`/v1/projects/${f.projectA}/datasets/people/integrity?id=${uuid(31)},${uuid(32)}`, f.bob.token);
  t.is(integrity.status, 200);
  t.regex(integrity.text, new RegExp(`<entity id="${uuid(31)}">\\s*<deleted>false</deleted>`));
  t.regex(integrity.text, new RegExp(`<entity id="${uuid(32)}">\\s*<deleted>true</deleted>`));
});

test.serial('entities.csv streams name, label, properties and system columns, with $filter, $search and ETag', async (t) => {
  await req(`${ds}/entities`, f.bob.token, 'POST', { uuid: uuid(40), label: 'Zed "Z" Zed', data: { first_name: 'Zed', geometry: '1.5 2.5 3 4' } });
  const csv = await req(`${ds}/entities.csv`, f.chelsea.token);
  t.is(csv.status, 200);
  const lines = csv.text.trim().split('\n');
  t.is(lines[0], '__id,label,first_name,age,geometry,__createdAt,__creatorId,__creatorName,__updates,__updatedAt,__version');
  t.true(lines.some((l) => l.startsWith(`${uuid(40)},"Zed ""Z"" Zed",Zed,,1.5 2.5 3 4,`) && l.endsWith(`,${f.bob.id},Bob,0,,1`)), lines.join("\n"));
  const etag = csv.headers.get('etag')!;
  t.is((await req(`${ds}/entities.csv`, f.chelsea.token, 'GET', undefined, { 'if-none-match': etag })).status, 304);
  t.is((await req(`${ds}/entities.csv?$search=zed`, f.chelsea.token, 'GET', undefined, { 'if-none-match': etag })).status, 200, 'another query, another version');
  await req(`${ds}/entities/${uuid(40)}?force=true`, f.bob.token, 'PATCH', { label: 'Zed "Z" Zed' });
  const changed = await req(`${ds}/entities.csv`, f.chelsea.token, 'GET', undefined, { 'if-none-match': etag });
  t.is(changed.status, 200, 'a new entity version changes the ETag');
  t.not(changed.headers.get('etag'), etag);
  const searched = await req(`${ds}/entities.csv?$search=zed`, f.chelsea.token);
  t.is(searched.text.trim().split('\n').length, 2);
  const filtered = await req(`${ds}/entities.csv?$filter=${encodeURIComponent(`__id eq '${uuid(40)}'`)}`, f.chelsea.token);
  t.is(filtered.text.trim().split('\n').length, 2);
  t.is((await req(`${ds}/entities.csv?$filter=${encodeURIComponent(`__system/conflict eq 'hard'`)}`, f.chelsea.token)).text.trim().split('\n').length, 1);
  const geo = await req(`${ds}/entities/${uuid(40)}/geojson`, f.chelsea.token);
  t.deepEqual(geo.body, { type: 'FeatureCollection', features: [{ type: 'Feature', id: uuid(40), properties: null, geometry: { type: 'Point', coordinates: [2.5, 1.5, 3] } }] });
  const all = await req(`${ds}/entities.geojson`, f.chelsea.token);
  t.is(all.body.features.length, 1);
  const creators = await req(`${ds}/entities/creators`, f.chelsea.token);
  t.deepEqual(creators.body.map((a: any) => a.displayName), ['Bob']);
});

test.serial('entity permissions: viewers read, data collectors, other managers and anonymous may not', async (t) => {
  await req(`${ds}/entities`, f.alice.token, 'POST', { uuid: uuid(50), label: 'By admin', data: {} });
  t.is((await req(`${ds}/entities/${uuid(50)}`, f.chelsea.token)).status, 200);
  t.is((await req(`${ds}/entities`, f.chelsea.token, 'POST', { label: 'x', data: {} })).status, 403);
  for (const token of [f.dana.token, f.eve.token, null, f.appUser.token]) {
    t.is((await req(`${ds}/entities`, token)).status, 403);
    t.is((await req(`${ds}/entities/${uuid(50)}`, token)).status, 403);
    t.is((await req(`${ds}/entities.csv`, token)).status, 403);
  }
});
