import test from 'ava';
import { withProjects, keyPath, type ProjectFixtures } from './fixtures.ts';

let f: ProjectFixtures;
test.before(async () => { f = await withProjects(); });
test.after.always(() => f?.server.close());

const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

test.serial('analytics config is 404.1 until set, then sanitised, overwritten, unset and audited', async (t) => {
  const unset = await f.server.request('/v1/config/analytics', { token: f.alice.token });
  t.is(unset.status, 404);
  t.is(unset.body.code, 404.1);
  const set = await f.server.request('/v1/config/analytics', { method: 'POST', token: f.alice.token,
    body: { enabled: true, email: 'me@getodk.org', organization: '', extra: 'dropped' } });
  t.is(set.status, 200);
  t.deepEqual(Object.keys(set.body).sort(), ['key', 'setAt', 'value']);
  t.is(set.body.key, 'analytics');
  t.regex(set.body.setAt, iso);
  t.deepEqual(set.body.value, { enabled: true, email: 'me@getodk.org' });
  t.deepEqual((await f.server.request('/v1/config/analytics', { token: f.alice.token })).body.value, { enabled: true, email: 'me@getodk.org' });
  const off = await f.server.request('/v1/config/analytics', { method: 'POST', token: f.alice.token, body: { enabled: false, email: 'kept?@x.org' } });
  t.deepEqual(off.body.value, { enabled: false });
  t.deepEqual((await f.server.request('/v1/config/analytics', { method: 'DELETE', token: f.alice.token })).body, { success: true });
  t.deepEqual((await f.server.request('/v1/config/analytics', { method: 'DELETE', token: f.alice.token })).body, { success: true });
  t.is((await f.server.request('/v1/config/analytics', { token: f.alice.token })).status, 404);
  const audits = await f.server.request('/v1/audits?action=config.set', { token: f.alice.token });
  t.is(audits.body.length, 2);
  t.deepEqual(audits.body.map((a: { details: { value: unknown } }) => a.details.value), [{ enabled: false }, { enabled: true, email: 'me@getodk.org' }]);
});

test('only administrators read or set configuration', async (t) => {
  for (const token of [f.bob.token, f.chelsea.token, f.dana.token, undefined]) {
    t.is((await f.server.request('/v1/config/analytics', { token })).status, 403);
    t.is((await f.server.request('/v1/config/analytics', { method: 'POST', token, body: { enabled: true } })).status, 403);
    t.is((await f.server.request('/v1/config/login-appearance', { method: 'DELETE', token })).status, 403);
    t.is((await f.server.request('/v1/analytics/preview', { token })).status, 403);
  }
  t.is((await f.server.request(keyPath(f.appUser.token, '/v1/config/analytics'), { method: 'POST', body: { enabled: true } })).status, 403);
});

test('unknown config keys cannot be set (400.8) nor read (404.1)', async (t) => {
  const res = await f.server.request('/v1/config/nonsense', { method: 'POST', token: f.alice.token, body: { a: 1 } });
  t.is(res.status, 400);
  t.is(res.body.code, 400.8);
  t.is((await f.server.request('/v1/config/nonsense', { method: 'DELETE', token: f.alice.token })).body.code, 400.8);
  t.is((await f.server.request('/v1/config/nonsense', { token: f.alice.token })).status, 404);
});

