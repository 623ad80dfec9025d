// Row-level security for datasets and entities, proved with raw SQL as the request role.
import test from 'ava';
import { withProjects, type ProjectFixtures } from './helpers.ts';

let f: ProjectFixtures;
test.before(async () => {
  f = await withProjects();
  const ds = `/v1/projects/${f.projectA}/datasets`;
  await f.server.request(ds, { method: 'POST', token: f.bob.token, body: { name: 'secrets' } });
  await f.server.request(`${ds}/secrets/properties`, { method: 'POST', token: f.bob.token, body: { name: 'code' } });
  await f.server.request(`${ds}/secrets/entities`, { method: 'POST', token: f.bob.token, body: { label: 'Hidden', data: { code: '42' } } });
});
test.after.always(() => f?.server.close());

const asActor = (actorId: number | null, sql: string) =>
  f.server.db.withActor({ actorId }, async (db) => (await db.query(sql)).rows);

const tables = ['app_public.datasets', 'app_public.ds_properties', 'app_public.entities', 'app_public.entity_defs', 'app_public.entity_def_sources'];

test('a manager of another project, a data collector and anonymous cannot read these rows', async (t) => {
  for (const table of tables) {
    for (const actor of [f.eve.id, f.dana.id, null]) t.deepEqual(await asActor(actor, `select * from ${table}`), [], `${table} as ${actor}`);
    t.true((await asActor(f.bob.id, `select * from ${table}`)).length > 0, `${table} as the manager`);
    t.true((await asActor(f.chelsea.id, `select * from ${table}`)).length > 0, `${table} as the viewer`);
  }
});

test('raw writes are refused; the API functions check the verb', async (t) => {
  for (const sql of [`update app_public.entity_defs set label = 'x'`, `delete from app_public.entities`,
    `insert into app_public.datasets (project_id, name, actee_id) values (${f.projectA}, 'x', '*')`]) {
    const error = await t.throwsAsync(asActor(f.bob.id, sql));
    t.is((error as any).code, '42501', sql);
  }
  const error = await t.throwsAsync(asActor(f.eve.id, `select app_public.create_entities(${f.projectA}, 'secrets', '[{"label":"x","data":{}}]')`));
  t.is((error as any).hint, '403.1');
  const backlog = await t.throwsAsync(asActor(f.bob.id, 'select * from app_private.entity_submission_backlog'));
  t.is((backlog as any).code, '42501');
});
