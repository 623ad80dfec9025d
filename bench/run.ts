// npm run bench: Fieldbase's throughput on a generated 250-question form (bench/form.ts), measured over HTTP on
// the loopback interface against a server running in a child process (bench/server.ts), whose memory (RSS)
// is sampled during each request:
//   - OpenRosa ingestion, 16 concurrent clients (submissions/s);
//   - CSV export (.csv, root table) and .csv.zip, for 1,000 and 10,000 submissions, with server memory;
//   - OData: the full Submissions feed and the repeat table (rows/s), `$top=100&$skip=5000&$count=true`;
//   - entities, when the API exists: bulk-creating 10,000, reading them over OData, the entity-list CSV.
// The submissions beyond those ingested over HTTP are copied in SQL from the ingested ones (then ANALYZE).
// Uses DATABASE_URL's server (or an embedded PostgreSQL) and a database of its own, dropped at the end.
// Knobs: BENCH_INGEST (submissions sent over HTTP, default 1000), BENCH_SIZES (default "1000,10000"),
// BENCH_ENTITIES (default 10000), BENCH_TIMEOUT (seconds, default 900), FIELDBASE_BENCH_CURRENT (like
// FIELDBASE_TEST_CURRENT: only these migrations/current/ files).
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { externalCluster, startEmbeddedCluster, type Cluster } from '../db/cluster.ts';
import { migrateDatabase, migrationsWithCurrent } from '../db/migrate.ts';
import { formXml, submissionXml, membersOf, questionCount, xmlFormId } from './form.ts';

const clients = 16;
const ingestTotal = Number(process.env.BENCH_INGEST ?? 1000);
const sizes = (process.env.BENCH_SIZES ?? '1000,10000').split(',').map(Number).sort((a, b) => a - b);
const entityCount = Number(process.env.BENCH_ENTITIES ?? 10000);
const timeoutSeconds = Number(process.env.BENCH_TIMEOUT ?? 900);

interface Memory { before: number; peak: number; after: number; heapPeak: number }
interface Result { what: string; n: number; seconds: number; rate?: string; memory?: Memory; note?: string }
const results: Result[] = [];

const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)}`;
const perSecond = (n: number, seconds: number, unit: string) => `${Math.round(n / seconds).toLocaleString('en-US')} ${unit}/s`;

function report(r: Result) {
  results.push(r);
  const memory = r.memory ? `; server RSS ${mb(r.memory.before)} → peak ${mb(r.memory.peak)} → ${mb(r.memory.after)} MB (V8 heap peak ${mb(r.memory.heapPeak)} MB)` : '';
  console.log(`  ${r.what}: ${r.n.toLocaleString('en-US')} in ${r.seconds.toFixed(2)} s${r.rate ? ` (${r.rate})` : ''}${memory}${r.note ? ` — ${r.note}` : ''}`);
}

function printTable() {
  const rows = results.map((r) => [r.what, r.n.toLocaleString('en-US'), `${r.seconds.toFixed(2)} s`, r.rate ?? '',
    r.memory ? `${mb(r.memory.before)} / ${mb(r.memory.peak)} / ${mb(r.memory.after)}` : '', r.memory ? mb(r.memory.heapPeak) : '', r.note ?? '']);
  const header = ['measurement', 'N', 'time', 'rate', 'server RSS MB before/peak/after', 'heap peak MB', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(`\nFieldbase benchmark — ${questionCount}-question form, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), Node ${process.version}`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

async function onDatabase(cluster: Cluster, sql: string) {
  const client = new pg.Client({ connectionString: cluster.url('postgres') });
  await client.connect();
  try { await client.query(sql); } finally { await client.end(); }
}

////////////////////////////////////////////////////////////////////////////////
// The server process

interface ServerProcess { url: string; child: ChildProcess; memory<T>(fn: () => Promise<T>): Promise<{ value: T; memory: Memory }> }

function nextMessage(child: ChildProcess, type: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type: string }) => { if (m.type === type) { done(); resolve(m); } };
    const onExit = (code: number | null) => { done(); reject(new Error(`the server exited (${code}) while waiting for ${type}`)); };
    const done = () => { child.off('message', onMessage); child.off('exit', onExit); };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

async function startServerProcess(databaseUrl: string): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--import', './server/polyfill.ts', 'bench/server.ts'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_DATABASE_URL: databaseUrl, GRAPHILE_ENV: 'production', FIELDBASE_WORKERS: 'off' },
  });
  const { port } = await nextMessage(child, 'listening');
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    async memory(fn) {
      child.send({ type: 'mark' });
      await nextMessage(child, 'marked');
      const value = await fn();
      child.send({ type: 'read' });
      const { before, peak, after, heapPeak } = await nextMessage(child, 'memory');
      return { value, memory: { before, peak, after, heapPeak } };
    },
  };
}

////////////////////////////////////////////////////////////////////////////////
// HTTP

let auth: Record<string, string> = {};
const deadline = AbortSignal.timeout(timeoutSeconds * 1000);

async function call(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) }, signal: deadline });
}

async function json<T = any>(url: string, init: RequestInit = {}): Promise<T> {
  const res = await call(url, init);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${init.method ?? 'GET'} ${url}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

const post = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Downloads url, counting bytes and occurrences of `marker` (rows), as a streaming client would. */
async function download(url: string, marker: string | null): Promise<{ status: number; bytes: number; count: number; seconds: number; text: string }> {
  const started = performance.now();
  const res = await call(url);
  let bytes = 0;
  let count = 0;
  let carry = '';
  const decoder = new TextDecoder();
  let head = '';
  let tail = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    if (marker === null) continue;
    const text = carry + decoder.decode(chunk, { stream: true });
    if (head.length < 2000) head += text.slice(0, 2000);
    for (let i = text.indexOf(marker); i >= 0; i = text.indexOf(marker, i + marker.length)) count++;
    carry = text.slice(Math.max(0, text.length - marker.length + 1));
    tail = (tail + text).slice(-2000);
  }
  const seconds = (performance.now() - started) / 1000;
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${head.slice(0, 500)}`);
  return { status: res.status, bytes, count, seconds, text: head + tail };
}

