// Entity jobs: creating/updating entities from a submission version, force-processing held offline
// updates after Central's 5 days, and purging entities 30 days after deletion. The logic is in SQL
// (migrations/current/52-entity-submissions.sql, 51-entities.sql); each job is one transaction.
import type { Task, TaskList } from 'graphile-worker';

interface ProcessPayload { submissionDefId: number; event?: string; actorId?: number | null }

function isProcessPayload(p: unknown): p is ProcessPayload {
  return typeof (p as ProcessPayload)?.submissionDefId === 'number';
}

/** Queued for every stored submission version (and approval) of a form declaring entities. Never fails on bad data. */
export const submission__process_entities: Task = async (payload, helpers) => {
  if (!isProcessPayload(payload)) throw new Error('submission__process_entities needs {submissionDefId}');
  await helpers.withPgClient(async (client) => {
    await client.query('begin');
    try {
      await client.query('select app_hidden.process_submission_entities($1, $2, $3)',
        [payload.submissionDefId, payload.event ?? 'submission.create', payload.actorId ?? null]);
      await client.query('commit');
    } catch (err) {
      await client.query('rollback');
      throw err;
    }
  });
};

/** Hourly: held offline updates whose predecessors never arrived are applied after 5 days. */
export const entities__process_backlog: Task = async (_payload, helpers) => {
  await helpers.query('select app_hidden.process_entity_backlog()');
};

/** Daily: entities deleted (or in datasets deleted) more than 30 days ago are purged. */
export const entities__purge: Task = async (_payload, helpers) => {
  await helpers.query('select app_hidden.purge_entities()');
};

export const entityTasks: TaskList = { submission__process_entities, entities__process_backlog, entities__purge };
export const entityCrontab = ['15 * * * * entities__process_backlog', '45 3 * * * entities__purge'];
