// The typed form_data views DBAs query: one per published form and per repeat, under the viewer's rights.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { withFixtures, type Fixtures } from '../helpers/server.ts';

const forms = path.resolve('../shared/forms');
let f: Fixtures;
let projectId: number;
let otherProjectId: number;

async function post(pathname: string, raw: string, contentType = 'application/xml') {
  const res = await f.server.request(pathname, { method: 'POST', token: f.alice.token, raw, headers: { 'content-type': contentType } });
  if (res.status !== 200) throw new Error(`${pathname}: ${res.status} ${res.text}`);
  return res.body;
}

const typed = (id: string, values: string) => `<data id="all-data-types"><some_string>Hola</some_string>${values}<meta><instanceID>${id}</instanceID></meta></data>`;
const nested = `<data id="nested-repeats"><meta><instanceID>uuid:nest-1</instanceID></meta>
  <g1><t1>a</t1><g2><t2>a.1</t2><g3><t3>a.1.x</t3></g3><g3><t3>a.1.y</t3></g3></g2></g1>
  <g1><t1>b</t1></g1></data>`;

test.before(async () => {
  f = await withFixtures();
  projectId = (await post('/v1/projects', JSON.stringify({ name: 'Views' }), 'application/json')).id;
  otherProjectId = (await post('/v1/projects', JSON.stringify({ name: 'Elsewhere' }), 'application/json')).id;
  for (const [pid, name] of [[projectId, 'datatypes-all-scalar-and-geo'], [projectId, 'repeats-nested-three-levels'], [otherProjectId, 'basic-one-question-v1']] as const) {
    await post(`/v1/projects/${pid}/forms?publish=true`, fs.readFileSync(path.join(forms, `${name}.xml`), 'utf8'));
  }
  await post(`/v1/projects/${projectId}/forms/all-data-types/submissions`, typed('uuid:typed-1',
    '<some_int>123</some_int><some_decimal>123.456</some_decimal><some_date>2018-04-26</some_date><some_date_time>2018-04-26T08:56:00.000Z</some_date_time><some_geopoint>43.3149254 -1.9869671 71.8 15.478</some_geopoint><some_geotrace>43.1 -1.9;43.2 -1.8</some_geotrace>'));
  await post(`/v1/projects/${projectId}/forms/all-data-types/submissions`, typed('uuid:typed-2', '<some_int>not a number</some_int><some_date>soon</some_date>'));
  await post(`/v1/projects/${projectId}/forms/nested-repeats/submissions`, nested);
  await f.server.request(`/v1/projects/${projectId}/assignments/manager/${f.bob.id}`, { method: 'POST', token: f.alice.token });
});
test.after.always(() => f?.server.close());

const asActor = (actorId: number | null, sql: string) =>
  f.server.db.withActor({ actorId }, async (db) => (await db.query(sql)).rows);

test('publishing a form creates a typed view with one column per field', async (t) => {
  const rows = await asActor(f.alice.id, `select * from form_data."p${projectId}_all-data-types" order by "__id"`);
  t.is(rows.length, 2);
  const [first, second] = rows;
  t.is(first.__id, 'uuid:typed-1');
  t.is(first.some_string, 'Hola');
  t.is(first.some_int, 123);
  t.is(first.some_decimal, 123.456);
  t.is(first.some_date.toISOString().slice(0, 10), '2018-04-26');
  t.is(first.some_date_time.toISOString(), '2018-04-26T08:56:00.000Z');
  t.deepEqual(first.some_geopoint, { type: 'Point', coordinates: [-1.9869671, 43.3149254, 71.8] });
  t.deepEqual(first.some_geotrace, { type: 'LineString', coordinates: [[-1.9, 43.1], [-1.8, 43.2]] });
  t.truthy(first.submission_date);
  // Values that do not fit their type read as null instead of breaking the view.
  t.is(second.some_int, null);
  t.is(second.some_date, null);
  const { rows: types } = await f.server.sql.query(`select column_name, data_type from information_schema.columns
    where table_schema = 'form_data' and table_name = $1`, [`p${projectId}_all-data-types`]);
  const type = Object.fromEntries(types.map((c) => [c.column_name, c.data_type]));
  t.like(type, { some_int: 'bigint', some_decimal: 'numeric', some_date: 'date', some_date_time: 'timestamp with time zone', some_geopoint: 'jsonb', some_string: 'text' });
});