function multipart(xml: string) {
  const boundary = 'fieldbasebenchboundary';
  const body = `--${boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; filename="submission.xml"\r\n`
    + `Content-Type: text/xml\r\n\r\n${xml}\r\n--${boundary}--\r\n`;
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

////////////////////////////////////////////////////////////////////////////////
// The steps

async function ingest(server: ServerProcess, projectId: number, from: number, to: number): Promise<number> {
  let next = from;
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    for (let n = next++; n < to; n = next++) {
      const { body, type } = multipart(submissionXml(n));
      const res = await call(`${server.url}/v1/projects/${projectId}/submission`,
        { method: 'POST', headers: { 'content-type': type, 'x-openrosa-version': '1.0' }, body });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`submission ${n}: ${res.status} ${text}`);
    }
  }));
  return (performance.now() - started) / 1000;
}

/** Grows the form's submissions to `size` by copying the ingested ones in SQL (new instanceIDs), then ANALYZE. */
async function growTo(owner: pg.Pool, formId: number, size: number): Promise<number> {
  const { rows: [{ n }] } = await owner.query('select count(*)::int as n from app_public.submissions where form_id = $1 and not draft', [formId]);
  if (n < size) {
    await owner.query(`
      with src as (
        select d.id, row_number() over (order by d.id) - 1 as k
        from app_public.submission_defs d join app_public.submissions s on s.id = d.submission_id
        where s.form_id = $1 and not s.draft and d.current and s.instance_id not like 'uuid:bench-copy-%'),
      plan as (
        select 'uuid:bench-copy-' || g as instance_id, src.id as def_id
        from generate_series($2::int, $3::int - 1) g join src on src.k = g % (select count(*) from src)),
      fresh as (
        insert into app_public.submissions (form_id, instance_id, submitter_id, device_id, user_agent)
        select $1, plan.instance_id, d.submitter_id, d.device_id, d.user_agent
        from plan join app_public.submission_defs d on d.id = plan.def_id
        returning id, instance_id)
      insert into app_public.submission_defs (submission_id, form_id, form_def_id, instance_id, instance_name, xml, data,
                                              submitter_id, device_id, user_agent, current)
      select fresh.id, d.form_id, d.form_def_id, fresh.instance_id, d.instance_name, replace(d.xml, d.instance_id, fresh.instance_id),
             jsonb_set(d.data, '{meta,instanceID}', to_jsonb(fresh.instance_id)), d.submitter_id, d.device_id, d.user_agent, true
      from fresh join plan using (instance_id) join app_public.submission_defs d on d.id = plan.def_id`, [formId, n, size]);
  }
  await owner.query('analyze');
  const { rows: [after] } = await owner.query('select count(*)::int as n from app_public.submissions where form_id = $1 and not draft', [formId]);
  return after.n;
}

