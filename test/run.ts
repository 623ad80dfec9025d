// npm test: a real PostgreSQL (DATABASE_URL's server, else an embedded one), one migrated template
// database, then ava; each test file clones the template into a database of its own.
import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { externalCluster, freePort, startEmbeddedCluster, type Cluster } from '../db/cluster.ts';
import { migrateDatabase, migrationsWithCurrent } from '../db/migrate.ts';

async function dropDatabase(cluster: Cluster, name: string) {
  const client = new pg.Client({ connectionString: cluster.url('postgres') });
  await client.connect();
  try {
    await client.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [name]);
    await client.query(`drop database if exists ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

async function createDatabase(cluster: Cluster, name: string) {
  const client = new pg.Client({ connectionString: cluster.url('postgres') });
  await client.connect();
  try { await client.query(`create database ${pg.escapeIdentifier(name)}`); } finally { await client.end(); }
}

const cluster = process.env.DATABASE_URL
  ? externalCluster(process.env.DATABASE_URL)
  : await startEmbeddedCluster(path.resolve('.data/test'), Number(process.env.EMBEDDED_TEST_PG_PORT ?? await freePort()));

const template = `fieldbase_test_${process.pid}`;
let exitCode = 1;
try {
  await dropDatabase(cluster, template);
  await createDatabase(cluster, template);
  await migrateDatabase(cluster.url(template), cluster.url('postgres'), { includeCurrent: true, folder: migrationsWithCurrent(process.env.FIELDBASE_TEST_CURRENT) });

  const avaArgs = process.argv.slice(2);
  const child = spawn(process.execPath, [path.resolve('node_modules/ava/entrypoints/cli.mjs'), ...avaArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, FIELDBASE_TEST_ROOT_URL: cluster.url('postgres'), FIELDBASE_TEST_TEMPLATE: template },
  });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; process.stdout.write(chunk); });
  exitCode = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));

  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const count = (re: RegExp) => Number(re.exec(plain)?.[1] ?? 0);
  // ava prints "N tests passed" only when none failed: count its per-test marks instead.
  const marks = (mark: string) => plain.split('\n').filter((line) => line.trimStart().startsWith(mark)).length;
  const passed = marks('✔');
  const failed = marks('✘') + count(/(\d+) uncaught exceptions?/) + count(/(\d+) unhandled rejections?/);
  if (exitCode !== 0 && failed === 0) console.log('ava exited with an error before counting its tests');
  console.log(`${passed} passed, ${failed || (exitCode === 0 ? 0 : 1)} failed`);
} finally {
  await dropDatabase(cluster, template).catch(() => {});
  await cluster.stop();
}
process.exit(exitCode);
