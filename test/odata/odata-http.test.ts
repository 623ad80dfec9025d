// OData form services through HTTP: service document, $metadata, data documents with every query option,
// their errors, repeat tables, single-submission paths, drafts, ETags and access control.
import test from 'ava';
import crypto from 'node:crypto';
import { withProjects, type ProjectFixtures } from '../projects/fixtures.ts';
import { createForm, sampleForm, sampleSubmission, submitOpenRosa } from '../submissions/helpers.ts';
import { parseXForm } from '../../server/formats/xform.ts';
import { formSchema, metadataDocument } from '../../server/formats/odata.ts';
import { peopleForm, personXml, submit, type Person } from './helpers.ts';

let f: ProjectFixtures;
let base: string;
const people: Person[] = [
  { id: 'uuid:p1', name: 'Alice', age: 30, birthday: '1994-05-01', seen: '2024-01-01T10:00:00.000+02', location: '1.5 2.5 3 4', size: 4,
    children: [{ name: 'Amy', age: 3 }, { name: 'Ann', age: 5 }] },
  { id: 'uuid:p2', name: 'Bob', age: 45, size: 1 },
  { id: 'uuid:p3', name: 'Chelsea', children: [{ name: 'Cid', age: 7 }] },
  { id: 'uuid:p4', name: 'Dana', age: 22, birthday: '2002-02-02' },
  { id: 'uuid:p5', name: "O'Brien", age: 61, children: [{ name: 'Ola', age: 30 }, { name: 'Oz', age: 28 }, { name: 'Oli', age: 25 }] },
];

test.before(async () => {
  f = await withProjects();
  base = `/v1/projects/${f.projectA}/forms`;
  for (const form of [peopleForm, 'repeats-nested-three-levels', 'datatypes-all-scalar-and-geo', 'selects-choice-lists'])
    await createForm(f.server, f.alice.token, f.projectA, form);
  for (const [i, p] of people.entries()) await submit(f.server, i === 1 ? f.dana.token : f.alice.token, f.projectA, personXml(p));
  for (const [form, file] of [['repeats-nested-three-levels', 'briefcase-export-format.xml'], ['datatypes-all-scalar-and-geo', 'briefcase-export-format.xml'],
    ['selects-choice-lists', 'briefcase-export-format.xml']]) {
    // The nested-repeats sample carries a version its form does not have.
    const xml = sampleSubmission(`${form}/${file}`).toString('utf8').replace(' version="2018012404"', '');
    const res = await submitOpenRosa(f.server, `/v1/projects/${f.projectA}/submission`, xml, { token: f.alice.token });
    if (res.status !== 201) throw new Error(`${form}: ${res.status} ${res.text}`);
  }
});
test.after.always(() => f?.server.close());

const get = (path: string, token: string | null = f.alice.token, headers: Record<string, string> = {}) =>
  f.server.request(path, { token, headers });

test('the service document lists Submissions and the repeat tables, with or without a trailing slash', async (t) => {
  for (const path of [`${base}/people.svc`, `${base}/people.svc/`]) {
    const res = await get(path);
    t.is(res.status, 200);
    t.regex(res.headers.get('content-type')!, /^application\/json; charset=utf-8; odata.metadata=minimal/);
    t.deepEqual(res.body, {
      '@odata.context': `${f.server.url}${base}/people.svc/$metadata`,
      value: [
        { name: 'Submissions', kind: 'EntitySet', url: 'Submissions' },
        { name: 'Submissions.children.child', kind: 'EntitySet', url: 'Submissions.children.child' },
      ],
    });
  }
});