async function measureDownload(server: ServerProcess, what: string, url: string, marker: string | null, expected: number, rowsOf: (count: number) => number) {
  const { value, memory } = await server.memory(() => download(url, marker));
  const rows = marker === null ? expected : rowsOf(value.count);
  const note = `${(value.bytes / 1024 / 1024).toFixed(1)} MB${rows !== expected ? `; expected ${expected} rows` : ''}`;
  report({ what, n: rows, seconds: value.seconds, rate: perSecond(rows, value.seconds, 'rows'), memory, note });
}

async function submissionsBench(server: ServerProcess, owner: pg.Pool, projectId: number) {
  const upload = await call(`${server.url}/v1/projects/${projectId}/forms?publish=true`,
    { method: 'POST', headers: { 'content-type': 'application/xml' }, body: formXml() });
  if (upload.status !== 200) throw new Error(`form upload: ${upload.status} ${await upload.text()}`);
  const { rows: [{ id: formId }] } = await owner.query('select id from app_public.forms where xml_form_id = $1', [xmlFormId]);

  console.log(`OpenRosa ingestion, ${clients} concurrent clients:`);
  const warmup = Math.min(ingestTotal, clients * 2);
  await ingest(server, projectId, 0, warmup); // connections, JIT: not timed
  const seconds = await ingest(server, projectId, warmup, ingestTotal);
  report({ what: 'OpenRosa submission (16 clients)', n: ingestTotal - warmup, seconds, rate: perSecond(ingestTotal - warmup, seconds, 'submissions'), note: `${(submissionXml(1).length / 1024).toFixed(1)} kB XML each` });

  const form = `${server.url}/v1/projects/${projectId}/forms/${xmlFormId}`;
  for (const size of sizes) {
    const n = await growTo(owner, formId, size);
    const { rows: [{ members }] } = await owner.query(
      `select coalesce(sum(jsonb_array_length(d.data->'members')), 0)::int as members from app_public.submission_defs d
       join app_public.submissions s on s.id = d.submission_id where s.form_id = $1 and d.current and jsonb_typeof(d.data->'members') = 'array'`, [formId]);
    console.log(`${n.toLocaleString('en-US')} submissions (${members.toLocaleString('en-US')} repeat rows):`);
    await measureDownload(server, 'CSV export (.csv, root)', `${form}/submissions.csv`, '\n', n, (lines) => lines - 1);
    await measureDownload(server, 'CSV export (.csv.zip, root + repeat)', `${form}/submissions.csv.zip`, null, n, (c) => c);
    await measureDownload(server, 'OData Submissions, full feed', `${form}.svc/Submissions`, '{"__id":"', n, (c) => c);
    await measureDownload(server, 'OData repeat table, full feed', `${form}.svc/Submissions.members`, '{"__id":"', members, (c) => c);
    if (n > 5000) {
      const page = await server.memory(() => download(`${form}.svc/Submissions?$top=100&$skip=5000&$count=true`, '{"__id":"'));
      const count = /"@odata.count":(\d+)/.exec(page.value.text)?.[1];
      report({ what: 'OData $top=100&$skip=5000&$count=true', n: page.value.count, seconds: page.value.seconds, memory: page.memory,
        note: `@odata.count ${count ?? 'missing'}` });
    }
  }
  // Sanity: the ingested rows are all there (none lost under concurrency).
  const { rows: [{ ingested }] } = await owner.query(
    `select count(*)::int as ingested from app_public.submissions where form_id = $1 and instance_id not like 'uuid:bench-copy-%'`, [formId]);
  if (ingested !== ingestTotal) throw new Error(`expected ${ingestTotal} ingested submissions, found ${ingested}`);
}

