// Applies graphile-migrate's committed migrations (and, for development and tests, current/).
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { migrate, watch, Logger, type Settings } from 'graphile-migrate';
import { runMigrations, Logger as WorkerLogger } from 'graphile-worker';

export const migrationsFolder = path.resolve(import.meta.dirname, '..', 'migrations');

/**
 * migrations/ with only the current/ files whose names start with one of `prefixes` (a comma list, e.g.
 * "01,10"), copied to a temporary folder; the real folder when none are given. Lets tests and benchmarks run
 * while someone else's work in progress in current/ does not apply yet.
 */
export function migrationsWithCurrent(prefixes: string | undefined): string {
  const only = prefixes?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!only) return migrationsFolder;
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldbase-migrations-'));
  fs.cpSync(migrationsFolder, folder, { recursive: true });
  for (const file of fs.readdirSync(path.join(folder, 'current'))) {
    if (!only.some((prefix) => file.startsWith(prefix))) fs.rmSync(path.join(folder, 'current', file));
  }
  return folder;
}

function settings(connectionString: string, rootConnectionString: string, folder = migrationsFolder): Settings {
  return {
    connectionString,
    rootConnectionString,
    migrationsFolder: folder,
    pgSettings: { search_path: 'public' },
    logger: quietLogger,
  };
}

// graphile-migrate logs every step; keep only warnings and errors.
const quietLogger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(message);
});

function hasCurrentMigration(folder: string): boolean {
  const dir = path.join(folder, 'current');
  const file = path.join(folder, 'current.sql');
  if (fs.existsSync(dir)) return fs.readdirSync(dir).some((f) => f.endsWith('.sql') && fs.statSync(path.join(dir, f)).size > 0);
  return fs.existsSync(file) && fs.readFileSync(file, 'utf8').replace(/--.*$/gm, '').trim() !== '';
}

/** graphile-migrate refuses to run while another process migrates the same database: wait for it. */
async function whenUnlocked(run: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (!/exclusive lock/.test((err as Error).message) || attempt >= 100) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
    }
  }
}

/** Fieldbase's migrations, then graphile-worker's schema (add_job must exist before requests queue jobs). */
export async function migrateDatabase(url: string, rootUrl: string, { includeCurrent = false, folder = migrationsFolder } = {}): Promise<void> {
  await runMigrations({ connectionString: url, logger: new WorkerLogger(() => () => {}) });
  await whenUnlocked(() => migrate(settings(url, rootUrl, folder)));
  if (includeCurrent && hasCurrentMigration(folder)) await watch(settings(url, rootUrl, folder), true);
}
