import test from 'ava';
import { startServer, defaultPassword, type TestServer } from '../helpers/server.ts';

let server: TestServer;
test.before(async () => {
  server = await startServer();
  await server.createUser('alice@getodk.org', { admin: true });
});
test.after.always(() => server?.close());

test('logging in returns a 64-character token, csrf and timestamps 24 hours apart', async (t) => {
  const res = await server.request('/v1/sessions', { method: 'POST', body: { email: 'alice@getodk.org', password: defaultPassword } });
  t.is(res.status, 200);
  t.regex(res.body.token, /^[A-Za-z0-9!$]{64}$/);
  t.is(typeof res.body.csrf, 'string');
  const lifetime = Date.parse(res.body.expiresAt) - Date.parse(res.body.createdAt);
  t.is(Math.round(lifetime / 3600_000), 24);
  t.regex(res.body.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.is(res.headers.get('cache-control'), 'no-store');
  t.regex(res.headers.get('set-cookie') ?? '', /session=.*HttpOnly/);
});

test('a wrong password or unknown email fails with 401.2 and no detail', async (t) => {
  for (const body of [{ email: 'alice@getodk.org', password: 'wrong password!' }, { email: 'nobody@getodk.org', password: defaultPassword }]) {
    const res = await server.request('/v1/sessions', { method: 'POST', body });
    t.is(res.status, 401);
    t.deepEqual(res.body, { code: 401.2, message: 'Could not authenticate with the provided credentials.' });
  }
});

test('missing credentials fail with 400.3', async (t) => {
  const res = await server.request('/v1/sessions', { method: 'POST', body: { email: 'alice@getodk.org' } });
  t.is(res.status, 400);
  t.is(res.body.code, 400.3);
});

test('repeated failed logins for one email are throttled with 429', async (t) => {
  await server.createUser('throttled@getodk.org');
  for (let i = 0; i < 5; i++) {
    const res = await server.request('/v1/sessions', { method: 'POST', body: { email: 'throttled@getodk.org', password: 'not the password' } });
    t.is(res.status, 401);
  }
  const locked = await server.request('/v1/sessions', { method: 'POST', body: { email: 'throttled@getodk.org', password: defaultPassword } });
  t.is(locked.status, 429);
  t.is(locked.body.code, 429.1);
});

test('users/current is 401 without credentials and the user with a bearer token', async (t) => {
  const anonymous = await server.request('/v1/users/current');
  t.is(anonymous.status, 401);
  t.is(anonymous.body.code, 401.2);
  const token = await server.login('alice@getodk.org');
  const res = await server.request('/v1/users/current', { token });
  t.is(res.status, 200);
  t.is(res.body.email, 'alice@getodk.org');
  t.deepEqual(Object.keys(res.body).sort(), ['createdAt', 'deletedAt', 'displayName', 'email', 'id', 'lastLoginAt', 'type', 'updatedAt']);
  t.truthy(res.body.lastLoginAt);
});

test('an unknown bearer token is rejected with 401.2, not treated as anonymous', async (t) => {
  const res = await server.request('/v1/roles', { token: 'x'.repeat(64) });
  t.is(res.status, 401);
  t.is(res.body.code, 401.2);
});

test('HTTP Basic authentication with email and password works, and a wrong password is 401.2', async (t) => {
  const basic = (p: string) => ({ authorization: `Basic ${Buffer.from(`alice@getodk.org:${p}`).toString('base64')}` });
  const ok = await server.request('/v1/users/current', { headers: basic(defaultPassword) });
  t.is(ok.status, 200);
  t.is(ok.body.email, 'alice@getodk.org');
  const bad = await server.request('/v1/users/current', { headers: basic('wrong') });
  t.is(bad.status, 401);
});

test('logging out the current session makes its token fail', async (t) => {
  const token = await server.login('alice@getodk.org');
  t.is((await server.request('/v1/sessions/current', { method: 'DELETE', token })).status, 200);
  t.is((await server.request('/v1/users/current', { token })).status, 401);
});

test('DELETE /v1/sessions/:token ends that session; an unknown token is 404.1', async (t) => {
  const token = await server.login('alice@getodk.org');
  const other = await server.login('alice@getodk.org');
  t.deepEqual((await server.request(`/v1/sessions/${token}`, { method: 'DELETE', token: other })).body, { success: true });
  t.is((await server.request('/v1/users/current', { token })).status, 401);
  const missing = await server.request(`/v1/sessions/${'y'.repeat(64)}`, { method: 'DELETE', token: other });
  t.is(missing.status, 404);
  t.is(missing.body.code, 404.1);
});

test('a user cannot end another user\'s session', async (t) => {
  await server.createUser('dana@getodk.org');
  const dana = await server.login('dana@getodk.org');
  const alice = await server.login('alice@getodk.org');
  const res = await server.request(`/v1/sessions/${alice}`, { method: 'DELETE', token: dana });
  t.is(res.status, 403);
  t.is(res.body.code, 403.1);
});

test('an expired session is refused', async (t) => {
  const token = await server.login('alice@getodk.org');
  await server.sql.query(`update app_private.sessions set expires_at = now() - interval '1 second' where token = $1`, [token]);
  t.is((await server.request('/v1/users/current', { token })).status, 401);
});

test('sessions/restore returns the cookie session over HTTPS and 401.2 without one', async (t) => {
  t.is((await server.request('/v1/sessions/restore')).body.code, 401.2);
  const token = await server.login('alice@getodk.org');
  const viaProxy = { 'x-forwarded-proto': 'https', cookie: `__Host-session=${token}` };
  const res = await server.request('/v1/sessions/restore', { headers: viaProxy });
  t.is(res.status, 200);
  t.is(res.body.token, token);
  // Over plain HTTP the cookie is ignored.
  t.is((await server.request('/v1/sessions/restore', { headers: { cookie: `session=${token}` } })).status, 401);
});

test('a cookie-authenticated write needs X-Requested-With or the csrf token', async (t) => {
  const login = await server.request('/v1/sessions', { method: 'POST', body: { email: 'alice@getodk.org', password: defaultPassword } });
  const cookie = { 'x-forwarded-proto': 'https', cookie: `__Host-session=${login.body.token}` };
  const bare = await server.request('/v1/users', { method: 'POST', body: { email: 'c1@getodk.org' }, headers: cookie });
  t.is(bare.status, 401);
  const xhr = await server.request('/v1/users', { method: 'POST', body: { email: 'c2@getodk.org' }, headers: { ...cookie, 'x-requested-with': 'XMLHttpRequest' } });
  t.is(xhr.status, 200);
  const csrf = await server.request('/v1/users', { method: 'POST', body: { email: 'c3@getodk.org', __csrf: login.body.csrf }, headers: cookie });
  t.is(csrf.status, 200);
});

test('logging in is audited as user.session.create with the user agent', async (t) => {
  await server.request('/v1/sessions', { method: 'POST', body: { email: 'alice@getodk.org', password: defaultPassword }, headers: { 'user-agent': 'audit-test/1.0' } });
  const { rows } = await server.sql.query(`select * from app_public.audits where action = 'user.session.create' and details->>'userAgent' = 'audit-test/1.0'`);
  t.is(rows.length, 1);
});
