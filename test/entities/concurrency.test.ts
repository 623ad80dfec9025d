// Entities under concurrency: simultaneous API updates from one base version, update submissions from one base
// version processed by several workers at once, offline branches arriving out of order and at the same time, and
// submissions updating the same entities in opposite orders, the scheduled backlog run racing the workers, lock
// waits that time out. Versions stay gapless, every change is recorded once, conflicts end as Central defines them,
// and nothing surfaces as a 500 or an entity.error (migrations/current/59-entity-concurrency.sql).
import test from 'ava';
import crypto from 'node:crypto';
import pg from 'pg';
import { Logger, runOnce } from 'graphile-worker';
import { taskList } from '../../workers/runner.ts';
import { submitOpenRosa, submitRest } from '../submissions/helpers.ts';
import { entityForm, entitySubmission, publishForm, withInstanceId, withProjects, type ProjectFixtures } from './helpers.ts';

let f: ProjectFixtures;
let updateForm: string;
let repeatForm: string;
let workerPool: pg.Pool;
const people = () => `/v1/projects/${f.projectA}/datasets/people`;
const sampleUuid = '93a179a0-71b3-42f8-b78e-4c182eaf2ae7';
const sampleBranch = '6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d';
const newId = () => crypto.randomUUID();
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.before(async () => {
  f = await withProjects();
  await publishForm(f.server, f.bob.token, f.projectA, entityForm('entities-2024.1-create-people'));
  updateForm = await publishForm(f.server, f.bob.token, f.projectA, entityForm('entities-2024.1-update-people'));
  // Entities in repeats need spec 2025.1: the repeat sample, declared at that version.
  repeatForm = await publishForm(f.server, f.bob.token, f.projectA,
    entityForm('entities-2024.1-create-or-update-in-repeat').replace('entities-version="2024.1.0"', 'entities-version="2025.1.0"'));
  // Workers get a pool of their own, large enough for every runner to hold a job and poll at once.
  workerPool = quietPool(new pg.Pool({ connectionString: f.server.databaseUrl, max: 16 }));
});
test.after.always(async () => {
  await workerPool?.end();
  await f?.server.close();
});

