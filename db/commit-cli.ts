// npm run migrate:commit -- -m "message": turns migrations/current/ into the next committed migration.
// Uses DATABASE_URL's server for a scratch database (made afresh each time) and its shadow.
import { commit } from 'graphile-migrate';
import { parseArgs } from 'node:util';
import path from 'node:path';
import pg from 'pg';
import { externalCluster, ensureDatabase } from './cluster.ts';

const { values } = parseArgs({ options: { message: { type: 'string', short: 'm' } } });
const server = process.env.DATABASE_URL;
if (!server) { console.error('Set DATABASE_URL to a PostgreSQL server this command may create databases on.'); process.exit(1); }
const at = (db: string) => { const u = new URL(server); u.pathname = `/${db}`; return u.toString(); };
// A scratch database left from an earlier commit may hold migrations that were since rewritten: start clean.
const root = new pg.Client({ connectionString: at('postgres') });
await root.connect();
await root.query('drop database if exists fieldbase_migrate_dev with (force)');
await root.end();
await ensureDatabase(externalCluster(server), 'fieldbase_migrate_dev');
await commit({
  connectionString: at('fieldbase_migrate_dev'),
  shadowConnectionString: at('fieldbase_migrate_shadow'),
  rootConnectionString: at('postgres'),
  migrationsFolder: path.resolve(import.meta.dirname, '..', 'migrations'),
}, values.message ?? null);
