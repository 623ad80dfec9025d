// Applies graphile-migrate's committed migrations (and, for development and tests, current/).
import path from 'node:path';
import fs from 'node:fs';
import { migrate, watch, Logger, type Settings } from 'graphile-migrate';
import { runMigrations, Logger as WorkerLogger } from 'graphile-worker';

const migrationsFolder = path.resolve(import.meta.dirname, '..', 'migrations');

function settings(connectionString: string, rootConnectionString: string): Settings {
  return {
    connectionString,
    rootConnectionString,
    migrationsFolder,
    pgSettings: { search_path: 'public' },
    logger: quietLogger,
  };
}

// graphile-migrate logs every step; keep only warnings and errors.
const quietLogger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(message);
});

function hasCurrentMigration(): boolean {
  const dir = path.join(migrationsFolder, 'current');
  const file = path.join(migrationsFolder, 'current.sql');
  if (fs.existsSync(dir)) return fs.readdirSync(dir).some((f) => f.endsWith('.sql') && fs.statSync(path.join(dir, f)).size > 0);
  return fs.existsSync(file) && fs.readFileSync(file, 'utf8').replace(/--.*$/gm, '').trim() !== '';
}

/** Fieldbase's migrations, then graphile-worker's schema (add_job must exist before requests queue jobs). */
export async function migrateDatabase(url: string, rootUrl: string, { includeCurrent = false } = {}): Promise<void> {
  await runMigrations({ connectionString: url, logger: new WorkerLogger(() => () => {}) });
  await migrate(settings(url, rootUrl));
  if (includeCurrent && hasCurrentMigration()) await watch(settings(url, rootUrl), true);
}