/** Connections cut when the test database is dropped are expected (graphile-worker also wants these handlers). */
function quietPool(pool: pg.Pool): pg.Pool {
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

const get = (path: string) => f.server.request(path, { token: f.bob.token });

const quiet = new Logger(() => (level, message) => {
  if (level === 'error') console.error(`[worker] ${message}`);
});

/** Runs every pending job with `runners` graphile-worker runners at once (each with 2 concurrent jobs), within 60s. */
async function drainConcurrently(runners = 4): Promise<void> {
  const deadline = Date.now() + 60_000;
  await Promise.all(range(runners).map(async () => {
    while (Date.now() < deadline) {
      await runOnce({ pgPool: workerPool, taskList, logger: quiet, concurrency: 2 });
      // Jobs another runner holds may queue more (a held offline update released): wait until none is due.
      const { rows: [{ n }] } = await workerPool.query(
        `select count(*)::int as n from graphile_worker.jobs where run_at <= now() and attempts < max_attempts`);
      if (n === 0) return;
      await sleep(10);
    }
    throw new Error('jobs were still pending after 60s');
  }));
  // A job that failed (after its own retries) would be rescheduled by graphile-worker: here every job must have succeeded.
  const { rows: failed } = await workerPool.query(`select task_identifier, last_error from graphile_worker.jobs`);
  if (failed.length > 0) throw new Error(`jobs left in the queue: ${JSON.stringify(failed)}`);
}

async function createPerson(label: string): Promise<string> {
  const uuid = newId();
  const res = await f.server.request(`${people()}/entities`, { method: 'POST', token: f.bob.token, body: { uuid, label, data: { full_name: label } } });
  if (res.status !== 200) throw new Error(res.text);
  return uuid;
}

/** The update-people sample aimed at `entity`, with a fresh instanceID; the name (full_name) or label left out when null. */
function updateXml(file: string, entity: string, changes: { name: string | null; label: string | null; baseVersion?: number; branch?: string }) {
  let xml = withInstanceId(entitySubmission('entities-2024.1-update-people', file), newId()).replaceAll(sampleUuid, entity);
  xml = xml.replace(/<name>[^<]*<\/name>/, changes.name === null ? '' : `<name>${changes.name}</name>`);
  xml = xml.replace(/<label>[^<]*<\/label>/, `<label>${changes.label ?? ''}</label>`);
  if (changes.baseVersion !== undefined) xml = xml.replace(/baseVersion="\d+"/, `baseVersion="${changes.baseVersion}"`);
  if (changes.branch) xml = xml.replaceAll(sampleBranch, changes.branch);
  return xml;
}

const instanceIdOf = (xml: string) => /<instanceID>([^<]*)</.exec(xml)![1];

/** Sends every submission at once, alternating OpenRosa and REST; every one must be accepted. */
async function submitAll(xmls: string[]): Promise<void> {
  const results = await Promise.all(xmls.map((xml, i) => (i % 2 === 0
    ? submitOpenRosa(f.server, `/v1/projects/${f.projectA}/submission`, xml, { token: f.dana.token })
    : submitRest(f.server, f.dana.token, f.projectA, formOf(xml), xml))));
  for (const r of results) if (r.status !== 201 && r.status !== 200) throw new Error(`submitting: ${r.status} ${r.text}`);
}
const formOf = (xml: string) => (xml.includes('create_or_update_entities_from_repeats') ? repeatForm : updateForm);

async function versionsOf(uuid: string): Promise<any[]> {
  const res = await get(`${people()}/entities/${uuid}/versions`);
  if (res.status !== 200) throw new Error(res.text);
  return res.body;
}

async function entityErrors(): Promise<any[]> {
  return (await f.server.sql.query(`select details from app_public.audits where action = 'entity.error'`)).rows;
}

test.serial('simultaneous PATCHes from the same baseVersion: exactly one wins, the others get 409.15', async (t) => {
  const uuid = await createPerson('Gerri Kellman');
  const names = range(8).map((i) => `Gerri ${i}`);
  const results = await Promise.all(names.map((name) => f.server.request(`${people()}/entities/${uuid}?baseVersion=1`,
    { method: 'PATCH', token: f.bob.token, body: { data: { full_name: name } } })));
  t.deepEqual(results.map((r) => r.status).sort(), [200, 409, 409, 409, 409, 409, 409, 409], results.map((r) => r.text).join('\n'));
  const winner = results.findIndex((r) => r.status === 200);
  t.like(results[winner].body.currentVersion, { version: 2, baseVersion: 1, data: { full_name: names[winner] } });
  for (const r of results.filter((x) => x.status === 409)) {
    t.like(r.body, { code: 409.15, details: { current: 2, provided: 1 } });
  }
  const versions = await versionsOf(uuid);
  t.deepEqual(versions.map((v) => [v.version, v.data.full_name]), [[1, 'Gerri Kellman'], [2, names[winner]]]);
  t.is((await get(`${people()}/entities/${uuid}`)).body.conflict, null);
});

test.serial('simultaneous creates of one uuid: one is created, the others get 409.3', async (t) => {
  const uuid = newId();
  const results = await Promise.all(range(6).map((i) => f.server.request(`${people()}/entities`,
    { method: 'POST', token: f.bob.token, body: { uuid, label: `Connor ${i}`, data: { full_name: `Connor ${i}` } } })));
  t.deepEqual(results.map((r) => r.status).sort(), [200, 409, 409, 409, 409, 409], results.map((r) => r.text).join('\n'));
  for (const r of results.filter((x) => x.status === 409)) t.is(r.body.code, 409.3);
  t.deepEqual((await versionsOf(uuid)).map((v) => v.version), [1]);
});

test.serial('simultaneous bulk deletes of the same entities in opposite orders: one deletes them, the other finds them gone', async (t) => {
  const uuids = await Promise.all(range(6).map((i) => createPerson(`Willa ${i}`)));
  const results = await Promise.all([uuids, [...uuids].reverse()].map((ids) => f.server.request(`${people()}/entities/bulk-delete`,
    { method: 'POST', token: f.bob.token, body: { ids } })));
  t.deepEqual(results.map((r) => r.status).sort(), [200, 404], results.map((r) => r.text).join('\n'));
  t.is(results.find((r) => r.status === 404)!.body.code, 404.1);
  const { rows } = await f.server.sql.query(`select count(*)::int as n from app_public.audits where action = 'entity.bulk.delete'
    and details->'entity'->'uuids' ?| $1`, [uuids]);
  t.is(rows[0].n, 1);
  const restored = await Promise.all([uuids, [...uuids].reverse()].map((ids) => f.server.request(`${people()}/entities/bulk-restore`,
    { method: 'POST', token: f.bob.token, body: { ids } })));
  t.deepEqual(restored.map((r) => r.status).sort(), [200, 404], restored.map((r) => r.text).join('\n'));
});

test.serial('simultaneous forced PATCHes all apply, as versions 2..N+1 without gaps, each with its own data', async (t) => {
  const uuid = await createPerson('Frank Vernon');
  const names = range(8).map((i) => `Frank ${i}`);
  const results = await Promise.all(names.map((name) => f.server.request(`${people()}/entities/${uuid}?force=true`,
    { method: 'PATCH', token: f.bob.token, body: { data: { full_name: name } } })));
  t.deepEqual(results.map((r) => r.status), names.map(() => 200), results.map((r) => r.text).join('\n'));
  t.deepEqual(results.map((r) => r.body.currentVersion.version).sort((a, b) => a - b), [2, 3, 4, 5, 6, 7, 8, 9]);
  const versions = await versionsOf(uuid);
  t.deepEqual(versions.map((v) => v.version), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // Each forced update is based on the version before it, so none is a conflict; each recorded what it received.
  t.deepEqual(versions.slice(1).map((v) => v.baseVersion), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.deepEqual(versions.slice(1).map((v) => v.data.full_name).sort(), [...names].sort());
  for (const r of results) {
    t.is(versions.find((v) => v.version === r.body.currentVersion.version).data.full_name, r.body.currentVersion.data.full_name);
  }
  const e = (await get(`${people()}/entities/${uuid}`)).body;
  t.is(e.conflict, null);
  t.is(e.currentVersion.version, 9);
  const audits = (await get(`${people()}/entities/${uuid}/audits`)).body;
  t.is(audits.filter((a: any) => a.action === 'entity.update.version').length, 8);
});

test.serial('update submissions from the same base version, processed by concurrent workers, end in a hard conflict with every change kept', async (t) => {
  const uuid = await createPerson('Tom Wambsgans');
  const n = 6;
  const xmls = range(n).map((i) => updateXml('update-online.xml', uuid, { name: `Tom ${i}`, label: `Tom W. ${i}` }));
  await submitAll(xmls);
  await drainConcurrently();

  const e = (await get(`${people()}/entities/${uuid}`)).body;
  t.is(e.conflict, 'hard');
  const versions = await versionsOf(uuid);
  t.deepEqual(versions.map((v) => v.version), range(n + 1).map((i) => i + 1));
  // The first applied had the latest version as its base; every later one changed what it also changed.
  t.like(versions[1], { baseVersion: 1, conflict: null, conflictingProperties: null });
  for (const v of versions.slice(2)) t.like(v, { baseVersion: 1, conflict: 'hard', conflictingProperties: ['full_name', 'label'] });
  // Every submission is one version, with its own data and its source; none twice, none lost.
  t.deepEqual(versions.slice(1).map((v) => v.source.submission.instanceId).sort(), xmls.map(instanceIdOf).sort());
  for (const v of versions.slice(1)) {
    const i = xmls.findIndex((x) => instanceIdOf(x) === v.source.submission.instanceId);
    t.like(v, { label: `Tom W. ${i}`, data: { full_name: `Tom ${i}` } });
  }
  t.is(e.currentVersion.version, n + 1);
  t.deepEqual(await entityErrors(), []);
  const audits = (await get(`${people()}/entities/${uuid}/audits`)).body.filter((a: any) => a.action === 'entity.update.version');
  t.is(new Set(audits.map((a: any) => a.details.submissionId)).size, n);
});

test.serial('update submissions changing different properties from the same base, processed concurrently, end in a soft conflict', async (t) => {
  const entities = await Promise.all(range(4).map((i) => createPerson(`Greg Hirsch ${i}`)));
  // For each entity: one submission changes only the label, another only full_name.
  const xmls = entities.flatMap((uuid, i) => [
    updateXml('update-online.xml', uuid, { name: null, label: `Cousin Greg ${i}` }),
    updateXml('update-online.xml', uuid, { name: `Gregory Hirsch ${i}`, label: null }),
  ]);
  await submitAll(xmls);
  await drainConcurrently();

  for (const [i, uuid] of entities.entries()) {
    const e = (await get(`${people()}/entities/${uuid}`)).body;
    t.is(e.conflict, 'soft');
    // Both changes are kept: the label of one and the full_name of the other.
    t.like(e.currentVersion, { version: 3, baseVersion: 1, conflictingProperties: [], label: `Cousin Greg ${i}`, data: { full_name: `Gregory Hirsch ${i}` } });
    const versions = await versionsOf(uuid);
    t.deepEqual(versions.map((v) => [v.version, v.baseVersion, v.conflict]), [[1, null, null], [2, 1, null], [3, 1, 'soft']]);
    t.deepEqual(versions.slice(1).map((v) => v.source.submission.instanceId).sort(), xmls.slice(2 * i, 2 * i + 2).map(instanceIdOf).sort());
  }
  t.deepEqual(await entityErrors(), []);
});

/** Offline updates 1..n of one branch (trunk version 1), each setting the label "<prefix> <k>". */
function branchXmls(uuid: string, prefix: string, n: number): string[] {
  const branch = newId();
  return range(n).map((k) => updateXml('update-offline-branch-1-of-2.xml', uuid,
    { name: `${prefix} ${k + 1}`, label: `${prefix} ${k + 1}`, baseVersion: k + 1, branch }));
}

test.serial('offline branches arriving out of order and at once are held, then applied in branch order without conflict', async (t) => {
  const entities = await Promise.all(range(4).map((i) => createPerson(`Marcia Roy ${i}`)));
  const n = 4;
  const branches = entities.map((uuid, i) => branchXmls(uuid, `Marcia ${i}`, n));
  // Last update first, all of them at the same time; the last entity's first update comes only afterwards.
  const late = branches[3][0];
  await submitAll(branches.flatMap((xmls) => [...xmls].reverse()).filter((xml) => xml !== late));
  await drainConcurrently();
  t.is((await get(`${people()}/entities/${entities[3]}`)).body.currentVersion.version, 1);
  const waiting = await f.server.sql.query('select branch_base_version from app_private.entity_submission_backlog where entity_uuid = $1 order by 1', [entities[3]]);
  t.deepEqual(waiting.rows.map((r) => r.branch_base_version), [2, 3, 4]);
  await submitAll([late]);
  await drainConcurrently();

  for (const [i, uuid] of entities.entries()) {
    const e = (await get(`${people()}/entities/${uuid}`)).body;
    t.is(e.conflict, null);
    const versions = await versionsOf(uuid);
    t.deepEqual(versions.map((v) => [v.version, v.baseVersion, v.trunkVersion, v.branchBaseVersion, v.label, v.conflict]), [
      [1, null, null, null, `Marcia Roy ${i}`, null],
      ...range(n).map((k) => [k + 2, k + 1, 1, k + 1, `Marcia ${i} ${k + 1}`, null]),
    ]);
    t.deepEqual(versions.slice(1).map((v) => v.source.submission.instanceId), branches[i].map(instanceIdOf));
  }
  const backlog = await f.server.sql.query('select * from app_private.entity_submission_backlog where entity_uuid = any ($1)', [entities]);
  t.is(backlog.rowCount, 0);
  const count = async (action: string) => (await f.server.sql.query(
    `select count(*)::int as n, count(distinct details->>'submissionDefId')::int as distinct_defs from app_public.audits where action = $1`, [action])).rows[0];
  const holds = await count('submission.backlog.hold');
  const reprocessed = await count('submission.backlog.reprocess');
  // Whatever arrived before its predecessor was held once and released once.
  t.true(holds.n >= 3);
  t.deepEqual(holds, reprocessed);
  t.is(holds.n, holds.distinct_defs);
  t.deepEqual(await entityErrors(), []);
});

test.serial('an offline branch and an online update from the same trunk, at once: all applied, branch in order, a hard conflict', async (t) => {
  const uuid = await createPerson('Karl Muller');
  const branch = branchXmls(uuid, 'Karl', 3);
  const online = updateXml('update-online.xml', uuid, { name: 'Karolina', label: 'Karolina' });
  await submitAll([branch[2], online, branch[1], branch[0]]);
  await drainConcurrently();

  const e = (await get(`${people()}/entities/${uuid}`)).body;
  t.is(e.conflict, 'hard');
  const versions = await versionsOf(uuid);
  t.deepEqual(versions.map((v) => v.version), [1, 2, 3, 4, 5]);
  const sources = versions.slice(1).map((v) => v.source.submission.instanceId);
  t.deepEqual([...sources].sort(), [...branch, online].map(instanceIdOf).sort());
  // The branch's updates are applied in branch order, whenever the online one came.
  t.deepEqual(sources.filter((s) => s !== instanceIdOf(online)), branch.map(instanceIdOf));
  t.deepEqual(versions.filter((v) => v.branchBaseVersion !== null).map((v) => v.branchBaseVersion), [1, 2, 3]);
  t.deepEqual(await entityErrors(), []);
});

test.serial('the scheduled backlog run racing the arrival of a held branch\'s first update applies every update exactly once', async (t) => {
  const entities = await Promise.all(range(3).map((i) => createPerson(`Kerry Castellabate ${i}`)));
  const branches = entities.map((uuid, i) => branchXmls(uuid, `Kerry ${i}`, 3));
  await submitAll(branches.flatMap((xmls) => xmls.slice(1)));
  await drainConcurrently();
  t.is((await f.server.sql.query('select 1 from app_private.entity_submission_backlog where entity_uuid = any ($1)', [entities])).rowCount, 6);
  await submitAll(branches.map((xmls) => xmls[0]));
  // The hourly job forcing every held update, while workers process the updates that release them.
  await Promise.all([drainConcurrently(), workerPool.query('select app_hidden.process_entity_backlog(true)')]);
  await drainConcurrently();

  for (const [i, uuid] of entities.entries()) {
    const versions = await versionsOf(uuid);
    t.deepEqual(versions.map((v) => v.version), [1, 2, 3, 4]);
    t.deepEqual(versions.slice(1).map((v) => v.source.submission.instanceId).sort(), branches[i].map(instanceIdOf).sort());
  }
  t.is((await f.server.sql.query('select 1 from app_private.entity_submission_backlog where entity_uuid = any ($1)', [entities])).rowCount, 0);
  t.deepEqual(await entityErrors(), []);
});

/** One submission of the repeat form updating each given entity (from version 1) in the given order. */
function multiUpdateXml(targets: { uuid: string; name: string }[]): string {
  const repeats = targets.map(({ uuid, name }) => `<people><action>update</action><person>${uuid}</person><name>${name}</name>`
    + `<meta><entity dataset="people" create="false" update="true" id="${uuid}" baseVersion="1" trunkVersion="" branchId="">`
    + `<label>${name}</label></entity></meta></people>`).join('');
  return `<?xml version='1.0' ?><data id="create_or_update_entities_from_repeats" version="1">${repeats}`
    + `<meta><instanceID>uuid:${newId()}</instanceID></meta></data>`;
}

test.serial('submissions updating the same entities in opposite orders, processed at once, neither deadlock nor lose an update', async (t) => {
  const rounds = 3;
  for (const round of range(rounds)) {
    const [a, b, c] = await Promise.all(['Stewy', 'Sandy', 'Lukas'].map((name) => createPerson(`${name} ${round}`)));
    const xmls = [
      multiUpdateXml([{ uuid: a, name: `A${round} first` }, { uuid: b, name: `B${round} first` }, { uuid: c, name: `C${round} first` }]),
      multiUpdateXml([{ uuid: c, name: `C${round} second` }, { uuid: b, name: `B${round} second` }, { uuid: a, name: `A${round} second` }]),
      multiUpdateXml([{ uuid: b, name: `B${round} third` }, { uuid: a, name: `A${round} third` }]),
    ];
    await submitAll(xmls);
    await drainConcurrently();
    t.deepEqual(await entityErrors(), [], `round ${round}`);
    for (const [uuid, edits] of [[a, 3], [b, 3], [c, 2]] as const) {
      const versions = await versionsOf(uuid);
      t.deepEqual(versions.map((v) => v.version), range(edits + 1).map((i) => i + 1), `round ${round}`);
      t.is(new Set(versions.slice(1).map((v) => v.source.submission.instanceId)).size, edits);
      t.is((await get(`${people()}/entities/${uuid}`)).body.conflict, 'hard');
    }
  }
  t.deepEqual(await entityErrors(), []);
});

test.serial('a submission that cannot get its entity lock fails with a retryable error, never an entity.error; its job retries it', async (t) => {
  const uuid = await createPerson('Rava Roy');
  const xml = updateXml('update-online.xml', uuid, { name: 'Rava', label: 'Rava' });
  await submitAll([xml]);
  const { rows: [def] } = await f.server.sql.query('select id from app_public.submission_defs where instance_id = $1', [instanceIdOf(xml)]);
  // Workers that give up waiting for a lock after 100ms: their first attempts fail while another transaction holds the entity.
  const impatient = quietPool(new pg.Pool({ connectionString: f.server.databaseUrl, max: 4, options: '-c lock_timeout=100' }));
  const holder = await workerPool.connect();
  try {
    await holder.query('begin');
    await holder.query('select app_hidden.lock_entity($1)', [uuid]);
    const err = await t.throwsAsync(impatient.query('select app_hidden.process_submission_entities($1)', [def.id]));
    t.is((err as { code?: string }).code, '55P03');
    t.deepEqual(await entityErrors(), []);
    const job = runOnce({ pgPool: impatient, taskList, logger: quiet });
    await sleep(250);
    await holder.query('rollback');
    await Promise.race([job, sleep(10_000).then(() => { throw new Error('the job did not finish within 10s'); })]);
  } finally {
    await holder.query('rollback');
    holder.release();
    await impatient.end();
  }
  t.deepEqual(await entityErrors(), []);
  t.deepEqual((await workerPool.query('select task_identifier, attempts, last_error from graphile_worker.jobs')).rows, []);
  const versions = await versionsOf(uuid);
  t.deepEqual(versions.map((v) => [v.version, v.label]), [[1, 'Rava Roy'], [2, 'Rava']]);
});
