import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';

let f: Fixtures;
test.before(async () => {
  f = await withFixtures();
  await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: { email: 'audited@getodk.org' },
    headers: { 'x-action-notes': encodeURIComponent('onboarding the new hire') } });
});
test.after.always(() => f?.server.close());

test('administrators read the audit log newest first in Central\'s shape', async (t) => {
  const res = await f.server.request('/v1/audits', { token: f.alice.token });
  t.is(res.status, 200);
  t.deepEqual(Object.keys(res.body[0]).sort(), ['acteeId', 'action', 'actorId', 'details', 'loggedAt', 'notes']);
  const times = res.body.map((a: any) => Date.parse(a.loggedAt));
  t.deepEqual(times, [...times].sort((a, b) => b - a));
});

test('X-Action-Notes is stored on the request\'s audit rows', async (t) => {
  const res = await f.server.request('/v1/audits?action=user.create', { token: f.alice.token });
  const created = res.body.find((a: any) => a.details.data.email === 'audited@getodk.org');
  t.is(created.notes, 'onboarding the new hire');
  t.is(created.actorId, f.alice.id);
});

test('the user category filter returns only user actions', async (t) => {
  const res = await f.server.request('/v1/audits?action=user', { token: f.alice.token });
  t.true(res.body.length > 0);
  t.true(res.body.every((a: any) => a.action.startsWith('user.') && !a.action.startsWith('user.preference')));
  t.true(res.body.some((a: any) => a.action === 'user.session.create'));
});

test('start is inclusive, end exclusive, and limit/offset page', async (t) => {
  const all = (await f.server.request('/v1/audits', { token: f.alice.token })).body;
  const newest = all[0].loggedAt;
  const untilNewest = (await f.server.request(`/v1/audits?end=${encodeURIComponent(newest)}`, { token: f.alice.token })).body;
  t.false(untilNewest.some((a: any) => a.loggedAt === newest));
  const fromNewest = (await f.server.request(`/v1/audits?start=${encodeURIComponent(newest)}`, { token: f.alice.token })).body;
  t.true(fromNewest.every((a: any) => a.loggedAt === newest));
  const page = (await f.server.request('/v1/audits?limit=2&offset=1', { token: f.alice.token })).body;
  t.deepEqual(page, all.slice(1, 3));
  t.deepEqual((await f.server.request('/v1/audits?start=2000-01-01z&end=2000-01-02z', { token: f.alice.token })).body, []);
});

test('extended metadata expands actor and actee', async (t) => {
  const res = await f.server.request('/v1/audits?action=user.create', { token: f.alice.token, headers: { 'x-extended-metadata': 'true' } });
  const created = res.body.find((a: any) => a.details.data.email === 'audited@getodk.org');
  t.is(created.actor.displayName, 'Alice');
  t.is(created.actee.displayName, 'audited@getodk.org');
  t.is(created.actee.type, 'user');
});

test('only audit.read may read the log', async (t) => {
  t.is((await f.server.request('/v1/audits', { token: f.chelsea.token })).status, 403);
  t.is((await f.server.request('/v1/audits')).status, 403);
});

test('bad filter values are refused with a clear error', async (t) => {
  t.is((await f.server.request('/v1/audits?start=yesterday', { token: f.alice.token })).status, 400);
  t.is((await f.server.request('/v1/audits?limit=ten', { token: f.alice.token })).body.code, 400.11);
});
