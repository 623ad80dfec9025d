// The OData service of a dataset (…/datasets/people.svc): service document, Central's EDMX, and the Entities data
// document with $top/$skip/$count/$skiptoken/$filter/$orderby/$select/$search, read also by a real OData client
// (odatajs) with HTTP Basic; 403 for actors without entity.list.
import test from 'ava';
import * as odatajs from 'ts-odatajs';
import { defaultPassword } from '../helpers/server.ts';
import { entityForm, publishForm, withProjects, type ProjectFixtures } from './helpers.ts';

let f: ProjectFixtures;
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const svc = () => `/v1/projects/${f.projectA}/datasets/people.svc`;
const get = (path: string, token: string | null = f.bob.token) => f.server.request(path, { token });
const ids = (res: { body: any }) => res.body.value.map((e: any) => e.__id);

test.before(async () => {
  f = await withProjects();
  await publishForm(f.server, f.bob.token, f.projectA, entityForm('entities-2024.1-create-people'));
  await f.server.request(`/v1/projects/${f.projectA}/datasets/people/properties`, { method: 'POST', token: f.bob.token, body: { name: 'home.town' } });
  // Five people, created in order 1..5 (Alice made the fifth); the third is deleted; the second was updated once.
  for (let n = 1; n <= 5; n++) {
    const token = n === 5 ? f.alice.token : f.bob.token;
    const data = n === 1 ? { full_name: `Person ${n}` } : { full_name: `Person ${n}`, 'home.town': n % 2 ? 'Nairobi' : 'Lima' };
    const res = await f.server.request(`/v1/projects/${f.projectA}/datasets/people/entities`, { method: 'POST', token,
      body: { uuid: uuid(n), label: `Label ${n}`, data } });
    if (res.status !== 200) throw new Error(res.text);
  }
  await f.server.request(`/v1/projects/${f.projectA}/datasets/people/entities/${uuid(2)}?baseVersion=1`, { method: 'PATCH', token: f.bob.token,
    body: { data: { full_name: 'Person Two' } } });
  await f.server.request(`/v1/projects/${f.projectA}/datasets/people/entities/${uuid(3)}`, { method: 'DELETE', token: f.bob.token });
});
test.after.always(() => f?.server.close());

test('the service document lists Entities', async (t) => {
  const res = await get(svc());
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type')!, /^application\/json; charset=utf-8; odata\.metadata=minimal/);
  t.is(res.headers.get('odata-version'), '4.0');
  t.deepEqual(res.body, { '@odata.context': `${f.server.url}${svc()}/$metadata`, value: [{ name: 'Entities', kind: 'EntitySet', url: 'Entities' }] });
});

