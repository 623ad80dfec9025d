// Row-level security with raw SQL: a connection as the request role, acting for bob (manager of project A only).
import test from 'ava';
import type pg from 'pg';
import { withProjects, type ProjectFixtures } from './fixtures.ts';

let f: ProjectFixtures;
let appUserB: { id: number; token: string };
test.before(async () => {
  f = await withProjects();
  const res = await f.server.request(`/v1/projects/${f.projectB}/app-users`, { method: 'POST', token: f.eve.token, body: { displayName: 'B collector' } });
  appUserB = { id: res.body.id, token: res.body.token };
  await f.server.request(`/v1/projects/${f.projectB}/actor-properties`, { method: 'POST', token: f.eve.token, body: { name: 'secret_region' } });
});
test.after.always(() => f?.server.close());

/** Runs fn on a request-pool connection as fieldbase_request acting for actorId, then rolls back. */
async function asActor<T>(actorId: number, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await f.server.db.requests.connect();
  try {
    await client.query('begin');
    await client.query(`select set_config('role', 'fieldbase_request', true), set_config('fieldbase.actor_id', $1, true)`, [String(actorId)]);
    return await fn(client);
  } finally {
    await client.query('rollback').catch(() => {});
    client.release();
  }
}

test('a project manager selects only their own project\'s rows', async (t) => {
  await asActor(f.bob.id, async (db) => {
    const projects = await db.query('select id from app_public.projects order by id');
    t.deepEqual(projects.rows.map((r) => r.id), [f.projectA]);
    const keys = await db.query('select actor_id, project_id from app_public.field_keys');
    t.deepEqual(keys.rows, [{ actor_id: f.appUser.id, project_id: f.projectA }]);
    const actors = await db.query(`select id from app_public.actors where type = 'field_key'`);
    t.deepEqual(actors.rows.map((r) => r.id), [f.appUser.id]);
    const props = await db.query('select name from app_public.actor_properties');
    t.deepEqual(props.rows, []);
    const assignments = await db.query('select distinct actee_id from app_public.assignments where actor_id <> $1', [f.bob.id]);
    const actees = await db.query('select actee_id from app_public.projects');
    t.deepEqual(assignments.rows.map((r) => r.actee_id), actees.rows.map((r) => r.actee_id));
  });
});

test('App User tokens are out of reach of raw SQL, and the token-revealing function refuses other projects', async (t) => {
  await asActor(f.bob.id, async (db) => {
    await t.throwsAsync(db.query('select token from app_private.sessions'), { message: /permission denied/ });
  });
  await asActor(f.bob.id, async (db) => {
    await t.throwsAsync(db.query('select token from app_public.project_field_keys($1)', [f.projectB]), { message: /rights/ });
  });
  await asActor(f.bob.id, async (db) => {
    const mine = await db.query('select id, token from app_public.project_field_keys($1)', [f.projectA]);
    t.deepEqual(mine.rows, [{ id: f.appUser.id, token: f.appUser.token }]);
    t.false(JSON.stringify(mine.rows).includes(appUserB.token));
  });
});

test('a viewer reads the project but not its App Users; anonymous sees nothing', async (t) => {
  await asActor(f.chelsea.id, async (db) => {
    t.deepEqual((await db.query('select id from app_public.projects')).rows.map((r) => r.id), [f.projectA]);
    t.deepEqual((await db.query('select * from app_public.field_keys')).rows, []);
    await t.throwsAsync(db.query('select token from app_public.project_field_keys($1)', [f.projectA]), { message: /rights/ });
  });
  const client = await f.server.db.requests.connect();
  try {
    await client.query('begin');
    await client.query(`select set_config('role', 'fieldbase_request', true)`);
    t.deepEqual((await client.query('select id from app_public.projects')).rows, []);
    t.deepEqual((await client.query('select * from app_public.field_keys')).rows, []);
  } finally {
    await client.query('rollback');
    client.release();
  }
});

test('the request role cannot write project tables directly', async (t) => {
  await asActor(f.bob.id, async (db) => {
    await t.throwsAsync(db.query(`update app_public.projects set name = 'mine' where id = $1`, [f.projectA]), { message: /permission denied/ });
  });
  await asActor(f.bob.id, async (db) => {
    await t.throwsAsync(db.query('insert into app_public.field_keys (actor_id, project_id) values ($1, $2)', [f.bob.id, f.projectA]),
      { message: /permission denied/ });
  });
  await asActor(f.bob.id, async (db) => {
    await t.throwsAsync(db.query(`select app_public.delete_project($1)`, [f.projectB]), { message: /rights/ });
  });
});
