import test from 'ava';
import { withFixtures, defaultPassword, type Fixtures } from '../helpers/server.ts';

let f: Fixtures;
test.before(async () => { f = await withFixtures(); });
test.after.always(() => f?.server.close());

const userKeys = ['createdAt', 'deletedAt', 'displayName', 'email', 'id', 'lastLoginAt', 'type', 'updatedAt'];

test('an administrator lists every user with Central\'s user shape', async (t) => {
  const res = await f.server.request('/v1/users', { token: f.alice.token });
  t.is(res.status, 200);
  t.true(res.body.length >= 3);
  t.deepEqual(Object.keys(res.body[0]).sort(), userKeys);
  t.true(res.body.every((u: any) => u.type === 'user'));
});

test('listing users as a user without user.list returns [] but finds an exact email', async (t) => {
  t.deepEqual((await f.server.request('/v1/users', { token: f.chelsea.token })).body, []);
  const exact = await f.server.request('/v1/users?q=bob%40getodk.org', { token: f.chelsea.token });
  t.is(exact.body.length, 1);
  t.is(exact.body[0].email, 'bob@getodk.org');
  t.deepEqual((await f.server.request('/v1/users?q=bob', { token: f.chelsea.token })).body, []);
});

test('anonymous listing of users is forbidden', async (t) => {
  t.is((await f.server.request('/v1/users')).status, 403);
});

test('an administrator searches users by similarity with q', async (t) => {
  const res = await f.server.request('/v1/users?q=chelsea', { token: f.alice.token });
  t.is(res.body[0].email, 'chelsea@getodk.org');
});

test('creating a user with a password makes it usable at once and sends a welcome email', async (t) => {
  const res = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: { email: 'david@getodk.org', password: 'a long enough pw' } });
  t.is(res.status, 200);
  t.is(res.body.email, 'david@getodk.org');
  t.is(res.body.displayName, 'david@getodk.org');
  t.is(res.body.lastLoginAt, null);
  t.truthy(await f.server.login('david@getodk.org', 'a long enough pw'));
  await f.server.drainJobs();
  const { rows } = await f.server.sql.query(`select * from app_private.mail_log where recipient = 'david@getodk.org'`);
  t.is(rows.length, 1);
  t.is(rows[0].subject, 'ODK Central account created');
});

test('creating a user without a password emails a claim link that sets the password', async (t) => {
  const res = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: { email: 'emma@getodk.org' } });
  t.is(res.status, 200);
  await f.server.drainJobs();
  const { rows: [mail] } = await f.server.sql.query(`select body from app_private.mail_log where recipient = 'emma@getodk.org'`);
  const token = decodeURIComponent(/token=([^\s]+)/.exec(mail.body)![1]);
  const verify = await f.server.request('/v1/users/reset/verify', { method: 'POST', token, body: { new: 'emma chose this' } });
  t.is(verify.status, 200);
  t.truthy(await f.server.login('emma@getodk.org', 'emma chose this'));
  // The token is single use.
  t.is((await f.server.request('/v1/users/reset/verify', { method: 'POST', token, body: { new: 'and again this' } })).status, 401);
});

test('creating a user needs user.create, an email, a long enough password and a unique email', async (t) => {
  const denied = await f.server.request('/v1/users', { method: 'POST', token: f.chelsea.token, body: { email: 'x@getodk.org' } });
  t.is(denied.status, 403);
  t.is(denied.body.code, 403.1);
  const missing = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: {} });
  t.is(missing.status, 400);
  t.deepEqual(missing.body, { code: 400.2, message: 'Required parameter email missing.', details: { field: 'email' } });
  const short = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: { email: 'y@getodk.org', password: 'short' } });
  t.is(short.body.code, 400.21);
  const duplicate = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: { email: 'BOB@getodk.org' } });
  t.is(duplicate.status, 409);
  t.is(duplicate.body.code, 409.3);
  t.regex(duplicate.body.message, /email value\(s\) of BOB@getodk.org/);
  const invalid = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: { email: 'not an email' } });
  t.is(invalid.status, 400);
  const wrongType = await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: { email: 42 } });
  t.is(wrongType.body.code, 400.11);
});

test('users read themselves, administrators read anyone, others get 403.1; unknown ids 404.1', async (t) => {
  t.is((await f.server.request(`/v1/users/${f.chelsea.id}`, { token: f.chelsea.token })).body.email, 'chelsea@getodk.org');
  t.is((await f.server.request(`/v1/users/${f.chelsea.id}`, { token: f.alice.token })).status, 200);
  t.is((await f.server.request(`/v1/users/${f.bob.id}`, { token: f.chelsea.token })).status, 403);
  t.is((await f.server.request('/v1/users/99999', { token: f.alice.token })).status, 404);
  t.is((await f.server.request('/v1/users/abc', { token: f.alice.token })).body.code, 404.1);
});

