import test from 'ava';
import { withProjects, keyPath, type ProjectFixtures } from './fixtures.ts';

let f: ProjectFixtures;
test.before(async () => { f = await withProjects(); });
test.after.always(() => f?.server.close());

const appUserKeys = ['createdAt', 'deletedAt', 'displayName', 'id', 'projectId', 'token', 'type', 'updatedAt'];
const extended = { 'X-Extended-Metadata': 'true' };

async function newAppUser(token: string, body: unknown = { displayName: 'Temp' }, project = f.projectA) {
  return f.server.request(`/v1/projects/${project}/app-users`, { method: 'POST', token, body });
}

test('a manager creates an App User: a field_key actor with a 64-character token, audited', async (t) => {
  const res = await newAppUser(f.bob.token, { displayName: 'Enumerator' });
  t.is(res.status, 200);
  t.deepEqual(Object.keys(res.body).sort(), appUserKeys);
  t.like(res.body, { type: 'field_key', displayName: 'Enumerator', projectId: f.projectA, deletedAt: null });
  t.regex(res.body.token, /^[A-Za-z0-9!$]{64}$/);
  const { rows } = await f.server.sql.query(`select a.action, a.actor_id from app_public.audits a join app_public.actors x on x.actee_id = a.actee_id
    where x.id = $1`, [res.body.id]);
  t.deepEqual(rows, [{ action: 'field_key.create', actor_id: f.bob.id }]);
  const { rows: [session] } = await f.server.sql.query('select expires_at from app_private.sessions where token = $1', [res.body.token]);
  t.true(session.expires_at.getUTCFullYear() >= 9999);
});

test('creating an App User needs a displayName and field_key.create on the project', async (t) => {
  const missing = await newAppUser(f.bob.token, {});
  t.is(missing.status, 400);
  t.is(missing.body.code, 400.2);
  for (const token of [f.chelsea.token, f.dana.token, f.eve.token]) t.is((await newAppUser(token)).status, 403);
  t.is((await f.server.request(`/v1/projects/${f.projectA}/app-users`, { method: 'POST', body: { displayName: 'x' } })).status, 403);
  t.is((await f.server.request(keyPath(f.appUser.token, `/v1/projects/${f.projectA}/app-users`), { method: 'POST', body: { displayName: 'x' } })).status, 403);
  t.is((await newAppUser(f.alice.token, { displayName: 'x' }, 999999)).status, 404);
});

test('listing App Users shows tokens to managers; viewers, collectors and other projects are refused', async (t) => {
  const res = await f.server.request(`/v1/projects/${f.projectA}/app-users`, { token: f.bob.token });
  t.is(res.status, 200);
  const mine = res.body.find((u: { id: number }) => u.id === f.appUser.id);
  t.deepEqual(Object.keys(mine).sort(), appUserKeys);
  t.is(mine.token, f.appUser.token);
  for (const token of [f.chelsea.token, f.dana.token, f.eve.token]) {
    const denied = await f.server.request(`/v1/projects/${f.projectA}/app-users`, { token });
    t.is(denied.status, 403);
  }
  t.is((await f.server.request(`/v1/projects/${f.projectA}/app-users`)).status, 403);
  t.deepEqual((await f.server.request(`/v1/projects/${f.projectB}/app-users`, { token: f.eve.token })).body, []);
});

test('extended App Users carry createdBy, lastUsed and properties', async (t) => {
  const res = await f.server.request(`/v1/projects/${f.projectA}/app-users/${f.appUser.id}`, { token: f.bob.token, headers: extended });
  t.is(res.status, 200);
  t.deepEqual(Object.keys(res.body).sort(), [...appUserKeys, 'createdBy', 'lastUsed', 'properties'].sort());
  t.like(res.body, { lastUsed: null, properties: null });
  t.like(res.body.createdBy, { id: f.alice.id, displayName: 'Alice', type: 'user' });
  const plain = await f.server.request(`/v1/projects/${f.projectA}/app-users/${f.appUser.id}`, { token: f.bob.token });
  t.deepEqual(Object.keys(plain.body).sort(), appUserKeys);
  t.is((await f.server.request(`/v1/projects/${f.projectB}/app-users/${f.appUser.id}`, { token: f.alice.token })).status, 404);
  t.is((await f.server.request(`/v1/projects/${f.projectA}/app-users/${f.bob.id}`, { token: f.alice.token })).status, 404);
});