test('$metadata is Central\'s EDMX for entities: __id, __system metadata, label, properties by OData name', async (t) => {
  const res = await get(`${svc()}/$metadata`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type')!, /^application\/xml/);
  t.regex(res.text, /<Schema xmlns="http:\/\/docs.oasis-open.org\/odata\/ns\/edm" Namespace="org.opendatakit.entity">\s*<ComplexType Name="metadata">\s*<Property Name="createdAt" Type="Edm.DateTimeOffset"\/>\s*<Property Name="creatorId" Type="Edm.String"\/>/);
  t.regex(res.text, /<EntityType Name="Entities">\s*<Key><PropertyRef Name="__id"\/><\/Key>\s*<Property Name="__id" Type="Edm.String"\/>\s*<Property Name="__system" Type="org.opendatakit.entity.metadata"\/>\s*<Property Name="label" Type="Edm.String"\/>\s*<Property Name="full_name" Type="Edm.String"\/>\s*<Property Name="home_town" Type="Edm.String"\/>/);
  t.regex(res.text, /<EntityContainer Name="people">\s*<EntitySet Name="Entities" EntityType="org.opendatakit.user.people.Entities">/);
  t.regex(res.text, /<PropertyPath>full_name<\/PropertyPath>\s*<PropertyPath>home_town<\/PropertyPath>/);
});

test('Entities: live entities newest first, with Central\'s __system and every property', async (t) => {
  const res = await get(`${svc()}/Entities`);
  t.is(res.status, 200);
  t.deepEqual(ids(res), [uuid(5), uuid(4), uuid(2), uuid(1)]);
  t.is(res.body['@odata.context'], `${f.server.url}${svc()}/$metadata#Entities`);
  const two = res.body.value[2];
  t.deepEqual(Object.keys(two), ['__id', 'label', '__system', 'full_name', 'home_town']);
  t.like(two, { __id: uuid(2), label: 'Label 2', full_name: 'Person Two', home_town: 'Lima' });
  t.like(two.__system, { creatorId: String(f.bob.id), creatorName: 'Bob', updates: 1, version: 2, conflict: null, deletedAt: null });
  t.truthy(two.__system.createdAt);
  t.truthy(two.__system.updatedAt);
  t.is(res.body.value[3].home_town, null);
  t.like(res.body.value[0].__system, { creatorId: String(f.alice.id), creatorName: 'Alice', updates: 0, version: 1, updatedAt: null });
});

test('$top, $skip, $count and $skiptoken page through the entities', async (t) => {
  const first = await get(`${svc()}/Entities?$top=2&$count=true`);
  t.deepEqual(ids(first), [uuid(5), uuid(4)]);
  t.is(first.body['@odata.count'], 4);
  const next = new URL(first.body['@odata.nextLink']);
  t.is(next.pathname, `${svc()}/Entities`);
  t.regex(next.search, /\$skiptoken=01/);
  const second = await get(next.pathname + next.search);
  t.deepEqual(ids(second), [uuid(2), uuid(1)]);
  t.is(second.body['@odata.nextLink'], undefined);
  t.deepEqual(ids(await get(`${svc()}/Entities?$skip=3`)), [uuid(1)]);
  t.deepEqual(ids(await get(`${svc()}/Entities?$top=0&$count=true`)), []);
  t.is((await get(`${svc()}/Entities?$skiptoken=nope`)).body.code, 400.35);
});

test('$filter on __id, __system fields and (beyond Central) label and properties; deleted ones only when asked', async (t) => {
  const filter = async (expr: string) => ids(await get(`${svc()}/Entities?$filter=${encodeURIComponent(expr)}`));
  t.deepEqual(await filter(`__id eq '${uuid(4)}'`), [uuid(4)]);
  t.deepEqual(await filter(`__system/creatorId eq ${f.alice.id}`), [uuid(5)]);
  t.deepEqual(await filter('__system/version gt 1'), [uuid(2)]);
  t.deepEqual(await filter('__system/updatedAt eq null and year(__system/createdAt) ge 2020'), [uuid(5), uuid(4), uuid(1)]);
  t.deepEqual(await filter('__system/conflict eq null and not (label eq \'Label 1\')'), [uuid(5), uuid(4), uuid(2)]);
  t.deepEqual(await filter('home_town eq \'Nairobi\''), [uuid(5)]);
  t.deepEqual(await filter('__system/deletedAt ne null'), [uuid(3)]);
  const unknown = await get(`${svc()}/Entities?$filter=${encodeURIComponent('nope eq 1')}`);
  t.is(unknown.status, 501);
  t.is(unknown.body.code, 501.5);
  t.is((await get(`${svc()}/Entities?$filter=${encodeURIComponent('__id eq')}`)).body.code, 400.18);
});

test('$orderby, $select and $search', async (t) => {
  t.deepEqual(ids(await get(`${svc()}/Entities?$orderby=__system/createdAt asc`)), [uuid(1), uuid(2), uuid(4), uuid(5)]);
  t.deepEqual(ids(await get(`${svc()}/Entities?$orderby=home_town desc,__system/createdAt asc`)), [uuid(5), uuid(2), uuid(4), uuid(1)]);
  // Paging keeps a custom order.
  const page = await get(`${svc()}/Entities?$orderby=__system/createdAt asc&$top=3`);
  const next = new URL(page.body['@odata.nextLink']);
  t.deepEqual(ids(await get(next.pathname + next.search)), [uuid(5)]);

  const selected = await get(`${svc()}/Entities?$select=__id,label,__system/creatorId,home_town&$top=1`);
  t.deepEqual(selected.body.value, [{ __id: uuid(5), label: 'Label 5', __system: { creatorId: String(f.alice.id) }, home_town: 'Nairobi' }]);
  const bad = await get(`${svc()}/Entities?$select=nope`);
  t.is(bad.status, 400);
  t.is(bad.body.code, 400.23);

  t.deepEqual(ids(await get(`${svc()}/Entities?$search=Lima`)), [uuid(4), uuid(2)]);
  t.deepEqual(ids(await get(`${svc()}/Entities?$search=${encodeURIComponent('Lima -Two')}`)), [uuid(4)]);
  t.deepEqual(ids(await get(`${svc()}/Entities?$search=${encodeURIComponent('"Label 1"')}`)), [uuid(1)]);
});

test('who may read the feed: viewers yes; data collectors, other managers and anonymous callers 403; unknown 404', async (t) => {
  t.is((await get(`${svc()}/Entities`, f.chelsea.token)).status, 200);
  for (const token of [f.dana.token, f.eve.token, null]) {
    const res = await get(`${svc()}/Entities`, token);
    t.is(res.status, 403);
    t.is(res.body.code, 403.1);
    t.is((await get(`${svc()}/$metadata`, token)).status, 403);
  }
  t.is((await get(`/v1/projects/${f.projectA}/datasets/nobody.svc`)).status, 404);
  t.is((await get(`${svc()}/Nope`)).status, 404);
  // The dataset's own routes are not confused with the service.
  t.is((await get(`/v1/projects/${f.projectA}/datasets/people`)).body.name, 'people');
});

test('ETags: an unchanged feed answers If-None-Match with 304; new versions, deletions, properties and the query change it', async (t) => {
  // A dataset of its own, so the changes here do not touch the other tests' entities.
  const ds = `/v1/projects/${f.projectA}/datasets`;
  const write = (path: string, method: string, body?: unknown) => f.server.request(`${ds}/places${path}`, { method, token: f.bob.token, body });
  t.is((await f.server.request(ds, { method: 'POST', token: f.bob.token, body: { name: 'places' } })).status, 200);
  t.is((await write('/properties', 'POST', { name: 'region' })).status, 200);
  t.is((await write('/entities', 'POST', { uuid: uuid(101), label: 'Place 1', data: { region: 'North' } })).status, 200);
  const url = `${ds}/places.svc/Entities?$count=true`;
  const cached = (etag: string) => f.server.request(url, { token: f.bob.token, headers: { 'if-none-match': etag } });

  const first = await get(url);
  t.is(first.status, 200);
  const etag = first.headers.get('etag')!;
  t.regex(etag, /^W\/"[0-9a-f]{40}"$/);
  const again = await cached(etag);
  t.is(again.status, 304);
  t.is(again.text, '');
  t.is(again.headers.get('etag'), etag);
  t.is((await f.server.request(url, { token: f.bob.token, headers: { 'if-none-match': `"nope", ${etag}` } })).status, 304);
  t.not((await get(`${ds}/places.svc/Entities`)).headers.get('etag'), etag, 'another query, another tag');

  t.is((await write(`/entities/${uuid(101)}?baseVersion=1`, 'PATCH', { data: { region: 'South' } })).status, 200);
  const updated = await cached(etag);
  t.is(updated.status, 200);
  t.is(updated.body.value[0].region, 'South');
  const afterUpdate = updated.headers.get('etag')!;
  t.not(afterUpdate, etag);
  t.is((await cached(afterUpdate)).status, 304);

  t.is((await write(`/entities/${uuid(101)}`, 'DELETE')).status, 200);
  const deleted = await cached(afterUpdate);
  t.is(deleted.status, 200);
  t.deepEqual(deleted.body.value, []);
  const afterDelete = deleted.headers.get('etag')!;

  t.is((await write('/properties', 'POST', { name: 'altitude' })).status, 200);
  t.is((await cached(afterDelete)).status, 200, 'a new property is a new column');

  const bad = await f.server.request(`${ds}/places.svc/Entities?$select=nope`, { token: f.bob.token, headers: { 'if-none-match': etag } });
  t.is(bad.status, 400);
  t.not(bad.headers.get('etag'), etag, 'an error is no version of the feed');
});

////////////////////////////////////////////////////////////////////////////////
// A real OData client

const basic = (email: string) => `Basic ${Buffer.from(`${email}:${defaultPassword}`).toString('base64')}`;

function read(requestUri: string, options: { handler?: unknown; metadata?: unknown; email?: string } = {}): Promise<any> {
  return new Promise((resolve, reject) => {
    odatajs.oData.read({ requestUri, headers: { Authorization: basic(options.email ?? 'bob@getodk.org'), Accept: 'application/json' } } as any,
      (data: any) => resolve(data),
      (err: any) => reject(Object.assign(new Error(err.message), { response: err.response })),
      options.handler as any, undefined, options.metadata as any);
  });
}

test('an OData client reads the service, parses $metadata and reads the entities as stored', async (t) => {
  const service = await read(`${f.server.url}${svc()}`);
  t.deepEqual(service.value.map((s: any) => s.name), ['Entities']);
  const metadata = await read(`${f.server.url}${svc()}/$metadata`, { handler: odatajs.oData.metadataHandler });
  const [system, user] = metadata.dataServices.schema;
  t.is(system.namespace, 'org.opendatakit.entity');
  t.deepEqual(system.complexType[0].property.map((p: any) => p.name),
    ['createdAt', 'creatorId', 'creatorName', 'updates', 'updatedAt', 'version', 'conflict', 'deletedAt']);
  t.is(user.entityType[0].name, 'Entities');
  t.deepEqual(user.entityType[0].key.propertyRef.map((r: any) => r.name), ['__id']);
  t.deepEqual(user.entityType[0].property.map((p: any) => p.name), ['__id', '__system', 'label', 'full_name', 'home_town']);

  const rows: any[] = [];
  let next: string | undefined = `${f.server.url}${svc()}/Entities?$top=3&$count=true`;
  while (next) {
    const data = await read(next, { metadata });
    if (rows.length === 0) t.is(data['@odata.count'], 4);
    rows.push(...data.value);
    next = data['@odata.nextLink'];
  }
  t.deepEqual(rows.map((r) => [r.__id, r.label, r.full_name, r.home_town]), [
    [uuid(5), 'Label 5', 'Person 5', 'Nairobi'], [uuid(4), 'Label 4', 'Person 4', 'Lima'],
    [uuid(2), 'Label 2', 'Person Two', 'Lima'], [uuid(1), 'Label 1', 'Person 1', null]]);
  t.is(rows[2].__system.version, 2);
  t.is(rows[2].__system.creatorName, 'Bob');
});

test('an OData client sees 403 for an actor without access', async (t) => {
  const err = await t.throwsAsync(read(`${f.server.url}${svc()}/Entities`, { email: 'eve@getodk.org' }));
  t.is((err as any).response.statusCode, 403);
});
