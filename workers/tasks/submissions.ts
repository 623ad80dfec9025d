// submissions__purge: removes submissions soft-deleted more than 30 days ago (scheduled daily, as Central).
import type { Task } from 'graphile-worker';

export const submissions__purge: Task = async (_payload, helpers) => {
  await helpers.query(`select app_hidden.purge_submissions(interval '30 days')`);
};
