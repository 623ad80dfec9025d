// npm run bench: OpenRosa ingestion with 16 concurrent clients (submissions/s), and CSV export time and
// server memory (RSS) for 1,000 and 10,000 submissions of a 250-question form. Uses DATABASE_URL's server
// (or an embedded PostgreSQL) and a scratch database it drops afterwards. Knobs: BENCH_INGEST (default
// 2000 submissions), BENCH_EXPORT_SIZES (default "1000,10000").
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { externalCluster, startEmbeddedCluster } from '../db/cluster.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { openDatabase } from '../server/db.ts';
import { createApp } from '../server/app.ts';
import { loadConfig } from '../server/config.ts';

const questions = 250;
const clients = 16;
const ingestTotal = Number(process.env.BENCH_INGEST ?? 2000);
const exportSizes = (process.env.BENCH_EXPORT_SIZES ?? '1000,10000').split(',').map(Number);

function formXml(): string {
  const fields = Array.from({ length: questions }, (_, i) => `q${i}`);
  const groups = Array.from({ length: questions / 10 }, (_, g) => fields.slice(g * 10, g * 10 + 10));
  const instance = groups.map((g, i) => `<g${i}>${g.map((q) => `<${q}/>`).join('')}</g${i}>`).join('');
  const binds = groups.flatMap((g, i) => g.map((q) => `<bind nodeset="/data/g${i}/${q}" type="string"/>`)).join('');
  const body = groups.flatMap((g, i) => g.map((q) => `<input ref="/data/g${i}/${q}"><label>${q}</label></input>`)).join('');
  return `<?xml version="1.0"?><h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">`
    + `<h:head><h:title>Bench</h:title><model><instance><data id="bench" version="1">${instance}<meta><instanceID/></meta></data></instance>`
    + `${binds}<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jqr:preload="uid" xmlns:jqr="http://openrosa.org/javarosa"/></model></h:head><h:body>${body}</h:body></h:html>`;
}

function submissionXml(n: number): string {
  const groups = Array.from({ length: questions / 10 }, (_, g) =>
    `<g${g}>${Array.from({ length: 10 }, (_, q) => `<q${g * 10 + q}>answer ${n} ${g}.${q}</q${g * 10 + q}>`).join('')}</g${g}>`).join('');
  return `<?xml version='1.0' ?><data id="bench" version="1">${groups}<meta><instanceID>uuid:bench-${n}</instanceID></meta></data>`;
}

function multipart(xml: string) {
  const boundary = 'benchboundary';
  const body = `--${boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; filename="submission.xml"\r\nContent-Type: text/xml\r\n\r\n${xml}\r\n--${boundary}--\r\n`;
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

const cluster = process.env.DATABASE_URL
  ? externalCluster(process.env.DATABASE_URL)
  : await startEmbeddedCluster(path.resolve('.data/bench'), Number(process.env.EMBEDDED_BENCH_PG_PORT ?? 54331));
const name = `fieldbase_bench_${process.pid}`;
const root = new pg.Client({ connectionString: cluster.url('postgres') });
await root.connect();
await root.query(`drop database if exists ${name} with (force)`);
await root.query(`create database ${name}`);
await root.end();

try {
  await migrateDatabase(cluster.url(name), cluster.url('postgres'), { includeCurrent: true });
  const config = { ...loadConfig({}), bcryptCost: 4, port: 0 };
  const db = await openDatabase(cluster.url(name), config);
  const app = await createApp(db, config);
  const server = app.listen(0);
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const owner = await db.owner.connect();
  await owner.query('begin');
  await owner.query(`select set_config('fieldbase.system', 'on', true), set_config('fieldbase.bcrypt_cost', '4', true)`);
  await owner.query(`select app_public.create_user('bench@getodk.org', 'bench password 1', 'Bench')`);
  await owner.query(`select app_public.promote_to_admin('bench@getodk.org')`);
  await owner.query('commit');
  owner.release();
  const login = await (await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'bench@getodk.org', password: 'bench password 1' }) })).json() as { token: string };
  const auth = { authorization: `Bearer ${login.token}` };
  const project = await (await fetch(`${url}/v1/projects`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench' }) })).json() as { id: number };
  const form = await fetch(`${url}/v1/projects/${project.id}/forms?publish=true`, { method: 'POST', headers: { ...auth, 'content-type': 'application/xml' }, body: formXml() });
  if (form.status !== 200) throw new Error(`form upload failed: ${form.status} ${await form.text()}`);

  // Ingestion: 16 clients, each posting its share of submissions one after another.
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    for (let n = next++; n < ingestTotal; n = next++) {
      const { body, type } = multipart(submissionXml(n));
      const res = await fetch(`${url}/v1/projects/${project.id}/submission`, { method: 'POST', headers: { ...auth, 'content-type': type, 'x-openrosa-version': '1.0' }, body });
      if (res.status !== 201) throw new Error(`submission ${n}: ${res.status} ${await res.text()}`);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  console.log(`ingestion: ${ingestTotal} OpenRosa submissions of a ${questions}-question form, ${clients} concurrent clients: `
    + `${(ingestTotal / seconds).toFixed(0)} submissions/s (${seconds.toFixed(1)} s)`);

  // Exports: grow the table to each size by copying stored submissions in SQL, then download the zip.
  for (const size of exportSizes) {
    await db.owner.query(`
      with src as (select d.* from app_public.submission_defs d order by d.id limit 1),
      s as (
        insert into app_public.submissions (form_id, instance_id, submitter_id)
        select src.form_id, 'uuid:copy-' || g, src.submitter_id from src,
               generate_series((select count(*) from app_public.submissions) + 1, $1) g
        returning id, instance_id)
      insert into app_public.submission_defs (submission_id, form_id, form_def_id, instance_id, xml, data, submitter_id)
      select s.id, src.form_id, src.form_def_id, s.instance_id, src.xml, src.data, src.submitter_id from s, src`, [size]);
    if (global.gc) global.gc();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/projects/${project.id}/forms/bench/submissions.csv.zip`, { headers: auth });
    let bytes = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    clearInterval(sampler);
    console.log(`export: ${size} submissions → ${mb(bytes)} zip in ${((performance.now() - t0) / 1000).toFixed(1)} s; `
      + `RSS ${mb(before)} before, peak ${mb(peak)} (+${mb(peak - before)})`);
  }

  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await db.close();
} finally {
  const c = new pg.Client({ connectionString: cluster.url('postgres') });
  await c.connect();
  await c.query(`drop database if exists ${name} with (force)`);
  await c.end();
  await cluster.stop();
}
