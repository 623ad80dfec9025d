// sessions__trim: drops expired sessions and old login failures (scheduled hourly).
import type { Task } from 'graphile-worker';

export const sessions__trim: Task = async (_payload, helpers) => {
  await helpers.query('select app_hidden.trim_expired_sessions()');
};