test('users update their own display name and email; not other users\'', async (t) => {
  const id = await f.server.createUser('frank@getodk.org');
  const token = await f.server.login('frank@getodk.org');
  const res = await f.server.request(`/v1/users/${id}`, { method: 'PATCH', token, body: { displayName: 'Frank', email: 'frank2@getodk.org' } });
  t.is(res.status, 200);
  t.is(res.body.displayName, 'Frank');
  t.is(res.body.email, 'frank2@getodk.org');
  t.truthy(res.body.updatedAt);
  t.is((await f.server.request(`/v1/users/${f.bob.id}`, { method: 'PATCH', token, body: { displayName: 'X' } })).status, 403);
  const { rows } = await f.server.sql.query(`select details from app_public.audits where action = 'user.update' and actor_id = $1`, [id]);
  t.deepEqual(rows[0].details, { data: { email: 'frank2@getodk.org', displayName: 'Frank' } });
});

test('changing a password needs the old one; the new one works and an email is sent', async (t) => {
  const id = await f.server.createUser('gina@getodk.org');
  const token = await f.server.login('gina@getodk.org');
  const wrongOld = await f.server.request(`/v1/users/${id}/password`, { method: 'PUT', token, body: { old: 'wrong', new: 'a brand new password' } });
  t.is(wrongOld.status, 401);
  const tooShort = await f.server.request(`/v1/users/${id}/password`, { method: 'PUT', token, body: { old: defaultPassword, new: 'short' } });
  t.is(tooShort.body.code, 400.21);
  const ok = await f.server.request(`/v1/users/${id}/password`, { method: 'PUT', token, body: { old: defaultPassword, new: 'a brand new password' } });
  t.deepEqual(ok.body, { success: true });
  t.truthy(await f.server.login('gina@getodk.org', 'a brand new password'));
  await f.server.drainJobs();
  const { rows } = await f.server.sql.query(`select * from app_private.mail_log where recipient = 'gina@getodk.org' and template = 'passwordChanged'`);
  t.is(rows.length, 1);
});

test('a password reset emails a token; invalidating needs user.password.invalidate', async (t) => {
  await f.server.createUser('hana@getodk.org');
  const res = await f.server.request('/v1/users/reset/initiate', { method: 'POST', body: { email: 'hana@getodk.org' } });
  t.deepEqual(res.body, { success: true });
  const unknown = await f.server.request('/v1/users/reset/initiate', { method: 'POST', body: { email: 'nobody@getodk.org' } });
  t.deepEqual(unknown.body, { success: true });
  const denied = await f.server.request('/v1/users/reset/initiate?invalidate=true', { method: 'POST', token: f.chelsea.token, body: { email: 'hana@getodk.org' } });
  t.is(denied.status, 403);
  t.truthy(await f.server.login('hana@getodk.org'), 'a refused invalidation changes nothing');
  const invalidated = await f.server.request('/v1/users/reset/initiate?invalidate=true', { method: 'POST', token: f.alice.token, body: { email: 'hana@getodk.org' } });
  t.is(invalidated.status, 200);
  t.is((await f.server.request('/v1/sessions', { method: 'POST', body: { email: 'hana@getodk.org', password: defaultPassword } })).status, 401);
  await f.server.drainJobs();
  const { rows } = await f.server.sql.query(`select template from app_private.mail_log where recipient in ('hana@getodk.org', 'nobody@getodk.org') order by id`);
  // Jobs run concurrently, so mails are logged in any order.
  t.deepEqual(rows.map((r) => r.template).filter((x) => x !== 'accountCreatedWithPassword').sort(), ['accountReset', 'accountReset', 'accountResetDeleted']);
});

test('deleting a user needs user.delete, ends their sessions and frees the email', async (t) => {
  const id = await f.server.createUser('ivan@getodk.org');
  const token = await f.server.login('ivan@getodk.org');
  t.is((await f.server.request(`/v1/users/${id}`, { method: 'DELETE', token: f.chelsea.token })).status, 403);
  t.deepEqual((await f.server.request(`/v1/users/${id}`, { method: 'DELETE', token: f.alice.token })).body, { success: true });
  t.is((await f.server.request('/v1/users/current', { token })).status, 401);
  t.is((await f.server.request(`/v1/users/${id}`, { token: f.alice.token })).status, 404);
  t.false((await f.server.request('/v1/users', { token: f.alice.token })).body.some((u: any) => u.id === id));
  t.is((await f.server.request('/v1/users', { method: 'POST', token: f.alice.token, body: { email: 'ivan@getodk.org' } })).status, 200);
});

test('users/current with extended metadata lists server-wide verbs and preferences', async (t) => {
  await f.server.request('/v1/user-preferences/site/projectSortMode', { method: 'PUT', token: f.alice.token, body: { propertyValue: 'latest' } });
  const res = await f.server.request('/v1/users/current', { token: f.alice.token, headers: { 'x-extended-metadata': 'true' } });
  t.true(res.body.verbs.includes('user.create'));
  t.true(res.body.verbs.includes('project.create'));
  t.deepEqual(res.body.preferences, { site: { projectSortMode: 'latest' }, projects: {} });
  const plain = await f.server.request('/v1/users/current', { token: f.chelsea.token, headers: { 'x-extended-metadata': 'true' } });
  t.deepEqual(plain.body.verbs, []);
});