test('an App User authenticates through /v1/key/<token>/ and sees itself as current', async (t) => {
  const res = await f.server.request(keyPath(f.appUser.token, '/v1/users/current'));
  t.is(res.status, 200);
  t.like(res.body, { id: f.appUser.id, type: 'field_key', displayName: 'Collector 1' });
  t.is((await f.server.request(keyPath('x'.repeat(64), '/v1/users/current'))).status, 401);
});

test('revoking through DELETE /v1/sessions/:token ends the token at once and keeps the App User listed without one', async (t) => {
  const { body: fk } = await newAppUser(f.bob.token, { displayName: 'Revoked' });
  t.is((await f.server.request(keyPath(fk.token, '/v1/users/current'))).status, 200);
  t.is((await f.server.request(`/v1/sessions/${encodeURIComponent(fk.token)}`, { method: 'DELETE', token: f.chelsea.token })).status, 403);
  t.is((await f.server.request(`/v1/sessions/${encodeURIComponent(fk.token)}`, { method: 'DELETE', token: f.eve.token })).status, 403);
  const res = await f.server.request(`/v1/sessions/${encodeURIComponent(fk.token)}`, { method: 'DELETE', token: f.bob.token });
  t.deepEqual(res.body, { success: true });
  t.is((await f.server.request(keyPath(fk.token, '/v1/users/current'))).status, 401);
  const listed = await f.server.request(`/v1/projects/${f.projectA}/app-users/${fk.id}`, { token: f.bob.token });
  t.is(listed.body.token, null);
  const { rows } = await f.server.sql.query(`select a.action from app_public.audits a join app_public.actors x on x.actee_id = a.actee_id
    where x.id = $1 order by a.id`, [fk.id]);
  t.deepEqual(rows.map((r) => r.action), ['field_key.create', 'field_key.session.end']);
});

test('deleting an App User revokes its token at once and removes it from listings', async (t) => {
  const { body: fk } = await newAppUser(f.alice.token, { displayName: 'Deleted' });
  for (const token of [f.chelsea.token, f.dana.token, f.eve.token]) {
    t.is((await f.server.request(`/v1/projects/${f.projectA}/app-users/${fk.id}`, { method: 'DELETE', token })).status, 403);
  }
  // An App User cannot delete itself.
  t.is((await f.server.request(keyPath(fk.token, `/v1/projects/${f.projectA}/app-users/${fk.id}`), { method: 'DELETE' })).status, 403);
  const res = await f.server.request(`/v1/projects/${f.projectA}/app-users/${fk.id}`, { method: 'DELETE', token: f.bob.token });
  t.deepEqual(res.body, { success: true });
  t.is((await f.server.request(keyPath(fk.token, '/v1/users/current'))).status, 401);
  const list = await f.server.request(`/v1/projects/${f.projectA}/app-users`, { token: f.bob.token });
  t.false(list.body.some((u: { id: number }) => u.id === fk.id));
  t.is((await f.server.request(`/v1/projects/${f.projectA}/app-users/${fk.id}`, { method: 'DELETE', token: f.bob.token })).status, 404);
  const audit = await f.server.request('/v1/audits?action=field_key.delete', { token: f.alice.token });
  t.true(audit.body.some((a: { actorId: number }) => a.actorId === f.bob.id));
});

test('the App User count in extended project metadata follows creations and deletions', async (t) => {
  const { body: p } = await f.server.request('/v1/projects', { method: 'POST', token: f.alice.token, body: { name: 'Counting' } });
  const count = async () => (await f.server.request(`/v1/projects/${p.id}`, { token: f.alice.token, headers: extended })).body.appUsers;
  t.is(await count(), 0);
  const { body: one } = await newAppUser(f.alice.token, { displayName: 'One' }, p.id);
  await newAppUser(f.alice.token, { displayName: 'Two' }, p.id);
  t.is(await count(), 2);
  await f.server.request(`/v1/projects/${p.id}/app-users/${one.id}`, { method: 'DELETE', token: f.alice.token });
  t.is(await count(), 1);
});

