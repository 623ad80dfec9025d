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
