// The command line against a real database: create, promote, set password, and clear failures.
import test from 'ava';
import { execFile } from 'node:child_process';
import { startServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
test.before(async () => { server = await startServer(); });
test.after.always(() => server?.close());

function cli(args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', '--import', './server/polyfill.ts', 'server/cli.ts', ...args],
      { env: { ...process.env, DATABASE_URL: server.databaseUrl, BCRYPT_COST: '4' } },
      (error, stdout, stderr) => resolve({ code: error ? (error.code as number) ?? 1 : 0, stdout, stderr }));
    child.stdin!.end(stdin);
  });
}

test('user-create, user-promote and user-set-password manage the first administrator', async (t) => {
  const created = await cli(['--email', 'admin@example.org', 'user-create'], 'first admin password\n');
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /Created user admin@example.org/);
  const token = await server.login('admin@example.org', 'first admin password');
  t.deepEqual((await server.request('/v1/users', { token })).body, []);

  const promoted = await cli(['--email', 'admin@example.org', 'user-promote']);
  t.is(promoted.code, 0, promoted.stderr);
  t.true((await server.request('/v1/users', { token })).body.some((u: any) => u.email === 'admin@example.org'));

  const reset = await cli(['--email', 'admin@example.org', 'user-set-password'], 'another long password\n');
  t.is(reset.code, 0, reset.stderr);
  t.truthy(await server.login('admin@example.org', 'another long password'));
});

test('the command line fails clearly on bad input', async (t) => {
  const weak = await cli(['--email', 'weak@example.org', 'user-create'], 'short\n');
  t.is(weak.code, 1);
  t.regex(weak.stderr, /does not meet the required length/);
  await cli(['--email', 'twice@example.org', 'user-create'], 'a long enough password\n');
  const duplicate = await cli(['--email', 'twice@example.org', 'user-create'], 'a long enough password\n');
  t.is(duplicate.code, 1);
  t.regex(duplicate.stderr, /already exists/);
  const unknown = await cli(['--email', 'ghost@example.org', 'user-promote']);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /No user with the email address ghost@example.org/);
  const noEmail = await cli(['user-create']);
  t.is(noEmail.code, 1);
  const badCommand = await cli(['--email', 'x@example.org', 'user-explode']);
  t.is(badCommand.code, 1);
  t.regex(badCommand.stderr, /Unknown command/);
});

test('npm run worker -- --once drains the queue, including jobs queued by jobs, and exits', async (t) => {
  await server.sql.query(`select app_hidden.send_mail('queued@example.org', 'passwordChanged')`);
  const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--import', './server/polyfill.ts', 'workers/main.ts', '--once'],
      { env: { ...process.env, DATABASE_URL: server.databaseUrl } },
      (error, _stdout, stderr) => resolve({ code: error ? 1 : 0, stderr }));
  });
  t.is(result.code, 0, result.stderr);
  const { rows } = await server.sql.query(`select template from app_private.mail_log where recipient = 'queued@example.org'`);
  t.deepEqual(rows, [{ template: 'passwordChanged' }]);
  // Other tests in this file queue mail concurrently: only this test's job must be gone.
  const { rows: left } = await server.sql.query(
    `select last_error from graphile_worker._private_jobs where payload->>'to' = 'queued@example.org'`);
  t.deepEqual(left, []);
});
