// A real OData v4 client (Apache Olingo's odatajs) reads the service document, parses $metadata, and reads
// data for forms with groups, nested repeats, geo fields and select-multiples, authenticating with HTTP
// Basic like Excel and Power BI. The values must equal what was submitted.
import test from 'ava';
import * as odatajs from 'ts-odatajs';
import { withProjects, type ProjectFixtures } from '../projects/fixtures.ts';
import { defaultPassword } from '../helpers/server.ts';
import { createForm, sampleSubmission, submitOpenRosa } from '../submissions/helpers.ts';
import { peopleForm, personXml, submit } from './helpers.ts';

let f: ProjectFixtures;
let svc: (form: string) => string;
const basic = (email: string) => `Basic ${Buffer.from(`${email}:${defaultPassword}`).toString('base64')}`;

test.before(async () => {
  f = await withProjects();
  svc = (form) => `${f.server.url}/v1/projects/${f.projectA}/forms/${form}.svc`;
  for (const form of [peopleForm, 'repeats-nested-three-levels', 'datatypes-all-scalar-and-geo', 'selects-choice-lists'])
    await createForm(f.server, f.alice.token, f.projectA, form);
  await submit(f.server, f.alice.token, f.projectA, personXml({ id: 'uuid:c1', name: 'Ada', age: 36, location: '-1.5 36.8 1700 5',
    size: 3, children: [{ name: 'Bo', age: 4 }, { name: 'Cy', age: 9 }] }));
  for (const form of ['repeats-nested-three-levels', 'datatypes-all-scalar-and-geo', 'selects-choice-lists']) {
    const xml = sampleSubmission(`${form}/briefcase-export-format.xml`).toString('utf8').replace(' version="2018012404"', '');
    const res = await submitOpenRosa(f.server, `/v1/projects/${f.projectA}/submission`, xml, { token: f.alice.token });
    if (res.status !== 201) throw new Error(`${form}: ${res.status} ${res.text}`);
  }
});
test.after.always(() => f?.server.close());

interface Read { data: any; response: any }

/** The values without the client's type annotations (`@odata.type`, `x@odata.type`). */
function plain(value: any): any {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k]) => !k.endsWith('@odata.type')).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function read(requestUri: string, options: { handler?: unknown; metadata?: unknown; email?: string } = {}): Promise<Read> {
  return new Promise((resolve, reject) => {
    odatajs.oData.read({ requestUri, headers: { Authorization: basic(options.email ?? 'alice@getodk.org'), Accept: 'application/json' } } as any,
      (data: any, response: any) => resolve({ data, response }),
      (err: any) => reject(Object.assign(new Error(err.message), { response: err.response })),
      options.handler as any, undefined, options.metadata as any);
  });
}

const readMetadata = async (form: string) =>
  (await read(`${svc(form)}/$metadata`, { handler: odatajs.oData.metadataHandler })).data;

test('the client reads the service document', async (t) => {
  const { data } = await read(svc('nested-repeats'));
  t.deepEqual(data.value.map((s: any) => s.name), ['Submissions', 'Submissions.g1', 'Submissions.g1.g2', 'Submissions.g1.g2.g3']);
  t.true(data.value.every((s: any) => s.kind === 'EntitySet' && s.url === s.name));
});

test('the client parses $metadata: entity types, keys, complex types, navigation and types', async (t) => {
  const metadata = await readMetadata('people');
  const [system, user] = metadata.dataServices.schema;
  t.is(system.namespace, 'org.opendatakit.submission');
  t.deepEqual(system.complexType[0].property.map((p: any) => p.name), ['submissionDate', 'updatedAt', 'deletedAt', 'submitterId',
    'submitterName', 'attachmentsPresent', 'attachmentsExpected', 'status', 'reviewState', 'deviceId', 'edits', 'formVersion']);
  t.is(user.namespace, 'org.opendatakit.user.people');
  const [submissions, child] = user.entityType;
  t.is(submissions.name, 'Submissions');
  t.deepEqual(submissions.key.propertyRef.map((r: any) => r.name), ['__id']);
  const types = Object.fromEntries(submissions.property.map((p: any) => [p.name, p.type]));
  t.deepEqual(types, {
    __id: 'Edm.String', __system: 'org.opendatakit.submission.metadata', name: 'Edm.String', age: 'Edm.Int64',
    birthday: 'Edm.Date', seen: 'Edm.DateTimeOffset', location: 'Edm.GeographyPoint',
    household: 'org.opendatakit.user.people.household', children: 'org.opendatakit.user.people.children',
    meta: 'org.opendatakit.user.people.meta',
  });
  t.is(child.name, 'Submissions.children.child');
  t.deepEqual(child.property.map((p: any) => p.name), ['__id', '__Submissions-id', 'child_name', 'child_age']);
  const children = user.complexType.find((c: any) => c.name === 'children');
  t.deepEqual(children.navigationProperty, [{ name: 'child', type: 'Collection(org.opendatakit.user.people.Submissions.children.child)' }]);
  t.deepEqual(user.entityContainer.entitySet.map((s: any) => s.name), ['Submissions', 'Submissions.children.child']);
  t.is(user.entityContainer.name, 'people');
});

