// Entity jobs: creating/updating entities from a submission version, force-processing held offline
// updates after Central's 5 days, and purging entities 30 days after deletion. The logic is in SQL
// (migrations/current/52-entity-submissions.sql, 51-entities.sql, 59-entity-concurrency.sql); each job is one
// transaction, run again when it fails on a deadlock or lock timeout.
import type { JobHelpers, Task, TaskList } from 'graphile-worker';

interface ProcessPayload { submissionDefId: number; event?: string; actorId?: number | null }

function isProcessPayload(p: unknown): p is ProcessPayload {
  return typeof (p as ProcessPayload)?.submissionDefId === 'number';
}

/** Deadlock, serialization failure, lock timeout: the transaction did nothing and may simply run again. */
const transientCodes = new Set(['40P01', '40001', '55P03']);
const maxAttempts = 5;

/**
 * Runs one statement in its own transaction, again (at most maxAttempts times, after a short random pause) when
 * it fails for a transient reason; other errors, and the last transient one, fail the job for graphile-worker to
 * retry later. Safe because the SQL is idempotent (a processed submission is skipped under its entities' locks).
 */
async function runTransaction(helpers: JobHelpers, sql: string, values: unknown[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await helpers.withPgClient(async (client) => {
        await client.query('begin');
        try {
          await client.query(sql, values);
          await client.query('commit');
        } catch (err) {
          await client.query('rollback');
          throw err;
        }
      });
      return;
    } catch (err) {
      if (attempt >= maxAttempts || !transientCodes.has((err as { code?: string }).code ?? '')) throw err;
      helpers.logger.warn(`${helpers.job.task_identifier}: ${(err as Error).message}; attempt ${attempt + 1} of ${maxAttempts}`);
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt + Math.random() * 50));
    }
  }
}

/** Queued for every stored submission version (and approval) of a form declaring entities. Never fails on bad data. */
export const submission__process_entities: Task = async (payload, helpers) => {
  if (!isProcessPayload(payload)) throw new Error('submission__process_entities needs {submissionDefId}');
  await runTransaction(helpers, 'select app_hidden.process_submission_entities($1, $2, $3)',
    [payload.submissionDefId, payload.event ?? 'submission.create', payload.actorId ?? null]);
};

/** Hourly: held offline updates whose predecessors never arrived are applied after 5 days. */
export const entities__process_backlog: Task = async (_payload, helpers) => {
  await runTransaction(helpers, 'select app_hidden.process_entity_backlog()', []);
};

/** Daily: entities deleted (or in datasets deleted) more than 30 days ago are purged. */
export const entities__purge: Task = async (_payload, helpers) => {
  await helpers.query('select app_hidden.purge_entities()');
};

export const entityTasks: TaskList = { submission__process_entities, entities__process_backlog, entities__purge };
export const entityCrontab = ['15 * * * * entities__process_backlog', '45 3 * * * entities__purge'];