async function entitiesBench(server: ServerProcess, projectId: number) {
  const base = `${server.url}/v1/projects/${projectId}/datasets`;
  const created = await call(base, post({ name: 'trees' }));
  if (created.status === 404) { console.log('entities: no datasets API yet, skipped'); return; }
  if (created.status !== 200) throw new Error(`dataset: ${created.status} ${await created.text()}`);
  const properties = ['species', 'circumference', 'height', 'planted', 'location'];
  for (const name of properties) await json(`${base}/trees/properties`, post({ name }));
  console.log(`${entityCount.toLocaleString('en-US')} entities:`);
  const entities = Array.from({ length: entityCount }, (_, i) => ({
    label: `Tree ${i}`,
    data: { species: ['oak', 'ash', 'elm', 'pine'][i % 4], circumference: String(20 + (i % 300)), height: String(2 + (i % 40)),
      planted: `20${String(10 + (i % 15))}-0${1 + (i % 9)}-1${i % 10}`, location: `${(i % 90).toFixed(4)} ${(i % 180).toFixed(4)} 0 5` },
  }));
  const bulk = await server.memory(async () => {
    const started = performance.now();
    await json(`${base}/trees/entities`, post({ entities, source: { name: 'bench.csv', size: entityCount } }));
    return (performance.now() - started) / 1000;
  });
  report({ what: 'Entities bulk create (one request)', n: entityCount, seconds: bulk.value, rate: perSecond(entityCount, bulk.value, 'entities'), memory: bulk.memory });
  const svc = await call(`${base}/trees.svc/Entities?$top=1`);
  await svc.text();
  if (svc.status === 200) {
    await measureDownload(server, 'OData Entities, full feed', `${base}/trees.svc/Entities`, '{"__id":"', entityCount, (c) => c);
  } else {
    console.log(`  OData Entities: not served yet (${svc.status}), skipped`);
  }
  await measureDownload(server, 'Entity list CSV (entities.csv)', `${base}/trees/entities.csv`, '\n', entityCount, (lines) => lines - 1);
}

////////////////////////////////////////////////////////////////////////////////

const cluster = process.env.DATABASE_URL
  ? externalCluster(process.env.DATABASE_URL)
  : await startEmbeddedCluster(path.resolve('.data/bench'), Number(process.env.EMBEDDED_BENCH_PG_PORT ?? 54331));
const name = `fieldbase_bench_${process.pid}`;
let server: ServerProcess | null = null;
let owner: pg.Pool | null = null;
let exitCode = 1;

// Bounded in time: past the deadline, requests abort and everything is cleaned up.
const hardStop = setTimeout(() => { console.error(`bench: over ${timeoutSeconds} s, stopping`); server?.child.kill('SIGKILL'); }, (timeoutSeconds + 30) * 1000);
hardStop.unref();

try {
  await onDatabase(cluster, `drop database if exists ${name} with (force)`);
  await onDatabase(cluster, `create database ${name}`);
  console.log('migrating a scratch database…');
  await migrateDatabase(cluster.url(name), cluster.url('postgres'), { includeCurrent: true, folder: migrationsWithCurrent(process.env.FIELDBASE_BENCH_CURRENT) });
  owner = new pg.Pool({ connectionString: cluster.url(name), max: 2 });
  const ignore = (err: Error) => console.error('bench database connection:', err.message);
  owner.on('error', ignore);
  owner.on('connect', (client) => client.on('error', ignore));
  await owner.query(`begin; select set_config('fieldbase.system', 'on', true), set_config('fieldbase.bcrypt_cost', '4', true);
    select app_public.create_user('bench@getodk.org', 'bench password 1', 'Bench'); select app_public.promote_to_admin('bench@getodk.org'); commit`);
  server = await startServerProcess(cluster.url(name));
  const login = await json<{ token: string }>(`${server.url}/v1/sessions`, post({ email: 'bench@getodk.org', password: 'bench password 1' }));
  auth = { authorization: `Bearer ${login.token}` };
  const project = await json<{ id: number }>(`${server.url}/v1/projects`, post({ name: 'bench' }));

  await submissionsBench(server, owner, project.id);
  await entitiesBench(server, project.id);
  printTable();
  exitCode = 0;
} catch (err) {
  console.error('bench failed:', err);
  if (results.length > 0) printTable();
} finally {
  if (server && server.child.exitCode === null) {
    server.child.send({ type: 'stop' });
    await Promise.race([new Promise((r) => server!.child.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  }
  await owner?.end().catch(() => {});
  if (process.env.BENCH_KEEP === 'on') console.log(`kept the database: ${cluster.url(name)}`);
  else await onDatabase(cluster, `drop database if exists ${name} with (force)`).catch((err) => console.error('could not drop', name, err));
  await cluster.stop();
}
process.exit(exitCode);
