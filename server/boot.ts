// Start-up shared by the server, the worker process and the command line: find the database, migrate it.
import { openCluster, type Cluster } from '../db/cluster.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { openDatabase, type Database } from './db.ts';
import { loadConfig, type Config } from './config.ts';

export interface Booted {
  config: Config;
  cluster: Cluster;
  db: Database;
  shutdown(): Promise<void>;
}

export async function boot(): Promise<Booted> {
  const config = loadConfig();
  const { cluster, database } = await openCluster();
  const ownerUrl = cluster.url(database);
  await migrateDatabase(ownerUrl, cluster.url('postgres'), { includeCurrent: process.env.FIELDBASE_APPLY_CURRENT === 'on' });
  const db = await openDatabase(ownerUrl, config);
  return {
    config, cluster, db,
    async shutdown() { await db.close(); await cluster.stop(); },
  };
}