test('the client reads submissions with groups, geo and a repeat inside a group', async (t) => {
  const metadata = await readMetadata('people');
  const { data } = await read(`${svc('people')}/Submissions?$count=true`, { metadata });
  t.is(data['@odata.count'], 1);
  // The client typed the values by the metadata it parsed.
  t.is(data.value[0]['age@odata.type'], '#Int64');
  t.is(data.value[0]['seen@odata.type'], '#DateTimeOffset');
  t.is(data.value[0].household['@odata.type'], '#org.opendatakit.user.people.household');
  const [ada] = plain(data.value);
  t.is(ada.__id, 'uuid:c1');
  t.is(ada.name, 'Ada');
  t.is(ada.age, 36);
  t.deepEqual(ada.household, { size: 3 });
  t.deepEqual(ada.location.coordinates, [36.8, -1.5, 1700]);
  t.is(ada.__system.submitterName, 'Alice');
  const link = ada.children['child@odata.navigationLink'];
  const { data: children } = await read(`${svc('people')}/${link}`, { metadata });
  t.deepEqual(plain(children.value).map((c: any) => [c.child_name, c.child_age, c['__Submissions-id']]), [['Bo', 4, 'uuid:c1'], ['Cy', 9, 'uuid:c1']]);
});

test('the client reads every scalar and geo type as submitted', async (t) => {
  const { data } = await read(`${svc('all-data-types')}/Submissions`, { metadata: await readMetadata('all-data-types') });
  t.is(data.value[0]['some_geopoint@odata.type'] ?? data.value[0].some_geopoint['@odata.type'], '#Edm.GeographyPoint');
  const [row] = plain(data.value);
  t.is(row.some_string, 'Hola');
  t.is(row.some_int, 123);
  t.is(row.some_decimal, 123.456);
  t.is(row.some_barcode, '000049499094');
  t.is(row.some_time, '08:56:00.000Z');
  t.deepEqual(row.some_geopoint, { type: 'Point', coordinates: [-1.9869671, 43.3149254, 71.80000305175781], properties: { accuracy: 15.478 } });
  t.is(row.some_geotrace.type, 'LineString');
  t.deepEqual(row.some_geotrace.coordinates[0], [-1.9869713, 43.314926, 71.80000305175781]);
  t.is(row.some_geoshape.type, 'Polygon');
  t.is(row.some_geoshape.coordinates[0].length, 5);
  const wkt = await read(`${svc('all-data-types')}/Submissions?$wkt=true&$select=some_geopoint`);
  t.deepEqual(wkt.data.value, [{ some_geopoint: 'POINT (-1.9869671 43.3149254 71.80000305175781)' }]);
});

test('the client reads select multiples and groups', async (t) => {
  const { data } = await read(`${svc('choice-lists')}/Submissions`);
  t.like(data.value[0], { some_string: 'CHOICE_1', another_string: 'CHOICE_2', some_group: { yet_another_string: 'CHOICE_1' } });
});

test('the client walks nested repeat tables page by page through nextLink', async (t) => {
  const metadata = await readMetadata('nested-repeats');
  const rows: any[] = [];
  let next: string | undefined = `${svc('nested-repeats')}/Submissions.g1.g2.g3?$top=2`;
  let pages = 0;
  while (next) {
    const { data } = await read(next, { metadata });
    rows.push(...data.value);
    next = data['@odata.nextLink'];
    pages += 1;
  }
  t.is(pages, 3);
  t.deepEqual(rows.map((r) => r.t3), ['some text 1.1.1', 'some text 3.1.1', 'some text 3.1.2', 'some text 3.1.3', 'some text 3.1.4']);
  const { data: g2 } = await read(`${svc('nested-repeats')}/Submissions.g1.g2`, { metadata });
  t.is(rows[1]['__Submissions-g1-g2-id'], g2.value[3].__id);
});

test('the client sees 403 for an actor without access', async (t) => {
  const err = await t.throwsAsync(read(`${svc('people')}/Submissions`, { email: 'eve@getodk.org' }));
  t.is((err as any).response.statusCode, 403);
});
