// The graphile-worker runner: every task Fieldbase queues, and the scheduled ones.
import { Logger, run, runOnce, type Runner, type TaskList } from 'graphile-worker';
import type pg from 'pg';
import { mail__send } from './tasks/mail.ts';
import { sessions__trim } from './tasks/housekeeping.ts';
import { submissions__purge } from './tasks/submissions.ts';
import { entityTasks, entityCrontab } from './tasks/entities.ts';
import { enketo__create } from './tasks/enketo.ts';

export const taskList: TaskList = { mail__send, sessions__trim, submissions__purge };
Object.assign(taskList, entityTasks);
Object.assign(taskList, { enketo__create });

const crontab = [
  '0 * * * * sessions__trim',
  '30 3 * * * submissions__purge',
  ...entityCrontab,
].join('\n');

export async function startWorkers(pgPool: pg.Pool, options: { pollInterval?: number } = {}): Promise<Runner> {
  return run({ pgPool, taskList, crontab, concurrency: 4, pollInterval: options.pollInterval ?? 1000, noHandleSignals: true, logger: quietLogger() });
}

/** Processes every pending job, including jobs those enqueue, then returns (waits for jobs other runners hold). */
export async function drainJobs(pgPool: pg.Pool): Promise<void> {
  for (;;) {
    await runOnce({ pgPool, taskList, logger: quietLogger() });
    const { rows: [{ n }] } = await pgPool.query(
      `select count(*)::int as n from graphile_worker.jobs where run_at <= now() and attempts < max_attempts`);
    if (n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function quietLogger() {
  return new Logger(() => (level, message) => {
    if (level === 'error' || (level === 'warning' && !/crontab/i.test(message))) console.error(`[worker] ${message}`);
  });
}