test('actor properties: managers register names, viewers list them, values show with extended metadata', async (t) => {
  const { body: p } = await f.server.request('/v1/projects', { method: 'POST', token: f.alice.token, body: { name: 'Props' } });
  await f.server.request(`/v1/projects/${p.id}/assignments/manager/${f.bob.id}`, { method: 'POST', token: f.alice.token });
  await f.server.request(`/v1/projects/${p.id}/assignments/viewer/${f.chelsea.id}`, { method: 'POST', token: f.alice.token });
  await f.server.request(`/v1/projects/${p.id}/assignments/formfill/${f.dana.id}`, { method: 'POST', token: f.alice.token });
  const path = `/v1/projects/${p.id}/actor-properties`;
  t.deepEqual((await f.server.request(path, { method: 'POST', token: f.bob.token, body: { name: 'region' } })).body, { success: true });
  t.is((await f.server.request(path, { method: 'POST', token: f.alice.token, body: { name: 'supervisor' } })).status, 200);
  const dup = await f.server.request(path, { method: 'POST', token: f.bob.token, body: { name: 'Region' } });
  t.is(dup.status, 409);
  t.is(dup.body.code, 409.3);
  for (const name of ['displayName', 'DISPLAYNAME', '', '__x', '1abc', 'has space', null]) {
    const bad = await f.server.request(path, { method: 'POST', token: f.bob.token, body: { name } });
    t.is(bad.status, 400, `name ${name}`);
    t.is(bad.body.code, 400.8);
  }
  t.is((await f.server.request(path, { method: 'POST', token: f.chelsea.token, body: { name: 'x' } })).status, 403);
  t.is((await f.server.request(path, { method: 'POST', token: f.eve.token, body: { name: 'x' } })).status, 403);
  t.deepEqual((await f.server.request(path, { token: f.chelsea.token })).body, [{ name: 'region' }, { name: 'supervisor' }]);
  t.is((await f.server.request(path, { token: f.dana.token })).status, 403);
  t.is((await f.server.request(path)).status, 403);

  const created = await newAppUser(f.bob.token, { displayName: 'North 1', properties: { region: ' North ' } }, p.id);
  t.is(created.status, 200);
  await newAppUser(f.bob.token, { displayName: 'South 1', properties: { region: 'South', supervisor: '' } }, p.id);
  const unknown = await newAppUser(f.bob.token, { displayName: 'Bad', properties: { planet: 'Mars' } }, p.id);
  t.is(unknown.status, 400);
  t.is(unknown.body.code, 400.8);
  t.is((await f.server.request(`/v1/projects/${p.id}/app-users`, { token: f.bob.token })).body.length, 2, 'nothing created on a bad property');
  t.deepEqual((await f.server.request(path, { token: f.chelsea.token, headers: extended })).body,
    [{ name: 'region', values: ['North', 'South'] }, { name: 'supervisor', values: [] }]);

  const patched = await f.server.request(`/v1/projects/${p.id}/app-users/${created.body.id}`, {
    method: 'PATCH', token: f.bob.token, body: { properties: { supervisor: 'Alice', region: null } } });
  t.is(patched.status, 200);
  t.deepEqual(patched.body.properties, { supervisor: 'Alice' });
  t.like(patched.body.createdBy, { id: f.bob.id });
  t.is((await f.server.request(`/v1/projects/${p.id}/app-users/${created.body.id}`, {
    method: 'PATCH', token: f.chelsea.token, body: { properties: { region: 'x' } } })).status, 403);
  t.is((await f.server.request(`/v1/projects/${p.id}/app-users/${created.body.id}`, {
    method: 'PATCH', token: f.bob.token, body: { properties: { region: 5 } } })).body.code, 400.8);

  const { rows } = await f.server.sql.query(`select a.action, a.details from app_public.audits a
    where a.action in ('actor_property.create', 'field_key.property.set') and a.actee_id in (
      select actee_id from app_public.projects where id = $1 union select x.actee_id from app_public.actors x
      join app_public.field_keys k on k.actor_id = x.id where k.project_id = $1) order by a.id`, [p.id]);
  t.deepEqual(rows, [
    { action: 'actor_property.create', details: { name: 'region' } },
    { action: 'actor_property.create', details: { name: 'supervisor' } },
    { action: 'field_key.property.set', details: { properties: { region: 'North' } } },
    { action: 'field_key.property.set', details: { properties: { region: 'South', supervisor: null } } },
    { action: 'field_key.property.set', details: { properties: { supervisor: 'Alice', region: null } } },
  ]);
});
