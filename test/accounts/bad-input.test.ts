import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';

let f: Fixtures;
test.before(async () => { f = await withFixtures(); });
test.after.always(() => f?.server.close());

test('unparseable JSON is 400.1 with its length', async (t) => {
  const res = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, raw: '{"email": ', headers: { 'content-type': 'application/json' } });
  t.is(res.status, 400);
  t.deepEqual(res.body, { code: 400.1, message: 'Could not parse the given data (10 chars) as json.', details: { format: 'json', rawLength: 10 } });
});

test('a body over the limit is refused with 413 and Central\'s error body', async (t) => {
  const huge = JSON.stringify({ email: 'big@getodk.org', displayName: 'x'.repeat(2 * 1024 * 1024) });
  const res = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, raw: huge, headers: { 'content-type': 'application/json' } });
  t.is(res.status, 413);
  t.deepEqual(res.body, { code: 413.1, message: 'Request body too large.' });
  t.is((await f.server.request('/v1/users/current', { token: f.alice.token })).status, 200, 'the server keeps serving');
});

test('unknown fields are ignored', async (t) => {
  const res = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: { email: 'extra@getodk.org', isAdmin: true, id: 1 } });
  t.is(res.status, 200);
  t.not(res.body.id, 1);
  const me = await f.server.request('/v1/users/current', { token: await f.server.login('alice@getodk.org'), headers: { 'x-extended-metadata': 'true' } });
  t.true(me.body.verbs.length > 0);
});

test('SQL-looking strings are stored as text, never executed', async (t) => {
  const evil = "Robert'); drop table app_public.users; --";
  const res = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: { email: 'bobby@getodk.org', displayName: evil } });
  t.is(res.body.displayName, evil);
  const search = await f.server.request(`/v1/users?q=${encodeURIComponent("' or 1=1 --")}`, { token: f.alice.token });
  t.is(search.status, 200);
  const prefs = await f.server.request(`/v1/user-preferences/site/${encodeURIComponent("x'; drop table y; --")}`, { method: 'PUT', token: f.alice.token, body: { propertyValue: evil } });
  t.is(prefs.status, 200);
  t.true((await f.server.request('/v1/users', { token: f.alice.token })).body.length > 3);
});

test('unknown /v1 routes are 404.1 in Central\'s shape', async (t) => {
  const res = await f.server.request('/v1/nonesuch', { token: f.alice.token });
  t.is(res.status, 404);
  t.deepEqual(res.body, { code: 404.1, message: 'Could not find the resource you were looking for.' });
  t.is((await f.server.request('/v1/users/1/nonesuch', { method: 'POST' })).status, 404);
});

test('a JSON body that is not an object is refused', async (t) => {
  const res = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, raw: '"just a string"', headers: { 'content-type': 'application/json' } });
  t.is(res.status, 400);
});
