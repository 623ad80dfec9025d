// npm start: database (embedded unless DATABASE_URL), migrations, HTTP API, workers. Ctrl-C stops it all.
import { boot } from './boot.ts';
import { createApp } from './app.ts';
import { startWorkers } from '../workers/runner.ts';

const { config, db, shutdown } = await boot();
const runner = config.runWorkers ? await startWorkers(db.owner) : null;
const app = await createApp(db, config);
const server = app.listen(config.port, () => {
  const url = config.baseUrl ?? `http://localhost:${config.port}`;
  console.log(`Fieldbase is serving the ODK Central API at ${url}/v1`);
  console.log(runner ? 'Background workers are running in this process.' : 'Workers are off here (FIELDBASE_WORKERS=off): run `npm run worker`.');
  console.log('Create the first administrator with:  npm run cli -- --email you@example.org user-create && npm run cli -- --email you@example.org user-promote');
});

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: shutting down…`);
  server.close();
  server.closeAllConnections();
  if (runner) { await runner.stop(); await runner.promise.catch(() => {}); }
  await shutdown();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
