// npm run cli -- --email <email> <user-create | user-promote | user-set-password>
// Administration from the command line, like Central's odk-cmd. The password is read from stdin
// (piped) or prompted for (a terminal). Acts as the system, through the same SQL functions the API uses.
import { parseArgs } from 'node:util';
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { openCluster } from '../db/cluster.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { loadConfig } from './config.ts';
import pg from 'pg';
import { toProblem } from './errors.ts';

const usage = `Usage: npm run cli -- --email <email> <command>

Commands:
  user-create         create a user (asks for a password, or reads it from stdin)
  user-promote        make an existing user a server administrator
  user-set-password   set a user's password (asks for it, or reads it from stdin)`;

async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    let data = '';
    for await (const chunk of process.stdin) data += chunk;
    return data.replace(/\r?\n$/, '');
  }
  // Prompt without echoing what is typed.
  let muted = false;
  const output = new Writable({ write(chunk, _enc, cb) { if (!muted) process.stdout.write(chunk); cb(); } });
  const rl = readline.createInterface({ input: process.stdin, output, terminal: true });
  const answer = new Promise<string>((resolve) => rl.question('Password: ', resolve));
  muted = true;
  const password = await answer;
  rl.close();
  process.stdout.write('\n');
  return password;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ options: { email: { type: 'string', short: 'u' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  const command = positionals[0];
  if (values.help || !command) { console.log(usage); return values.help ? 0 : 1; }
  const email = values.email;
  if (!email) { console.error('Please give the user\'s email address with --email.'); return 1; }
  if (!['user-create', 'user-promote', 'user-set-password'].includes(command)) {
    console.error(`Unknown command "${command}".\n\n${usage}`); return 1;
  }
  const password = command === 'user-promote' ? null : await readPassword();

  const config = loadConfig();
  const { cluster, database } = await openCluster();
  const url = cluster.url(database);
  await migrateDatabase(url, cluster.url('postgres'));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin');
    await client.query(`select set_config('fieldbase.system', 'on', true), set_config('fieldbase.bcrypt_cost', $1, true)`,
      [String(config.bcryptCost)]);
    const { rows: [user] } = await client.query(
      'select u.actor_id from app_public.users u where u.email = $1::citext and not u.deleted', [email]);
    if (command === 'user-create') {
      await client.query('select app_public.create_user($1, $2)', [email, password]);
      console.log(`Created user ${email}.`);
    } else if (!user) {
      console.error(`No user with the email address ${email} exists.`);
      await client.query('rollback');
      return 1;
    } else if (command === 'user-promote') {
      await client.query('select app_public.promote_to_admin($1)', [email]);
      console.log(`${email} is now an administrator.`);
    } else {
      await client.query('select app_hidden.set_password($1, $2)', [user.actor_id, password]);
      console.log(`Set the password of ${email}.`);
    }
    await client.query('commit');
    return 0;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    const problem = toProblem(err);
    console.error(problem.code === 500.1 ? String(err) : problem.message);
    return 1;
  } finally {
    await client.end();
    await cluster.stop();
  }
}

process.exitCode = await main();
