// Row-level security proved with raw SQL as the request role: what an actor may not see or change,
// it cannot reach even when it writes its own statements.
import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';

let f: Fixtures;
test.before(async () => { f = await withFixtures(); });
test.after.always(() => f?.server.close());

const asActor = <T>(actorId: number | null, fn: (q: (sql: string, p?: unknown[]) => Promise<any[]>) => Promise<T>) =>
  f.server.db.withActor({ actorId }, (db) => fn(async (sql, p) => (await db.query(sql, p)).rows));

test('requests run as the restricted role, never as a superuser', async (t) => {
  const [row] = await asActor(f.chelsea.id, (q) => q(`select current_user, session_user, (select rolsuper from pg_roles where rolname = current_user) as su`));
  t.deepEqual(row, { current_user: 'fieldbase_request', session_user: 'fieldbase_authenticator', su: false });
});

test('a user without user.read sees only their own user and actor rows', async (t) => {
  const users = await asActor(f.chelsea.id, (q) => q('select actor_id from app_public.users'));
  t.deepEqual(users.map((u) => u.actor_id), [f.chelsea.id]);
  const actors = await asActor(f.chelsea.id, (q) => q('select id from app_public.actors'));
  t.deepEqual(actors.map((a) => a.id), [f.chelsea.id]);
  const admin = await asActor(f.alice.id, (q) => q('select actor_id from app_public.users'));
  t.true(admin.length >= 3);
});

test('anonymous raw SQL sees no users, assignments or audits', async (t) => {
  t.deepEqual(await asActor(null, (q) => q('select * from app_public.users')), []);
  t.deepEqual(await asActor(null, (q) => q('select * from app_public.assignments')), []);
  t.deepEqual(await asActor(null, (q) => q('select * from app_public.audits')), []);
});

test('raw updates, inserts and deletes on accounts are refused', async (t) => {
  for (const sql of [
    `update app_public.users set email = 'stolen@example.org' where actor_id = ${f.alice.id}`,
    `update app_public.actors set display_name = 'pwned'`,
    `insert into app_public.assignments (actor_id, role_id, actee_id) values (${f.chelsea.id}, 1, '*')`,
    `delete from app_public.audits`,
    `update app_public.roles set verbs = '["user.create"]' where system = 'formfill'`,
  ]) {
    const error = await t.throwsAsync(asActor(f.chelsea.id, (q) => q(sql)));
    t.is((error as any).code, '42501', sql);
  }
  const [alice] = await asActor(f.alice.id, (q) => q('select email from app_public.users where actor_id = $1', [f.alice.id]));
  t.is(alice.email, 'alice@getodk.org');
});

test('secrets (password hashes, session tokens) are out of the request role\'s reach', async (t) => {
  for (const sql of ['select * from app_private.user_passwords', 'select * from app_private.sessions', 'select * from app_private.settings']) {
    const error = await t.throwsAsync(asActor(f.alice.id, (q) => q(sql)));
    t.is((error as any).code, '42501');
  }
});

test('a request cannot grant itself system rights by setting settings', async (t) => {
  const error = await t.throwsAsync(asActor(f.chelsea.id, async (q) => {
    await q(`select set_config('fieldbase.system', 'on', true)`);
    return q(`select app_public.create_user('mallory@example.org', 'a long password')`);
  }));
  t.is((error as any).hint, '403.1');
});

test('an audit row cannot be forged through the API functions', async (t) => {
  const error = await t.throwsAsync(asActor(f.chelsea.id, (q) => q(`select app_hidden.log_audit('user.delete', '*')`)));
  t.is((error as any).code, '42501');
});
