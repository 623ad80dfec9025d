// A real Fieldbase for one test file: its own database cloned from the migrated template,
// the HTTP app on an ephemeral port, and Central's canonical fixtures (alice, bob, chelsea).
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import crypto from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../../server/db.ts';
import { createApp } from '../../server/app.ts';
import { loadConfig, type Config } from '../../server/config.ts';
import { drainJobs } from '../../workers/runner.ts';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  token?: string | null;
  headers?: Record<string, string>;
  raw?: string | Buffer;
}

export interface TestServer {
  url: string;
  db: Database;
  /** Owner connection to this file's database, for SQL-level assertions. */
  sql: pg.Pool;
  databaseUrl: string;
  request<T = any>(path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  /** Creates a user as the system (like the CLI) and returns its actor id. */
  createUser(email: string, options?: { password?: string; admin?: boolean; displayName?: string }): Promise<number>;
  login(email: string, password?: string): Promise<string>;
  drainJobs(): Promise<void>;
  close(): Promise<void>;
}

export const defaultPassword = 'correct horse battery';

function databaseUrl(name: string): string {
  const url = new URL(process.env.FIELDBASE_TEST_ROOT_URL!);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function startServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  const template = process.env.FIELDBASE_TEST_TEMPLATE;
  if (!template || !process.env.FIELDBASE_TEST_ROOT_URL) throw new Error('Run the tests with `npm test`, which prepares the database.');
  const name = `${template}_${crypto.randomBytes(4).toString('hex')}`;
  const root = new pg.Client({ connectionString: databaseUrl('postgres') });
  await root.connect();
  await root.query(`create database ${pg.escapeIdentifier(name)} template ${pg.escapeIdentifier(template)}`);
  await root.end();

  const config: Config = { ...loadConfig({}), bcryptCost: 4, port: 0, ...overrides };
  const ownerUrl = databaseUrl(name);
  const db = await openDatabase(ownerUrl, config);
  const app = await createApp(db, config);
  const server: Server = await new Promise((resolve) => { const s = app.listen(0, () => resolve(s)); });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sql = new pg.Pool({ connectionString: ownerUrl, max: 2 });
  // Clients still closing when close() drops the database get terminated: that is expected, not a failure.
  const ignore = () => {};
  sql.on('error', ignore);
  sql.on('connect', (client) => client.on('error', ignore));

  async function request<T = any>(path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let payload: string | Buffer | undefined = options.raw;
    if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(url + path, { method: options.method ?? 'GET', headers, body: payload as BodyInit | undefined });
    const text = await res.text();
    let body: any = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) body = JSON.parse(text);
    return { status: res.status, body, text, headers: res.headers };
  }

  async function createUser(email: string, options: { password?: string; admin?: boolean; displayName?: string } = {}) {
    const client = await sql.connect();
    try {
      await client.query('begin');
      await client.query(`select set_config('fieldbase.system', 'on', true), set_config('fieldbase.bcrypt_cost', '4', true)`);
      const { rows: [u] } = await client.query('select actor_id from app_public.create_user($1, $2, $3)',
        [email, options.password ?? defaultPassword, options.displayName ?? null]);
      if (options.admin) await client.query('select app_public.promote_to_admin($1)', [email]);
      await client.query('commit');
      return u.actor_id as number;
    } catch (err) {
      await client.query('rollback');
      throw err;
    } finally {
      client.release();
    }
  }

  async function login(email: string, password = defaultPassword) {
    const res = await request('/v1/sessions', { method: 'POST', body: { email, password } });
    if (res.status !== 200) throw new Error(`login of ${email} failed: ${res.status} ${res.text}`);
    return res.body.token as string;
  }

  return {
    url, db, sql, databaseUrl: ownerUrl, request, createUser, login,
    drainJobs: () => drainJobs(db.owner),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await sql.end();
      await db.close();
      const client = new pg.Client({ connectionString: databaseUrl('postgres') });
      await client.connect();
      await client.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
      await client.end();
    },
  };
}

export interface Fixtures {
  server: TestServer;
  alice: { id: number; token: string };
  bob: { id: number; token: string };
  chelsea: { id: number; token: string };
}

/** Central's canonical fixtures: alice (admin), bob and chelsea (no server role). */
export async function withFixtures(): Promise<Fixtures> {
  const server = await startServer();
  const aliceId = await server.createUser('alice@getodk.org', { admin: true, displayName: 'Alice' });
  const bobId = await server.createUser('bob@getodk.org', { displayName: 'Bob' });
  const chelseaId = await server.createUser('chelsea@getodk.org', { displayName: 'Chelsea' });
  const [alice, bob, chelsea] = await Promise.all(
    ['alice@getodk.org', 'bob@getodk.org', 'chelsea@getodk.org'].map((e) => server.login(e)));
  return { server, alice: { id: aliceId, token: alice }, bob: { id: bobId, token: bob }, chelsea: { id: chelseaId, token: chelsea } };
}