test('$metadata is the EDMX for the published version\'s fields', async (t) => {
  const res = await get(`${base}/nested-repeats.svc/$metadata`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type')!, /^application\/xml/);
  const parsed = parseXForm(sampleForm('repeats-nested-three-levels'));
  t.is(res.text, metadataDocument(parsed.xmlFormId, formSchema(parsed.fields)));
});

test('unknown forms and tables are 404.1; feeds need submission.read (403.1)', async (t) => {
  t.is((await get(`${base}/nope.svc`)).body.code, 404.1);
  t.is((await get(`${base}/people.svc/Submissions.nope`)).status, 404);
  t.is((await get(`${base}/people.svc/Submissions.children`)).status, 404);
  t.is((await get(`/v1/projects/999/forms/people.svc/Submissions`)).status, 404);
  for (const token of [f.eve.token, f.dana.token]) {
    for (const path of ['', '/$metadata', '/Submissions', '/Submissions.children.child']) {
      const res = await get(`${base}/people.svc${path}`, token);
      t.is(res.status, 403, path);
      t.is(res.body.code, 403.1);
    }
  }
  t.is((await get(`${base}/people.svc/Submissions`, null)).status, 403);
  t.is((await get(`${base}/people.svc/Submissions`, f.chelsea.token)).status, 200); // project viewer
});

test('Submissions: every submission, newest first, typed values and __system', async (t) => {
  const res = await get(`${base}/people.svc/Submissions`);
  t.is(res.status, 200);
  t.is(res.body['@odata.context'], `${f.server.url}${base}/people.svc/$metadata#Submissions`);
  t.deepEqual(res.body.value.map((v: any) => v.__id), ['uuid:p5', 'uuid:p4', 'uuid:p3', 'uuid:p2', 'uuid:p1']);
  const alice = res.body.value[4];
  t.like(alice, {
    __id: 'uuid:p1', name: 'Alice', age: 30, birthday: '1994-05-01', seen: '2024-01-01T10:00:00.000+02:00',
    location: { type: 'Point', coordinates: [2.5, 1.5, 3], properties: { accuracy: 4 } },
    household: { size: 4 },
    children: { 'child@odata.navigationLink': "Submissions('uuid%3Ap1')/children/child" },
    meta: { instanceID: 'uuid:p1' },
  });
  t.like(alice.__system, {
    submitterId: String(f.alice.id), submitterName: 'Alice', attachmentsPresent: 0, attachmentsExpected: 0,
    status: null, reviewState: null, edits: 0, formVersion: '1', deletedAt: null, updatedAt: null,
  });
  t.regex(alice.__system.submissionDate, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.is(res.body.value[3].__system.submitterId, String(f.dana.id));
  t.deepEqual(res.body.value[2].household, { size: null });
  t.false('@odata.count' in res.body);
  t.false('@odata.nextLink' in res.body);
});

test('values of every scalar and geo type equal what was submitted, also as WKT', async (t) => {
  const res = await get(`${base}/all-data-types.svc/Submissions?$wkt=true`);
  t.like(res.body.value[0], {
    some_string: 'Hola', some_int: 123, some_decimal: 123.456, some_date: '2018-04-26', some_time: '08:56:00.000Z',
    some_date_time: '2018-04-26T08:56:00.000Z', some_geopoint: 'POINT (-1.9869671 43.3149254 71.80000305175781)',
    some_barcode: '000049499094',
  });
  t.regex(res.body.value[0].some_geotrace, /^LINESTRING \(/);
  const geojson = await get(`${base}/all-data-types.svc/Submissions?$wkt=false`);
  t.deepEqual(geojson.body.value[0].some_geopoint.coordinates, [-1.9869671, 43.3149254, 71.80000305175781]);
});

test('repeat tables: one row per instance with parent keys, across submissions', async (t) => {
  const res = await get(`${base}/people.svc/Submissions.children.child`);
  t.is(res.status, 200);
  t.is(res.body['@odata.context'], `${f.server.url}${base}/people.svc/$metadata#Submissions.children.child`);
  t.deepEqual(res.body.value.map((v: any) => [v['__Submissions-id'], v.child_name, v.child_age]), [
    ['uuid:p5', 'Ola', 30], ['uuid:p5', 'Oz', 28], ['uuid:p5', 'Oli', 25], ['uuid:p3', 'Cid', 7], ['uuid:p1', 'Amy', 3], ['uuid:p1', 'Ann', 5],
  ]);
  const sha1 = (s: string) => crypto.createHash('sha1').update(s).digest('hex');
  t.is(res.body.value[5].__id, sha1('Submissions#uuid:p1%%children#%%child#1'));
});

test('nested repeats: every level, linked by parent keys, and navigation by key', async (t) => {
  const svc = `${base}/nested-repeats.svc`;
  const g1 = (await get(`${svc}/Submissions.g1`)).body.value;
  const g2 = (await get(`${svc}/Submissions.g1.g2`)).body.value;
  const g3 = (await get(`${svc}/Submissions.g1.g2.g3`)).body.value;
  t.deepEqual(g1.map((r: any) => r.t1), ['some text 1', 'some text 2', 'some text 3']);
  t.deepEqual(g2.map((r: any) => r.t2), ['some text 1.1', 'some text 1.2', 'some text 2.1', 'some text 3.1']);
  t.deepEqual(g3.map((r: any) => r.t3), ['some text 1.1.1', 'some text 3.1.1', 'some text 3.1.2', 'some text 3.1.3', 'some text 3.1.4']);
  t.deepEqual(g2.map((r: any) => r['__Submissions-g1-id']), [g1[0].__id, g1[0].__id, g1[1].__id, g1[2].__id]);
  t.true(g3.slice(1).every((r: any) => r['__Submissions-g1-g2-id'] === g2[3].__id));

  // Follow the navigation link of the third g1 instance to its g2 rows, then on to g3.
  const link = g1[2]['g2@odata.navigationLink'];
  const viaLink = await get(`${svc}/${link}`);
  t.is(viaLink.status, 200);
  t.is(viaLink.body['@odata.context'], `${f.server.url}${svc}/$metadata#Submissions.g1.g2`);
  t.deepEqual(viaLink.body.value, [g2[3]]);
  const deeper = await get(`${svc}/${g2[3]['g3@odata.navigationLink']}?$top=2&$count=true`);
  t.deepEqual(deeper.body.value, g3.slice(1, 3));
  t.is(deeper.body['@odata.count'], 4);
  const next = await get(deeper.body['@odata.nextLink'].slice(f.server.url.length));
  t.deepEqual(next.body.value, g3.slice(3, 5));
  t.false('@odata.nextLink' in next.body);
});

test('a single submission by id, and its repeat rows', async (t) => {
  const one = await get(`${base}/people.svc/Submissions('uuid%3Ap1')`);
  t.is(one.status, 200);
  t.is(one.body.value.length, 1);
  t.is(one.body.value[0].name, 'Alice');
  t.is(one.body['@odata.context'], `${f.server.url}${base}/people.svc/$metadata#Submissions`);
  const children = await get(`${base}/people.svc/Submissions('uuid:p1')/children/child`);
  t.deepEqual(children.body.value.map((c: any) => c.child_name), ['Amy', 'Ann']);
  t.is((await get(`${base}/people.svc/Submissions('uuid:nope')`)).status, 404);
});

test('$expand=* nests repeats in Submissions', async (t) => {
  const res = await get(`${base}/people.svc/Submissions?$expand=*&$filter=__id eq 'uuid:p5'`);
  t.deepEqual(res.body.value[0].children.child.map((c: any) => c.child_name), ['Ola', 'Oz', 'Oli']);
  t.is(typeof res.body.value[0].children.child[0].__id, 'string');
});

test('$top, $skip and $count page the feed; nextLink carries a $skiptoken and keeps other options', async (t) => {
  const first = await get(`${base}/people.svc/Submissions?$top=2&$count=true&$select=__id`);
  t.deepEqual(first.body.value, [{ __id: 'uuid:p5' }, { __id: 'uuid:p4' }]);
  t.is(first.body['@odata.count'], 5);
  const next = new URL(first.body['@odata.nextLink']);
  t.is(next.searchParams.get('$top'), '2');
  t.is(next.searchParams.get('$select'), '__id');
  t.regex(next.searchParams.get('$skiptoken')!, /^01/);
  const ids: string[] = first.body.value.map((v: any) => v.__id);
  let link: string | undefined = first.body['@odata.nextLink'];
  while (link) {
    const page = await get(link.slice(f.server.url.length));
    t.is(page.status, 200);
    ids.push(...page.body.value.map((v: any) => v.__id));
    link = page.body['@odata.nextLink'];
  }
  t.deepEqual(ids, ['uuid:p5', 'uuid:p4', 'uuid:p3', 'uuid:p2', 'uuid:p1']);
  const skipped = await get(`${base}/people.svc/Submissions?$skip=3&$select=__id`);
  t.deepEqual(skipped.body.value, [{ __id: 'uuid:p2' }, { __id: 'uuid:p1' }]);
  const beyond = await get(`${base}/people.svc/Submissions?$skip=10&$count=true`);
  t.deepEqual(beyond.body.value, []);
  t.is(beyond.body['@odata.count'], 5);
});

test('pyodk style: percent-encoded option names, + for spaces and Python booleans', async (t) => {
  const res = await get(`${base}/people.svc/Submissions?%24top=1&%24count=True&%24filter=__system%2FsubmitterId+eq+${f.dana.id}&%24wkt=True`);
  t.is(res.status, 200);
  t.is(res.body['@odata.count'], 1);
  t.is(res.body.value[0].__id, 'uuid:p2');
});

test('paging repeat tables with a skiptoken continues after the last row', async (t) => {
  const first = await get(`${base}/people.svc/Submissions.children.child?$top=4`);
  t.is(first.body.value.length, 4);
  const rest = await get(first.body['@odata.nextLink'].slice(f.server.url.length));
  t.deepEqual(rest.body.value.map((v: any) => v.child_name), ['Amy', 'Ann']);
});

test('$filter on __id, __system fields, functions, and form fields (beyond Central)', async (t) => {
  const ids = async (filter: string, table = 'Submissions') => {
    const res = await get(`${base}/people.svc/${table}?$filter=${encodeURIComponent(filter)}`);
    t.is(res.status, 200, `${filter}: ${res.text}`);
    return res.body.value.map((v: any) => (table === 'Submissions' ? v.__id : v.child_name));
  };
  t.deepEqual(await ids("__id eq 'uuid:p3'"), ['uuid:p3']);
  t.deepEqual(await ids(`__system/submitterId eq ${f.dana.id}`), ['uuid:p2']);
  t.deepEqual(await ids(`__system/submitterId ne ${f.dana.id} and __system/reviewState eq null`), ['uuid:p5', 'uuid:p4', 'uuid:p3', 'uuid:p1']);
  t.deepEqual(await ids('year(__system/submissionDate) eq year(now()) and __system/submissionDate lt now()'), ['uuid:p5', 'uuid:p4', 'uuid:p3', 'uuid:p2', 'uuid:p1']);
  t.deepEqual(await ids('__system/submissionDate lt 2000-01-01'), []);
  t.deepEqual(await ids('age gt 40'), ['uuid:p5', 'uuid:p2']);
  t.deepEqual(await ids('age eq null'), ['uuid:p3']);
  t.deepEqual(await ids("name eq 'O''Brien'"), ['uuid:p5']);
  t.deepEqual(await ids('household/size ge 2 or birthday lt 2000-01-01'), ['uuid:p1']);
  t.deepEqual(await ids('year(birthday) eq 2002'), ['uuid:p4']);
  t.deepEqual(await ids('child_age lt 6', 'Submissions.children.child'), ['Amy', 'Ann']);
  t.deepEqual(await ids("$root/Submissions/__id eq 'uuid:p5' and child_age ge 28", 'Submissions.children.child'), ['Ola', 'Oz']);
});

test('repeat tables filter and sort by $root/Submissions/ fields', async (t) => {
  const names = async (q: string) => (await get(`${base}/people.svc/Submissions.children.child?${q}`)).body.value.map((v: any) => v.child_name);
  const p3 = (await get(`${base}/people.svc/Submissions('uuid:p3')`)).body.value[0].__system.submissionDate;
  t.deepEqual(await names(`$filter=${encodeURIComponent(`$root/Submissions/__system/submissionDate ge ${p3}`)}`), ['Ola', 'Oz', 'Oli', 'Cid']);
  t.deepEqual(await names(`$filter=${encodeURIComponent(`$root/Submissions/__system/submissionDate lt ${p3}`)}`), ['Amy', 'Ann']);
  t.deepEqual(await names('$orderby=%24root%2FSubmissions%2F__system%2FsubmissionDate%20asc'), ['Amy', 'Ann', 'Cid', 'Ola', 'Oz', 'Oli']);
  t.deepEqual(await names('$orderby=child_age desc&$top=2'), ['Ola', 'Oz']);
  t.is((await get(`${base}/people.svc/Submissions.children.child?$filter=__system/submitterId eq 1`)).body.code, 501.5);
});

test('the Central frontend\'s table query shape works', async (t) => {
  const filter = `(__system/submissionDate ge 2000-01-01T00:00:00.000Z and __system/submissionDate le 2999-12-31T23:59:59.999Z) and (__system/reviewState eq null or __system/reviewState eq 'hasIssues') and __system/submitterId eq ${f.dana.id}`;
  const res = await get(`${base}/people.svc/Submissions?$top=250&$skip=0&$count=true&$wkt=true`
    + `&$filter=${encodeURIComponent(filter)}&$select=__id,__system,name,location&$orderby=${encodeURIComponent('__system/submissionDate desc')}`);
  t.is(res.status, 200, res.text);
  t.is(res.body['@odata.count'], 1);
  t.deepEqual(Object.keys(res.body.value[0]), ['__id', '__system', 'name', 'location']);
  t.is(res.body.value[0].name, 'Bob');
});

test('$orderby on system and form fields, with directions and ties', async (t) => {
  const ids = async (orderby: string) => (await get(`${base}/people.svc/Submissions?$orderby=${encodeURIComponent(orderby)}&$select=__id`))
    .body.value.map((v: any) => v.__id);
  t.deepEqual(await ids('__system/submissionDate asc'), ['uuid:p1', 'uuid:p2', 'uuid:p3', 'uuid:p4', 'uuid:p5']);
  t.deepEqual(await ids('age desc'), ['uuid:p5', 'uuid:p2', 'uuid:p1', 'uuid:p4', 'uuid:p3']);
  t.deepEqual(await ids('age'), ['uuid:p3', 'uuid:p4', 'uuid:p1', 'uuid:p2', 'uuid:p5']);
  t.deepEqual(await ids(`__system/submitterId DESC, name ASC`), f.dana.id > f.alice.id
    ? ['uuid:p2', 'uuid:p1', 'uuid:p3', 'uuid:p4', 'uuid:p5'] : ['uuid:p1', 'uuid:p3', 'uuid:p4', 'uuid:p5', 'uuid:p2']);
  // Paging through a custom order with skiptokens sees every row once.
  let link: string | undefined = `${base}/people.svc/Submissions?$orderby=age%20desc&$top=2&$select=__id`;
  const seen: string[] = [];
  while (link) {
    const page = await get(link.startsWith('http') ? link.slice(f.server.url.length) : link);
    seen.push(...page.body.value.map((v: any) => v.__id));
    link = page.body['@odata.nextLink'];
  }
  t.deepEqual(seen, ['uuid:p5', 'uuid:p2', 'uuid:p1', 'uuid:p4', 'uuid:p3']);
});

test('$select: fields, groups, __system parts; repeat children and unknown names are rejected', async (t) => {
  const res = await get(`${base}/people.svc/Submissions?$select=name,household,__system/submitterName&$filter=__id eq 'uuid:p1'`);
  t.deepEqual(res.body.value, [{ __system: { submitterName: 'Alice' }, name: 'Alice', household: { size: 4 } }]);
  const unknown = await get(`${base}/people.svc/Submissions?$select=nickname`);
  t.is(unknown.status, 400);
  t.deepEqual(unknown.body, { code: 400.23, message: "Could not find a property named 'nickname'", details: { property: 'nickname' } });
  const inRepeat = await get(`${base}/people.svc/Submissions?$select=children/child/child_name`);
  t.is(inRepeat.body.code, 400.24);
});

test('query option errors are Central\'s problems', async (t) => {
  const svc = `${base}/people.svc/Submissions`;
  const cases: Array<[string, number, number]> = [
    ['$filter=__id eq', 400, 400.18],
    ["$filter=contains(name,'A')", 501, 501.4],
    ['$filter=__system/formVersion eq 1', 501, 501.5],
    ['$filter=__system/submissionDate eq __id', 400, 400.18],
    ['$orderby=nickname', 501, 501.5],
    ['$orderby=__id sideways', 501, 501.5],
    ['$expand=children', 501, 501.6],
    ['$expand=*&$select=name', 501, 501.11],
    ['$skiptoken=nonsense', 400, 400.35],
    [`$skiptoken=01${Buffer.from('{"k":[1]}').toString('base64')}`, 400, 400.35],
    ["$filter=__system/submissionDate gt 'not a date'", 400, 400.11],
  ];
  for (const [q, status, code] of cases) {
    const res = await get(`${svc}?${q.replace(/ /g, '%20')}`);
    t.is(res.status, status, q);
    t.is(res.body.code, code, `${q}: ${res.text}`);
  }
  const single = await get(`${base}/people.svc/Submissions('uuid:p1')/children/child?$skiptoken=01${Buffer.from('{"repeatId":"nope"}').toString('base64')}`);
  t.is(single.body.code, 400.34);
  t.is(single.body.message, 'Record associated with the provided $skiptoken not found.');
});

test.serial('ETags: an unchanged feed answers If-None-Match with 304; a review changes it', async (t) => {
  const url = `${base}/nested-repeats.svc/Submissions?$count=true`;
  const first = await get(url);
  const etag = first.headers.get('etag')!;
  t.truthy(etag);
  const again = await get(url, f.alice.token, { 'if-none-match': etag });
  t.is(again.status, 304);
  t.is(again.text, '');
  t.not((await get(`${base}/nested-repeats.svc/Submissions`)).headers.get('etag'), etag, 'another query, another tag');
  await f.server.db.withActor({ actorId: f.alice.id }, (db) =>
    db.query('select app_public.review_submission($1, $2, $3, $4)', [f.projectA, 'nested-repeats', first.body.value[0].__id, 'approved']));
  const reviewed = await get(url, f.alice.token, { 'if-none-match': etag });
  t.is(reviewed.status, 200);
  t.is(reviewed.body.value[0].__system.reviewState, 'approved');
  const meta = await get(`${base}/people.svc/$metadata`);
  t.is((await get(`${base}/people.svc/$metadata`, f.alice.token, { 'if-none-match': meta.headers.get('etag')! })).status, 304);
});

test.serial('deleted submissions are left out unless the filter asks about deletedAt', async (t) => {
  const url = `${base}/choice-lists.svc/Submissions`;
  const before = await get(url);
  t.is(before.body.value.length, 1);
  const etag = before.headers.get('etag')!;
  await f.server.db.withActor({ actorId: f.alice.id }, (db) =>
    db.query('select app_public.delete_submission($1, $2, $3)', [f.projectA, 'choice-lists', before.body.value[0].__id]));
  const after = await get(url, f.alice.token, { 'if-none-match': etag });
  t.is(after.status, 200);
  t.deepEqual(after.body.value, []);
  const deleted = await get(`${url}?$filter=__system/deletedAt ne null`);
  t.is(deleted.body.value.length, 1);
  t.regex(deleted.body.value[0].__system.deletedAt, /^\d{4}-/);
});

test.serial('the draft service reads the draft\'s schema and test submissions', async (t) => {
  const created = await f.server.request(`/v1/projects/${f.projectA}/forms/people/draft`, { method: 'POST', token: f.alice.token });
  t.is(created.status, 200, created.text);
  const draft = await get(`/v1/projects/${f.projectA}/forms/people/draft`);
  await submit(f.server, f.alice.token, f.projectA, personXml({ id: 'uuid:draft1', name: 'Test' }), draft.body.draftToken);
  const svc = `${base}/people/draft.svc`;
  const doc = await get(svc);
  t.is(doc.body['@odata.context'], `${f.server.url}${svc}/$metadata`);
  const data = await get(`${svc}/Submissions`);
  t.deepEqual(data.body.value.map((v: any) => v.__id), ['uuid:draft1']);
  t.is((await get(`${svc}/$metadata`)).status, 200);
  t.is((await get(`${base}/nested-repeats/draft.svc/Submissions`)).status, 404);
});
