// npm run worker: background jobs alone (more can run on other machines). `-- --once` drains the queue and exits.
import { boot } from '../server/boot.ts';
import { startWorkers, drainJobs } from './runner.ts';

const { db, shutdown } = await boot();
if (process.argv.includes('--once')) {
  await drainJobs(db.owner);
  await shutdown();
} else {
  const runner = await startWorkers(db.owner);
  console.log('Fieldbase workers are running; Ctrl-C to stop.');
  const stop = async () => { await runner.stop(); await runner.promise.catch(() => {}); await shutdown(); process.exit(0); };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}
