// Connections: the owner pool (migrations, workers, bootstrap) and the request pool, which logs in as
// fieldbase_authenticator and runs every request's transaction as fieldbase_request with the actor set.
import pg from 'pg';
import type { Config } from './config.ts';

export type Db = pg.PoolClient;

export interface RequestContext {
  actorId: number | null;
  notes?: string | null;
  userAgent?: string | null;
}

export interface Database {
  owner: pg.Pool;
  requests: pg.Pool;
  /** Runs fn in one transaction as the request role acting for ctx.actorId; rolls back on error. */
  withActor<T>(ctx: RequestContext, fn: (db: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));


/** The authenticator login role is cluster-wide: set its password only when it does not already work. */
async function ensureAuthenticatorPassword(owner: pg.Pool, requestUrl: string, password: string): Promise<void> {
  const probe = new pg.Client({ connectionString: requestUrl });
  try {
    await probe.connect();
    await probe.end();
  } catch {
    await owner.query(`alter role fieldbase_authenticator password ${pg.escapeLiteral(password)}`);
  }
}

export async function openDatabase(ownerUrl: string, config: Pick<Config, 'bcryptCost' | 'sessionLifetime'>): Promise<Database> {
  let closing = false;
  const logPoolError = (err: Error) => { if (!closing) console.error('database connection error:', err.message); };
  const owner = new pg.Pool({ connectionString: ownerUrl, max: 4 });
  owner.on('error', logPoolError);
  owner.on('connect', (client) => client.on('error', logPoolError));
  const { rows: [secret] } = await owner.query(
    "select value from app_private.settings where name = 'authenticator_password'");
  const requestUrl = new URL(ownerUrl);
  requestUrl.username = 'fieldbase_authenticator';
  requestUrl.password = secret.value;
  await ensureAuthenticatorPassword(owner, requestUrl.toString(), secret.value);
  const requests = new pg.Pool({
    connectionString: requestUrl.toString(),
    max: Number(process.env.DB_POOL_SIZE ?? 20),
    options: `-c fieldbase.bcrypt_cost=${config.bcryptCost} -c fieldbase.session_lifetime=${config.sessionLifetime.replace(/\s+/g, '\\ ')}`,
  });
  requests.on('error', logPoolError);
  // A connection ended under a checked-out client (server shutdown, a dropped database) must not crash the process.
  requests.on('connect', (client) => client.on('error', logPoolError));

  async function withActor<T>(ctx: RequestContext, fn: (db: Db) => Promise<T>): Promise<T> {
    const client = await requests.connect();
    try {
      // One round trip opens the transaction and sets the identity (set_config('role', …, true) is
      // `set local role`). A simple query takes no parameters, so the values are quoted literals.
      const setting = (name: string, value: string) => `set_config(${pg.escapeLiteral(name)}, ${pg.escapeLiteral(value)}, true)`;
      await client.query(`begin; select ${[
        setting('role', 'fieldbase_request'),
        setting('fieldbase.actor_id', ctx.actorId === null ? '' : String(ctx.actorId)),
        setting('fieldbase.action_notes', ctx.notes ?? ''),
        setting('fieldbase.user_agent', ctx.userAgent ?? ''),
      ].join(', ')}`);
      const result = await fn(client);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  return {
    owner,
    requests,
    withActor,
    async close() { closing = true; await Promise.all([owner.end(), requests.end()]); },
  };
}