test.serial('login appearance, logo and hero image are public: listed in /config/public and readable anonymously', async (t) => {
  t.deepEqual((await f.server.request('/v1/config/public')).body, {});
  const appearance = await f.server.request('/v1/config/login-appearance', { method: 'POST', token: f.alice.token,
    body: { title: 'Better Data', description: '' } });
  t.deepEqual(appearance.body.value, { title: 'Better Data' });
  const logo = await f.server.request('/v1/config/logo', { method: 'POST', token: f.alice.token, raw: png, headers: { 'content-type': 'image/png' } });
  t.is(logo.status, 200);
  t.deepEqual(Object.keys(logo.body).sort(), ['blobExists', 'key', 'setAt']);
  t.like(logo.body, { key: 'logo', blobExists: true });
  await f.server.request('/v1/config/analytics', { method: 'POST', token: f.alice.token, body: { enabled: false } });

  const all = await f.server.request('/v1/config/public');
  t.is(all.status, 200);
  t.deepEqual(Object.keys(all.body).sort(), ['login-appearance', 'logo']);
  t.deepEqual(all.body['login-appearance'].value, { title: 'Better Data' });
  t.like(all.body.logo, { key: 'logo', blobExists: true });

  const image = await f.server.request('/v1/config/public/logo');
  t.is(image.status, 200);
  t.is(image.headers.get('content-type'), 'image/png');
  const etag = image.headers.get('etag');
  t.regex(etag ?? '', /^"[0-9a-f]{32}"$/);
  const raw = await fetch(`${f.server.url}/v1/config/public/logo`);
  t.deepEqual(Buffer.from(await raw.arrayBuffer()), png);
  const cached = await f.server.request('/v1/config/public/logo', { headers: { 'if-none-match': etag! } });
  t.is(cached.status, 304);
  const direct = await f.server.request('/v1/config/logo', { token: f.alice.token });
  t.is(direct.headers.get('content-type'), 'image/png');
  t.is((await f.server.request('/v1/config/logo', { token: f.bob.token })).status, 403);

  t.deepEqual((await f.server.request('/v1/config/public/login-appearance')).body.value, { title: 'Better Data' });
  t.is((await f.server.request('/v1/config/public/analytics')).status, 403);
  t.is((await f.server.request('/v1/config/public/hero-image')).status, 404);
});

test('an image upload without a Content-Type is refused, and replacing it changes the ETag', async (t) => {
  // (The app reads untyped bodies as JSON, so this is 400.1 rather than Central's 400.6.)
  const bare = await fetch(`${f.server.url}/v1/config/hero-image`, { method: 'POST', headers: { authorization: `Bearer ${f.alice.token}` }, body: png });
  t.is(bare.status, 400);
  t.is((await f.server.request('/v1/config/hero-image', { token: f.alice.token })).status, 404);
  await f.server.request('/v1/config/hero-image', { method: 'POST', token: f.alice.token, raw: png, headers: { 'content-type': 'image/png' } });
  const first = (await f.server.request('/v1/config/hero-image', { token: f.alice.token })).headers.get('etag');
  const jpeg = Buffer.from('ffd8ffe000104a464946', 'hex');
  await f.server.request('/v1/config/hero-image', { method: 'POST', token: f.alice.token, raw: jpeg, headers: { 'content-type': 'image/jpeg' } });
  const second = await f.server.request('/v1/config/hero-image', { token: f.alice.token });
  t.is(second.headers.get('content-type'), 'image/jpeg');
  t.not(second.headers.get('etag'), first);
  t.deepEqual((await f.server.request('/v1/config/hero-image', { method: 'DELETE', token: f.alice.token })).body, { success: true });
  t.is((await f.server.request('/v1/config/public/hero-image')).status, 404);
});

test('the usage report preview counts real users, projects and App Users', async (t) => {
  const { body: archived } = await f.server.request('/v1/projects', { method: 'POST', token: f.alice.token, body: { name: 'Old', description: '  twelve chars  ' } });
  await f.server.request(`/v1/projects/${archived.id}`, { method: 'PATCH', token: f.alice.token, body: { archived: true } });
  const res = await f.server.request('/v1/analytics/preview', { token: f.alice.token });
  t.is(res.status, 200);
  const { system, projects } = res.body;
  t.deepEqual(system.num_admins, { recent: 1, total: 1 });
  t.is(system.num_archived_projects, 1);
  t.is(system.num_unique_managers, 2);
  t.is(system.num_unique_viewers, 1);
  t.is(system.num_unique_collectors, 1);
  t.true(system.database_size > 0);
  t.true(system.num_audit_log_entries.total >= system.num_audit_log_entries.recent);
  t.true(system.num_audit_log_entries.recent > 0);
  t.is(system.num_questions_biggest_form, null);
  const a = projects.find((p: { id: number }) => p.id === f.projectA);
  t.deepEqual(a.users.num_managers, { recent: 1, total: 1 });
  t.deepEqual(a.users.num_viewers, { recent: 1, total: 1 });
  t.deepEqual(a.users.num_data_collectors, { recent: 1, total: 1 });
  t.deepEqual(a.users.num_app_users, { recent: 0, total: 1 });
  t.deepEqual(Object.keys(a).sort(), ['datasets', 'forms', 'id', 'other', 'submissions', 'users']);
  t.deepEqual(a.submissions.num_submissions_received, { recent: 0, total: 0 });
  t.is(projects.find((p: { id: number }) => p.id === archived.id).other.description_length, 12);
});