test('each repeat gets its own view with keys to its parent', async (t) => {
  const g1 = await asActor(f.alice.id, `select * from form_data."p${projectId}_nested-repeats__g1" order by "__position"`);
  t.deepEqual(g1.map((r) => [r.__id, r.__parent_id, r.t1]), [['uuid:nest-1/1', 'uuid:nest-1', 'a'], ['uuid:nest-1/2', 'uuid:nest-1', 'b']]);
  const g3 = await asActor(f.alice.id, `select * from form_data."p${projectId}_nested-repeats__g1_g2_g3" order by "__position"`);
  t.deepEqual(g3.map((r) => [r.__id, r.__parent_id, r.t3]), [['uuid:nest-1/1/1/1', 'uuid:nest-1/1/1', 'a.1.x'], ['uuid:nest-1/1/1/2', 'uuid:nest-1/1/1', 'a.1.y']]);
});

test('the views follow row-level security: no rights, no rows', async (t) => {
  t.is((await asActor(f.bob.id, `select * from form_data."p${projectId}_all-data-types"`)).length, 2);
  t.deepEqual(await asActor(f.chelsea.id, `select * from form_data."p${projectId}_all-data-types"`), []);
  t.deepEqual(await asActor(null, `select * from form_data."p${projectId}_nested-repeats__g1"`), []);
  t.deepEqual(await asActor(f.bob.id, `select * from form_data."p${otherProjectId}_one_question"`), []);
});

test('a DBA login role mapped to a user reads with that user\'s rights, and cannot write or claim another actor', async (t) => {
  const role = `dba_${process.pid}_${Date.now()}`;
  await f.server.sql.query(`create role ${role} login password 'dba password'`);
  await f.server.sql.query(`select app_public.grant_reader($1, 'bob@getodk.org')`, [role]);
  const url = new URL(f.server.databaseUrl);
  url.username = role;
  url.password = 'dba password';
  const dba = new pg.Client({ connectionString: url.toString() });
  await dba.connect();
  try {
    t.is((await dba.query(`select * from form_data."p${projectId}_all-data-types"`)).rows.length, 2);
    t.is((await dba.query(`select * from form_data."p${otherProjectId}_one_question"`)).rows.length, 0);
    await dba.query(`select set_config('fieldbase.actor_id', $1, false)`, [String(f.alice.id)]);
    t.is((await dba.query(`select * from form_data."p${otherProjectId}_one_question"`)).rows.length, 0, 'setting the actor changes nothing');
    const error = await t.throwsAsync(dba.query(`delete from app_public.submissions`));
    t.is((error as any).code, '42501');
  } finally {
    await dba.end();
    await f.server.sql.query(`drop owned by ${role}; drop role ${role}`);
  }
});

test('a new published version rebuilds the view with its fields', async (t) => {
  const v2 = fs.readFileSync(path.join(forms, 'datatypes-all-scalar-and-geo.xml'), 'utf8')
    .replace('<some_barcode/>', '<some_barcode/><added_later/>')
    .replace(/(<bind nodeset="\/data\/some_barcode"[^>]*>)/, '$1<bind nodeset="/data/added_later" type="int"/>')
    .replace(/id="all-data-types"/, 'id="all-data-types" version="2"');
  await post(`/v1/projects/${projectId}/forms/all-data-types/draft`, v2);
  await post(`/v1/projects/${projectId}/forms/all-data-types/draft/publish`, '', 'application/json');
  const { rows } = await f.server.sql.query(`select column_name from information_schema.columns
    where table_schema = 'form_data' and table_name = $1 and column_name = 'added_later'`, [`p${projectId}_all-data-types`]);
  t.is(rows.length, 1);
});
