import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';

let f: Fixtures;
test.before(async () => { f = await withFixtures(); });
test.after.always(() => f?.server.close());

const gql = (query: string, token?: string) =>
  f.server.request('/v1/graphql', { method: 'POST', token, body: { query } });

test('an administrator queries users through GraphQL', async (t) => {
  const res = await gql('{ allUsers { nodes { email actorId } } }', f.alice.token);
  t.is(res.status, 200, res.text);
  const emails = res.body.data.allUsers.nodes.map((u: any) => u.email).sort();
  t.deepEqual(emails, ['alice@getodk.org', 'bob@getodk.org', 'chelsea@getodk.org']);
});

test('GraphQL runs under row-level security: a plain user sees only themselves, anonymous nothing', async (t) => {
  const mine = await gql('{ allUsers { nodes { email } } }', f.chelsea.token);
  t.deepEqual(mine.body.data.allUsers.nodes, [{ email: 'chelsea@getodk.org' }]);
  const anonymous = await gql('{ allUsers { nodes { email } } allAudits { totalCount } }');
  t.deepEqual(anonymous.body.data.allUsers.nodes, []);
  t.is(anonymous.body.data.allAudits.totalCount, 0);
});

test('GraphQL is read-only: there are no mutations', async (t) => {
  const res = await gql('{ __schema { mutationType { name } } }', f.alice.token);
  t.is(res.body.data.__schema.mutationType, null);
});

test('secrets are not in the GraphQL schema', async (t) => {
  const res = await gql('{ __schema { types { name } } }', f.alice.token);
  const names = res.body.data.__schema.types.map((x: any) => x.name);
  t.false(names.some((n: string) => /Password|Session(?!Info)/.test(n)), names.filter((n: string) => /Password|Session/.test(n)).join());
});

test('GraphQL authenticates like every /v1 route: a bad token is 401.2', async (t) => {
  const res = await gql('{ allUsers { nodes { email } } }', 'not-a-token');
  t.is(res.status, 401);
  t.is(res.body.code, 401.2);
});

test('projects, forms, versions and submissions with their structured data are readable under RLS', async (t) => {
  const post = (path: string, raw: string, contentType: string) =>
    f.server.request(path, { method: 'POST', token: f.alice.token, raw, headers: { 'content-type': contentType } });
  const project = (await post('/v1/projects', JSON.stringify({ name: 'GraphQL' }), 'application/json')).body.id;
  const form = `<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"><h:head><h:title>G</h:title>
    <model><instance><data id="gql"><name/><meta><instanceID/></meta></data></instance>
    <bind nodeset="/data/name" type="string"/></model></h:head><h:body><input ref="/data/name"/></h:body></h:html>`;
  t.is((await post(`/v1/projects/${project}/forms?publish=true`, form, 'application/xml')).status, 200);
  t.is((await post(`/v1/projects/${project}/forms/gql/submissions`,
    '<data id="gql"><name>Ada</name><meta><instanceID>uuid:gql-1</instanceID></meta></data>', 'application/xml')).status, 200);
  const query = `{ allProjects { nodes { name } } allForms { nodes { xmlFormId } } allFormDefs { totalCount }
                   allSubmissionDefs { nodes { instanceId data } } }`;
  const admin = (await gql(query, f.alice.token)).body.data;
  t.true(admin.allProjects.nodes.some((p: any) => p.name === 'GraphQL'));
  t.true(admin.allForms.nodes.some((x: any) => x.xmlFormId === 'gql'));
  t.true(admin.allFormDefs.totalCount >= 1);
  const sub = admin.allSubmissionDefs.nodes.find((s: any) => s.instanceId === 'uuid:gql-1');
  t.is(sub.data.name, 'Ada');
  const outsider = (await gql(query, f.chelsea.token)).body.data;
  t.deepEqual(outsider.allProjects.nodes, []);
  t.deepEqual(outsider.allForms.nodes, []);
  t.deepEqual(outsider.allSubmissionDefs.nodes, []);
});

test('datasets and entities are readable under RLS', async (t) => {
  const json = (path: string, body: unknown) => f.server.request(path, { method: 'POST', token: f.alice.token, body });
  const project = (await json('/v1/projects', { name: 'GraphQL entities' })).body.id;
  t.is((await json(`/v1/projects/${project}/datasets`, { name: 'trees' })).status, 200);
  t.is((await json(`/v1/projects/${project}/datasets/trees/properties`, { name: 'species' })).status, 200);
  t.is((await json(`/v1/projects/${project}/datasets/trees/entities`, { label: 'Oak by the gate', data: { species: 'oak' } })).status, 200);
  const query = '{ allDatasets { nodes { name } } allEntities { nodes { uuid } } allEntityDefs { nodes { label data } } }';
  const admin = (await gql(query, f.alice.token)).body.data;
  t.true(admin.allDatasets.nodes.some((d: any) => d.name === 'trees'));
  t.is(admin.allEntities.nodes.length, 1);
  t.deepEqual(admin.allEntityDefs.nodes.map((d: any) => [d.label, d.data.species]), [['Oak by the gate', 'oak']]);
  const outsider = (await gql(query, f.chelsea.token)).body.data;
  t.deepEqual([outsider.allDatasets.nodes, outsider.allEntities.nodes, outsider.allEntityDefs.nodes], [[], [], []]);
});
