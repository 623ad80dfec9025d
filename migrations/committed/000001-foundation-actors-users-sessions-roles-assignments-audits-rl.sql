--! Previous: -
--! Hash: sha1:e69073f340fba6e88f6142384d8ce2132cac3e2f
--! Message: Foundation: actors, users, sessions, roles, assignments, audits, RLS

--! split: 1-schemas.sql
/*
 * Schemas by audience, and the database roles every request runs under.
 *   app_public  – tables and functions clients (REST routes, GraphQL, DBAs) see; RLS on every table.
 *   app_hidden  – helpers the request role may call but nobody needs to browse.
 *   app_private – secrets (password hashes, session tokens) and security-definer internals.
 * fieldbase_request is the only role requests run as; the server logs in as
 * fieldbase_authenticator (which can do nothing but become fieldbase_request).
 */
drop schema if exists app_public cascade;
drop schema if exists app_hidden cascade;
drop schema if exists app_private cascade;

create extension if not exists pgcrypto;
create extension if not exists citext;
create extension if not exists pg_trgm;

do $$
begin
  if not exists (select from pg_roles where rolname = 'fieldbase_request') then
    create role fieldbase_request nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'fieldbase_authenticator') then
    create role fieldbase_authenticator login noinherit;
  end if;
end
$$;
grant fieldbase_request to fieldbase_authenticator;

create schema app_public;
create schema app_hidden;
create schema app_private;
comment on schema app_public is 'Fieldbase data as clients see it; every table has row-level security.';
comment on schema app_hidden is 'Fieldbase helper functions the request role may call.';
comment on schema app_private is 'Fieldbase secrets and security-definer internals; never granted to the request role.';

grant usage on schema app_public, app_hidden to fieldbase_request;
grant usage on schema public to fieldbase_request;
revoke all on schema app_private from public;
alter default privileges revoke execute on functions from public;

--! split: 2-actors.sql
/*
 * Actees, actors, users, roles, assignments: Central's authorization model.
 * Every object that can be acted upon has an actee id (a uuid string; '*' is the whole server).
 * A role's verbs granted on an actee also hold on everything beneath it (its parent chain),
 * and a grant on a species name (e.g. 'form') holds on every actee of that species.
 */
create table app_public.actees (
  id text primary key,
  species text not null,
  parent text references app_public.actees (id)
);
comment on table app_public.actees is 'Everything permissions can be granted on: the server (*), users, projects, forms, app users…';
create index actees_parent_idx on app_public.actees (parent);

insert into app_public.actees (id, species) values ('*', '*');

create table app_public.actors (
  id serial primary key,
  type text not null check (type in ('user', 'field_key', 'public_link', 'singleUse')),
  actee_id text not null unique references app_public.actees (id),
  display_name text not null check (length(display_name) between 1 and 255),
  meta jsonb,
  created_at timestamptz(3) not null default now(),
  updated_at timestamptz(3),
  deleted_at timestamptz(3),
  expires_at timestamptz(3)
);
comment on table app_public.actors is 'Anyone who can act: web users, App Users (field_key), Public Links and single-use actors.';
create index actors_type_idx on app_public.actors (type) where deleted_at is null;

create table app_public.users (
  actor_id int primary key references app_public.actors (id),
  email citext not null check (email ~ '^[^@\s]+@[^@\s]+$' and length(email) <= 320),
  deleted boolean not null default false,
  last_login_at timestamptz(3)
);
comment on table app_public.users is 'Web users (Central''s Users): an actor with an email address.';
comment on column app_public.users.deleted is 'Mirrors actors.deleted_at so a deleted user''s email can be reused.';
create unique index users_email_live_key on app_public.users (email) where not deleted;
create index users_email_trgm_idx on app_public.users using gin (email gin_trgm_ops);
create index actors_display_name_trgm_idx on app_public.actors using gin (display_name gin_trgm_ops);

create table app_public.roles (
  id serial primary key,
  name text not null,
  system text unique,
  verbs jsonb not null default '[]',
  created_at timestamptz(3) not null default now(),
  updated_at timestamptz(3)
);
comment on table app_public.roles is 'Named sets of verbs; system roles are Central''s (admin, manager, viewer, formfill, app-user, pub-link, pwreset).';

create table app_public.assignments (
  actor_id int not null references app_public.actors (id),
  role_id int not null references app_public.roles (id),
  actee_id text not null references app_public.actees (id),
  primary key (actor_id, role_id, actee_id)
);
comment on table app_public.assignments is 'Grants of a role to an actor on an actee (''*'' for server-wide).';
create index assignments_actee_idx on app_public.assignments (actee_id);
create index assignments_role_idx on app_public.assignments (role_id);

create table app_public.projects (
  id serial primary key,
  name text not null check (length(name) between 1 and 1000),
  description text,
  archived boolean not null default false,
  key_id int,
  actee_id text not null unique references app_public.actees (id),
  created_at timestamptz(3) not null default now(),
  updated_at timestamptz(3),
  deleted_at timestamptz(3)
);
comment on table app_public.projects is 'Projects group forms, datasets, App Users and project-level role assignments.';

create table app_public.user_site_preferences (
  user_id int not null references app_public.users (actor_id),
  property_name text not null check (length(property_name) between 1 and 200),
  property_value jsonb not null,
  primary key (user_id, property_name)
);
comment on table app_public.user_site_preferences is 'A user''s own site-wide UI preferences.';

create table app_public.user_project_preferences (
  user_id int not null references app_public.users (actor_id),
  project_id int not null references app_public.projects (id),
  property_name text not null check (length(property_name) between 1 and 200),
  property_value jsonb not null,
  primary key (user_id, project_id, property_name)
);
comment on table app_public.user_project_preferences is 'A user''s own per-project UI preferences.';

create table app_public.audits (
  id bigserial primary key,
  actor_id int references app_public.actors (id),
  action text not null,
  actee_id text,
  details jsonb,
  notes text,
  logged_at timestamptz(3) not null default clock_timestamp(),
  processed timestamptz(3),
  failures int not null default 0
);
comment on table app_public.audits is 'Append-only record of every action, with Central''s action names.';
create index audits_logged_at_idx on app_public.audits (logged_at);
create index audits_actee_idx on app_public.audits (actee_id, logged_at);
create index audits_action_idx on app_public.audits (action, logged_at);

/* Secrets live one-to-one beside the rows they belong to, in a schema the request role cannot use. */
create table app_private.user_passwords (
  actor_id int primary key references app_public.users (actor_id),
  password_hash text not null
);

create table app_private.sessions (
  token text primary key,
  actor_id int not null references app_public.actors (id),
  csrf text not null,
  created_at timestamptz(3) not null default now(),
  expires_at timestamptz(3) not null
);
create index sessions_actor_idx on app_private.sessions (actor_id);

create table app_private.login_failures (
  email citext not null,
  failed_at timestamptz not null default now()
);
create index login_failures_email_idx on app_private.login_failures (email, failed_at);

create table app_private.settings (
  name text primary key,
  value text not null
);
comment on table app_private.settings is 'Instance secrets, e.g. the password the server''s authenticator login uses.';
insert into app_private.settings (name, value)
  values ('authenticator_password', encode(gen_random_bytes(24), 'hex'));

--! split: 3-permissions.sql
/*
 * Who is acting, and may they? The server sets fieldbase.actor_id per transaction (set local);
 * every policy and API function asks actor_can(verb, actee), the one permission check.
 * Problems are raised with SQLSTATE 'FB' + HTTP status (e.g. FB404), Central's code (404.1) as the hint
 * and details as JSON; server/errors.ts turns them into Central's error body.
 */

create function app_hidden.current_actor_id() returns int
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select nullif(current_setting('fieldbase.actor_id', true), '')::int
$$;
comment on function app_hidden.current_actor_id() is 'The actor the current transaction acts for (null when anonymous).';

create function app_hidden.problem(code numeric, message text, details jsonb default null) returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception using
    errcode = 'FB' || floor(code)::text,
    message = message,
    hint = code::text,
    detail = coalesce(details, '{}'::jsonb)::text;
end
$$;
comment on function app_hidden.problem(numeric, text, jsonb) is 'Raises one of Central''s numbered problems; server/errors.ts turns it into the HTTP error body.';

create function app_hidden.actee_chain(target text) returns text[]
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  -- The actee itself, its species, every ancestor, and the server ('*').
  with recursive chain(id, species, parent) as (
    select a.id, a.species, a.parent from app_public.actees a where a.id = target
    union all
    select a.id, a.species, a.parent from app_public.actees a join chain c on a.id = c.parent
  )
  select array_agg(distinct x) from (
    select id as x from chain union all select species from chain union all select '*'
  ) ids
$$;

create function app_hidden.acting_as_system() returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  -- The command line (npm run cli) logs in as the database owner and says so; requests never can,
  -- because they log in as fieldbase_authenticator (session_user cannot be changed by set role).
  select coalesce(current_setting('fieldbase.system', true), '') = 'on'
     and exists (select 1 from pg_roles r where r.rolname = session_user
                 and (r.rolsuper or r.oid = (select datdba from pg_database where datname = current_database())))
$$;
comment on function app_hidden.acting_as_system() is 'True for owner-run administration (the CLI), which acts with every right.';

create function app_hidden.actor_can(verb text, actee text) returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.acting_as_system() or exists (
    select 1
    from app_public.assignments a
    join app_public.roles r on r.id = a.role_id
    join app_public.actors me on me.id = a.actor_id
    where a.actor_id = app_hidden.current_actor_id()
      and me.deleted_at is null
      and (me.expires_at is null or me.expires_at > now())
      and r.verbs ? verb
      and a.actee_id = any (app_hidden.actee_chain(actee))
  )
  -- Users may always read and update themselves.
  or (verb in ('user.read', 'user.update') and exists (
    select 1 from app_public.actors me
    where me.id = app_hidden.current_actor_id() and me.actee_id = actee and me.deleted_at is null
  ))
$$;
comment on function app_hidden.actor_can(text, text) is 'May the current actor perform verb on actee (directly, through a parent, its species, or server-wide)?';

create function app_hidden.can_on_actor(verb text, target_actor int) returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select target_actor = app_hidden.current_actor_id()
      or app_hidden.actor_can(verb, (select actee_id from app_public.actors where id = target_actor))
$$;
comment on function app_hidden.can_on_actor(text, int) is 'actor_can on an actor''s own actee; a definer helper so policies need not join actors.';

create function app_hidden.assert_can(verb text, actee text) returns void
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if actee is null or not exists (select 1 from app_public.actees where id = actee) then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  elsif not app_hidden.actor_can(verb, actee) then
    perform app_hidden.problem(403.1, 'The authentication you provided does not have rights to perform that action.');
  end if;
end
$$;
comment on function app_hidden.assert_can(text, text) is 'Raises 404.1 for an unknown actee, 403.1 when the actor may not perform verb on it.';

create function app_hidden.actor_verbs(actee text default '*') returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(jsonb_agg(distinct v order by v), '[]'::jsonb)
  from app_public.assignments a
  join app_public.roles r on r.id = a.role_id
  cross join lateral jsonb_array_elements_text(r.verbs) v
  where a.actor_id = app_hidden.current_actor_id()
    and a.actee_id = any (app_hidden.actee_chain(actee))
$$;
comment on function app_hidden.actor_verbs(text) is 'Every verb the current actor holds on actee (server-wide by default).';

create function app_hidden.new_actee(species text, parent text default null) returns text
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into app_public.actees (id, species, parent) values (gen_random_uuid()::text, species, parent)
  returning id
$$;

create function app_hidden.log_audit(action text, actee text, details jsonb default null) returns void
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into app_public.audits (actor_id, action, actee_id, details, notes)
  values (app_hidden.current_actor_id(), action, actee, details,
          nullif(current_setting('fieldbase.action_notes', true), ''))
$$;
comment on function app_hidden.log_audit(text, text, jsonb) is 'Appends an audit row for the current actor, with the request''s X-Action-Notes.';

create function app_hidden.new_token() returns text
language sql volatile
set search_path = pg_catalog, public, pg_temp
as $$
  -- 64 URL-safe characters, as Central's tokens.
  select translate(encode(gen_random_bytes(48), 'base64'), E'+/=\n', '!$')
$$;

create function app_hidden.hash_password(password text) returns text
language sql volatile
set search_path = pg_catalog, public, pg_temp
as $$
  select crypt(password, gen_salt('bf', coalesce(nullif(current_setting('fieldbase.bcrypt_cost', true), '')::int, 12)))
$$;
comment on function app_hidden.hash_password(text) is 'bcrypt; the cost comes from fieldbase.bcrypt_cost (tests lower it).';

create function app_hidden.check_password_length(password text) returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if password is null or length(password) < 10 then
    perform app_hidden.problem(400.21, 'The password or passphrase provided does not meet the required length.');
  end if;
  if length(password) > 72 then
    perform app_hidden.problem(400.38, 'The password or passphrase provided exceeds the maximum length.');
  end if;
end
$$;

grant execute on function
  app_hidden.current_actor_id(), app_hidden.actor_can(text, text), app_hidden.can_on_actor(text, int),
  app_hidden.assert_can(text, text), app_hidden.actor_verbs(text), app_hidden.problem(numeric, text, jsonb)
to fieldbase_request;

--! split: 4-sessions.sql
/*
 * Sessions: logging in, resolving credentials, logging out.
 * These run before an actor is known, so they are security definer and reveal nothing on failure.
 */

create function app_hidden.password_matches(target_actor int, password text) returns boolean
language sql stable security definer
set search_path = pg_catalog, public, pg_temp
as $$
  select exists (
    select 1 from app_private.user_passwords p
    where p.actor_id = target_actor and p.password_hash = crypt(password, p.password_hash)
  )
$$;

create function app_hidden.login_throttled(login_email text) returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  -- Five failures for one email within five minutes lock it for the rest of that window.
  select count(*) >= 5 from app_private.login_failures
  where email = login_email::public.citext and failed_at > now() - interval '5 minutes'
$$;

create function app_hidden.authenticate_password(login_email text, password text) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  found_actor int;
begin
  if app_hidden.login_throttled(login_email) then
    perform app_hidden.problem(429.1, 'Too many failed login attempts. Please wait a few minutes before trying again.');
  end if;
  select u.actor_id into found_actor
  from app_public.users u join app_public.actors a on a.id = u.actor_id
  where u.email = login_email::citext and not u.deleted and a.deleted_at is null;
  if found_actor is null or not app_hidden.password_matches(found_actor, password) then
    insert into app_private.login_failures (email) values (login_email);
    return null;
  end if;
  delete from app_private.login_failures where email = login_email::citext;
  return found_actor;
end
$$;
comment on function app_hidden.authenticate_password(text, text) is 'The user''s actor id when email and password match, else null (and the failure counts toward throttling).';

create function app_hidden.start_session(session_actor int, lifetime interval) returns app_private.sessions
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into app_private.sessions (token, actor_id, csrf, expires_at)
  values (app_hidden.new_token(), session_actor, app_hidden.new_token(), now() + lifetime)
  returning *
$$;

create type app_public.session_info as (
  token text,
  csrf text,
  actor_id int,
  created_at timestamptz,
  expires_at timestamptz
);
comment on type app_public.session_info is 'A session as the API shows it to its owner.';

create function app_public.log_in(email text, password text) returns app_public.session_info
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  user_actor int;
  s app_private.sessions;
begin
  if coalesce(email, '') = '' or coalesce(password, '') = '' then
    perform app_hidden.problem(400.3, format('Required parameters missing. Expected (email, password), got (email: %s, password: %s).',
      coalesce(email, 'undefined'), case when password is null then 'undefined' else '[redacted]' end),
      jsonb_build_object('expected', jsonb_build_array('email', 'password')));
  end if;
  user_actor := app_hidden.authenticate_password(email, password);
  if user_actor is null then
    -- The failure must persist (for throttling), so it is not raised here: the caller sees null.
    return null;
  end if;
  s := app_hidden.start_session(user_actor,
    coalesce(nullif(current_setting('fieldbase.session_lifetime', true), ''), '24 hours')::interval);
  update app_public.users set last_login_at = now() where actor_id = user_actor;
  perform set_config('fieldbase.actor_id', user_actor::text, true);
  perform app_hidden.log_audit('user.session.create', (select actee_id from app_public.actors where id = user_actor),
    jsonb_build_object('userAgent', nullif(current_setting('fieldbase.user_agent', true), '')));
  return (s.token, s.csrf, s.actor_id, s.created_at, s.expires_at)::app_public.session_info;
end
$$;
comment on function app_public.log_in(text, text) is 'Starts a 24-hour session for a user; null when the credentials are wrong.';

create function app_hidden.session_by_token(session_token text) returns app_public.session_info
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.token, s.csrf, s.actor_id, s.created_at, s.expires_at
  from app_private.sessions s join app_public.actors a on a.id = s.actor_id
  where s.token = session_token and s.expires_at > now() and a.deleted_at is null
    and (a.expires_at is null or a.expires_at > now())
$$;
comment on function app_hidden.session_by_token(text) is 'The live session for a bearer token, cookie or /key/ token; null when unknown, expired or its actor deleted.';

create function app_public.end_session(session_token text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_private.sessions;
  owner app_public.actors;
begin
  select * into s from app_private.sessions where token = session_token;
  if s is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  select * into owner from app_public.actors where id = s.actor_id;
  -- A web user may end their own sessions; anyone else (App Users included) needs session.end on the owner.
  if not ((owner.id = app_hidden.current_actor_id() and owner.type = 'user')
          or app_hidden.actor_can('session.end', owner.actee_id)) then
    perform app_hidden.problem(403.1, 'The authentication you provided does not have rights to perform that action.');
  end if;
  delete from app_private.sessions where token = session_token;
end
$$;
comment on function app_public.end_session(text) is 'Logs a session out, or revokes an App User or Public Link token.';

create function app_hidden.trim_expired_sessions() returns void
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  delete from app_private.sessions where expires_at < now();
  delete from app_private.login_failures where failed_at < now() - interval '1 day';
$$;
comment on function app_hidden.trim_expired_sessions() is 'Housekeeping run by a scheduled worker job.';

grant execute on function
  app_public.log_in(text, text), app_public.end_session(text),
  app_hidden.session_by_token(text), app_hidden.authenticate_password(text, text)
to fieldbase_request;

--! split: 5-users.sql
/*
 * Users: creation, profile changes, passwords (direct and by emailed reset), deletion.
 * Each function checks the verb with assert_can and writes its own audit row.
 */

create function app_hidden.enqueue(task text, payload jsonb) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  -- graphile-worker's add_job has no grants for the request role; jobs commit or roll back with the request.
  perform graphile_worker.add_job(task, payload::json);
end
$$;
comment on function app_hidden.enqueue(text, jsonb) is 'Queues a graphile-worker job in the current transaction.';

create function app_hidden.send_mail(recipient text, template text, data jsonb default '{}') returns void
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.enqueue('mail__send', jsonb_build_object('to', recipient, 'template', template, 'data', data))
$$;
comment on function app_hidden.send_mail(text, text, jsonb) is 'Queues an email from one of the templates in workers/tasks/mail.ts.';

create table app_private.mail_log (
  id bigserial primary key,
  recipient text not null,
  template text not null,
  subject text not null,
  body text not null,
  sent_at timestamptz not null default now()
);
comment on table app_private.mail_log is 'Every email the mail worker sent (or, without SMTP, would have sent).';

create function app_hidden.unique_violation(fields text, vals text) returns void
language sql
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.problem(409.3, format('A resource already exists with %s value(s) of %s.', fields, vals),
    jsonb_build_object('fields', string_to_array(fields, ','), 'values', string_to_array(vals, ',')))
$$;

create function app_hidden.live_user(user_id int) returns app_public.users
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  u app_public.users;
begin
  select * into u from app_public.users where actor_id = user_id and not deleted;
  if u is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return u;
end
$$;

create function app_hidden.actee_of(actor int) returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$ select actee_id from app_public.actors where id = actor $$;

create function app_public.create_user(email text, password text default null, display_name text default null)
returns app_public.users
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  new_actor app_public.actors;
  new_user app_public.users;
begin
  perform app_hidden.assert_can('user.create', '*');
  if coalesce(trim(email), '') = '' then
    perform app_hidden.problem(400.2, 'Required parameter email missing.', '{"field":"email"}');
  end if;
  if email !~ '^[^@\s]+@[^@\s]+$' then
    perform app_hidden.problem(400.8, format('Unexpected email value %s; Please provide a valid email address.', email),
      jsonb_build_object('field', 'email', 'value', email, 'reason', 'Please provide a valid email address.'));
  end if;
  if exists (select 1 from app_public.users u where u.email = create_user.email::citext and not u.deleted) then
    perform app_hidden.unique_violation('email', email);
  end if;
  if password is not null then
    perform app_hidden.check_password_length(password);
  end if;
  insert into app_public.actors (type, actee_id, display_name)
    values ('user', app_hidden.new_actee('user'), coalesce(nullif(trim(display_name), ''), email))
    returning * into new_actor;
  insert into app_public.users (actor_id, email) values (new_actor.id, email) returning * into new_user;
  if password is not null then
    insert into app_private.user_passwords (actor_id, password_hash)
      values (new_actor.id, app_hidden.hash_password(password));
  end if;
  perform app_hidden.log_audit('user.create', new_actor.actee_id,
    jsonb_build_object('data', jsonb_build_object('email', new_user.email, 'displayName', new_actor.display_name)));
  if password is null then
    -- Without a password the welcome mail carries a token to claim the account with.
    perform app_hidden.send_mail(email, 'accountCreated',
      jsonb_build_object('token', app_hidden.issue_reset_token(new_actor.id)));
  else
    perform app_hidden.send_mail(email, 'accountCreatedWithPassword');
  end if;
  return new_user;
end
$$;
comment on function app_public.create_user(text, text, text) is 'Creates a web user (user.create on the server); the password is optional.';

create function app_public.update_user(user_id int, new_email text default null, new_display_name text default null)
returns app_public.users
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  u app_public.users := app_hidden.live_user(user_id);
  changes jsonb := '{}';
begin
  perform app_hidden.assert_can('user.update', app_hidden.actee_of(user_id));
  if new_email is not null and new_email::citext is distinct from u.email then
    if new_email !~ '^[^@\s]+@[^@\s]+$' then
      perform app_hidden.problem(400.8, format('Unexpected email value %s; Please provide a valid email address.', new_email),
        jsonb_build_object('field', 'email', 'value', new_email, 'reason', 'Please provide a valid email address.'));
    end if;
    if exists (select 1 from app_public.users x where x.email = new_email::citext and not x.deleted) then
      perform app_hidden.unique_violation('email', new_email);
    end if;
    update app_public.users set email = new_email where actor_id = user_id returning * into u;
    changes := changes || jsonb_build_object('email', new_email);
  end if;
  if new_display_name is not null then
    if trim(new_display_name) = '' then
      perform app_hidden.problem(400.8, 'Unexpected displayName value ; The display name may not be empty.',
        jsonb_build_object('field', 'displayName', 'value', new_display_name, 'reason', 'The display name may not be empty.'));
    end if;
    changes := changes || jsonb_build_object('displayName', new_display_name);
    update app_public.actors set display_name = new_display_name where id = user_id;
  end if;
  update app_public.actors set updated_at = now() where id = user_id;
  perform app_hidden.log_audit('user.update', app_hidden.actee_of(user_id), jsonb_build_object('data', changes));
  return u;
end
$$;
comment on function app_public.update_user(int, text, text) is 'Changes a user''s email or display name (user.update; users may always update themselves).';

create function app_hidden.set_password(user_id int, password text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform app_hidden.check_password_length(password);
  insert into app_private.user_passwords (actor_id, password_hash)
    values (user_id, app_hidden.hash_password(password))
    on conflict (actor_id) do update set password_hash = excluded.password_hash;
  update app_public.actors set updated_at = now() where id = user_id;
  perform app_hidden.log_audit('user.update', app_hidden.actee_of(user_id), '{"data":{"password":true}}');
end
$$;

create function app_public.change_password(user_id int, old_password text, new_password text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.live_user(user_id);
  perform app_hidden.assert_can('user.update', app_hidden.actee_of(user_id));
  if old_password is null or new_password is null then
    perform app_hidden.problem(400.3, 'Required parameters missing. Expected (old, new).',
      jsonb_build_object('expected', jsonb_build_array('old', 'new')));
  end if;
  if not app_hidden.password_matches(user_id, old_password) then
    perform app_hidden.problem(401.2, 'Could not authenticate with the provided credentials.');
  end if;
  perform app_hidden.set_password(user_id, new_password);
  perform app_hidden.send_mail((select email::text from app_public.users where actor_id = user_id), 'passwordChanged');
end
$$;
comment on function app_public.change_password(int, text, text) is 'Sets a new password after re-proving the old one.';

create type app_public.password_reset as (
  email text,
  display_name text,
  token text
);

create function app_hidden.issue_reset_token(user_id int) returns text
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  target app_public.actors;
  reset_actor app_public.actors;
begin
  select * into target from app_public.actors where id = user_id;
  -- As Central: a reset token is the session of a single-use actor holding pwreset on the user.
  insert into app_public.actors (type, actee_id, display_name, expires_at)
    values ('singleUse', app_hidden.new_actee('singleUse'), 'Reset token for ' || target.id, now() + interval '1 day')
    returning * into reset_actor;
  insert into app_public.assignments (actor_id, role_id, actee_id)
    select reset_actor.id, r.id, target.actee_id from app_public.roles r where r.system = 'pwreset';
  return (app_hidden.start_session(reset_actor.id, interval '1 day')).token;
end
$$;

create function app_public.initiate_password_reset(reset_email text, invalidate boolean default false)
returns app_public.password_reset
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  u app_public.users;
  target app_public.actors;
  token text;
begin
  select * into u from app_public.users where email = reset_email::citext and not deleted;
  if u is null then
    perform app_hidden.send_mail(reset_email, 'accountResetDeleted');
    return (reset_email, null, null)::app_public.password_reset;
  end if;
  select * into target from app_public.actors where id = u.actor_id;
  if invalidate then
    perform app_hidden.assert_can('user.password.invalidate', target.actee_id);
    delete from app_private.user_passwords where actor_id = u.actor_id;
    delete from app_private.sessions where actor_id = u.actor_id;
  end if;
  token := app_hidden.issue_reset_token(u.actor_id);
  perform app_hidden.send_mail(u.email::text, 'accountReset', jsonb_build_object('token', token));
  return (u.email::text, target.display_name, token)::app_public.password_reset;
end
$$;
comment on function app_public.initiate_password_reset(text, boolean) is 'Creates a one-day reset token for the user with this email (null token when none exists).';

create function app_public.complete_password_reset(new_password text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  me int := app_hidden.current_actor_id();
  target_actee text;
  target_user int;
begin
  select a.actee_id into target_actee
  from app_public.assignments a join app_public.roles r on r.id = a.role_id
  where a.actor_id = me and r.system = 'pwreset';
  select id into target_user from app_public.actors where actee_id = target_actee and type = 'user' and deleted_at is null;
  if target_user is null then
    perform app_hidden.problem(403.1, 'The authentication you provided does not have rights to perform that action.');
  end if;
  perform app_hidden.set_password(target_user, new_password);
  -- The token is single use.
  delete from app_private.sessions where actor_id = me;
  update app_public.actors set deleted_at = now() where id = me;
end
$$;
comment on function app_public.complete_password_reset(text) is 'Sets the password of the user the current reset token was issued for, then spends the token.';

create function app_public.delete_user(user_id int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  target text;
begin
  perform app_hidden.live_user(user_id);
  target := app_hidden.actee_of(user_id);
  perform app_hidden.assert_can('user.delete', target);
  update app_public.actors set deleted_at = now() where id = user_id;
  update app_public.users set deleted = true where actor_id = user_id;
  delete from app_public.assignments where actor_id = user_id;
  delete from app_private.sessions where actor_id = user_id;
  perform app_hidden.log_audit('user.delete', target);
end
$$;
comment on function app_public.delete_user(int) is 'Soft-deletes a user, ending their sessions and assignments.';

create function app_public.search_users(q text) returns setof app_public.users
language plpgsql stable security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  -- Anyone may find a user by exact email (to assign them); only user.list may search or list.
  if app_hidden.actor_can('user.list', '*') then
    if q is null or q = '' then
      return query select u.* from app_public.users u join app_public.actors a on a.id = u.actor_id
        where not u.deleted order by a.display_name, u.email;
    else
      return query select u.* from app_public.users u join app_public.actors a on a.id = u.actor_id
        where not u.deleted and (u.email = q::citext or u.email::text % q or a.display_name % q
                                 or u.email::text ilike '%' || q || '%' or a.display_name ilike '%' || q || '%')
        order by greatest(similarity(u.email::text, q), similarity(a.display_name, q)) desc, u.actor_id;
    end if;
  elsif app_hidden.current_actor_id() is not null and q is not null then
    return query select u.* from app_public.users u where u.email = q::citext and not u.deleted;
  end if;
end
$$;
comment on function app_public.search_users(text) is 'Lists users (user.list), by trigram similarity when q is given; exact-email lookups for everyone signed in.';

grant execute on function
  app_public.create_user(text, text, text), app_public.update_user(int, text, text),
  app_public.change_password(int, text, text), app_public.initiate_password_reset(text, boolean),
  app_public.complete_password_reset(text), app_public.delete_user(int), app_public.search_users(text)
to fieldbase_request;

--! split: 6-roles.sql
/*
 * Central's system roles with their exact ids, names and verbs, and the functions that assign them.
 * (id 4 was Central's backup-verification role, since removed; the gap keeps ids identical to Central's.)
 */
insert into app_public.roles (id, name, system, verbs) values
  (1, 'Administrator', 'admin', '["config.read","field_key.create","field_key.delete","field_key.list","form.create","form.delete","form.list","form.read","form.update","project.create","project.delete","project.read","project.update","session.end","submission.create","submission.read","submission.list","user.create","user.list","user.password.invalidate","user.read","user.update","role.create","role.update","role.delete","assignment.list","assignment.create","assignment.delete","user.delete","audit.read","public_link.create","public_link.list","public_link.read","public_link.update","public_link.delete","backup.run","config.set","analytics.read","form.restore","dataset.list","entity.list","dataset.read","entity.read","entity.create","entity.update","dataset.update","entity.delete","submission.update","dataset.create","entity.restore","submission.delete","submission.restore"]'),
  (2, 'App User', 'app-user', '["open_form.read","submission.create"]'),
  (3, 'Password Reset Token', 'pwreset', '["user.password.reset"]'),
  (5, 'Project Manager', 'manager', '["project.read","project.update","project.delete","form.create","form.delete","form.list","form.read","form.update","submission.create","submission.read","submission.list","field_key.create","field_key.delete","field_key.list","assignment.list","assignment.create","assignment.delete","public_link.create","public_link.list","public_link.read","public_link.update","public_link.delete","session.end","form.restore","dataset.list","entity.list","dataset.read","entity.read","entity.create","entity.update","dataset.update","entity.delete","submission.update","dataset.create","entity.restore","submission.delete","submission.restore"]'),
  (6, 'Project Viewer', 'viewer', '["project.read","form.list","form.read","submission.read","submission.list","dataset.list","entity.list","dataset.read","entity.read"]'),
  (7, 'Form Viewer', 'formview', '["open_form.read"]'),
  (8, 'Data Collector', 'formfill', '["project.read","open_form.list","open_form.read","submission.create"]'),
  (9, 'Public Link', 'pub-link', '["open_form.read","submission.create"]');
select setval('app_public.roles_id_seq', 9);
comment on column app_public.roles.verbs is 'Verbs this role grants, exactly as Central''s (form.* covers every form; open_form.* only forms that are open).';

create function app_hidden.role_by_ref(ref text) returns app_public.roles
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r app_public.roles;
begin
  select * into r from app_public.roles
  where (ref ~ '^\d+$' and id = ref::int) or system = ref;
  if r is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return r;
end
$$;
comment on function app_hidden.role_by_ref(text) is 'A role by numeric id or system name (404.1 when neither matches).';

create function app_hidden.assignment_audit_prefix(target app_public.actors) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select case target.type when 'field_key' then 'field_key' when 'public_link' then 'public_link' else 'user' end $$;

create function app_public.assign_role(role_ref text, target_actor int, on_actee text default '*')
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r app_public.roles := app_hidden.role_by_ref(role_ref);
  target app_public.actors;
begin
  perform app_hidden.assert_can('assignment.create', on_actee);
  select * into target from app_public.actors where id = target_actor and deleted_at is null;
  if target is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  -- Nobody may hand out verbs they do not hold themselves.
  if exists (select 1 from jsonb_array_elements_text(r.verbs) v where not app_hidden.actor_can(v, on_actee)) then
    perform app_hidden.problem(403.1, 'The authentication you provided does not have rights to perform that action.');
  end if;
  if exists (select 1 from app_public.assignments a where a.actor_id = target_actor and a.role_id = r.id and a.actee_id = on_actee) then
    perform app_hidden.problem(409.3, format('A resource already exists with actorId,roleId,acteeId value(s) of %s,%s,%s.', target_actor, r.id, on_actee),
      jsonb_build_object('fields', jsonb_build_array('actorId', 'roleId', 'acteeId'), 'values', jsonb_build_array(target_actor, r.id, on_actee)));
  end if;
  insert into app_public.assignments (actor_id, role_id, actee_id) values (target_actor, r.id, on_actee);
  perform app_hidden.log_audit(app_hidden.assignment_audit_prefix(target) || '.assignment.create', target.actee_id,
    jsonb_build_object('roleId', r.id, 'grantedActeeId', on_actee));
end
$$;
comment on function app_public.assign_role(text, int, text) is 'Grants a role to an actor on an actee (server-wide by default); needs assignment.create and every verb of the role.';

create function app_public.unassign_role(role_ref text, target_actor int, on_actee text default '*')
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r app_public.roles := app_hidden.role_by_ref(role_ref);
  target app_public.actors;
begin
  perform app_hidden.assert_can('assignment.delete', on_actee);
  select * into target from app_public.actors where id = target_actor;
  delete from app_public.assignments a where a.actor_id = target_actor and a.role_id = r.id and a.actee_id = on_actee;
  if not found then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  perform app_hidden.log_audit(app_hidden.assignment_audit_prefix(target) || '.assignment.delete', target.actee_id,
    jsonb_build_object('roleId', r.id, 'revokedActeeId', on_actee));
end
$$;
comment on function app_public.unassign_role(text, int, text) is 'Revokes a role assignment; 404.1 when it does not exist.';

create function app_public.promote_to_admin(user_email text) returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
  -- Used by the command line (as the database owner), before any admin exists to grant it.
  insert into app_public.assignments (actor_id, role_id, actee_id)
  select u.actor_id, 1, '*' from app_public.users u where u.email = user_email::public.citext and not u.deleted
  on conflict do nothing
$$;
comment on function app_public.promote_to_admin(text) is 'Owner-only bootstrap: makes a user a server administrator.';
revoke execute on function app_public.promote_to_admin(text) from public;

grant execute on function
  app_hidden.role_by_ref(text), app_public.assign_role(text, int, text), app_public.unassign_role(text, int, text)
to fieldbase_request;

--! split: 7-policies.sql
/*
 * Row-level security: what the request role can see with plain SQL (routes' reads, GraphQL, DBAs).
 * Writes go through the API functions above; the request role only writes its own preferences directly.
 */
alter table app_public.actees enable row level security;
alter table app_public.actors enable row level security;
alter table app_public.users enable row level security;
alter table app_public.roles enable row level security;
alter table app_public.assignments enable row level security;
alter table app_public.projects enable row level security;
alter table app_public.audits enable row level security;
alter table app_public.user_site_preferences enable row level security;
alter table app_public.user_project_preferences enable row level security;

create policy actees_are_identifiers on app_public.actees for select using (true);
create policy roles_are_public on app_public.roles for select using (true);

create policy see_self_and_readable_actors on app_public.actors for select using (
  id = (select app_hidden.current_actor_id())
  or app_hidden.actor_can(case type when 'field_key' then 'field_key.list'
                                    when 'public_link' then 'public_link.list'
                                    else 'user.read' end, actee_id)
);
create policy see_self_and_readable_users on app_public.users for select using (
  app_hidden.can_on_actor('user.read', actor_id)
);
create policy see_own_and_listable_assignments on app_public.assignments for select using (
  actor_id = (select app_hidden.current_actor_id()) or app_hidden.actor_can('assignment.list', actee_id)
);
create policy see_readable_projects on app_public.projects for select using (
  app_hidden.actor_can('project.read', actee_id)
);
create policy see_audits_with_audit_read on app_public.audits for select using (
  (select app_hidden.actor_can('audit.read', '*'))
);
create policy own_site_preferences on app_public.user_site_preferences for all
  using (user_id = (select app_hidden.current_actor_id()))
  with check (user_id = (select app_hidden.current_actor_id()));
create policy own_project_preferences on app_public.user_project_preferences for all
  using (user_id = (select app_hidden.current_actor_id()))
  with check (user_id = (select app_hidden.current_actor_id())
              and exists (select 1 from app_public.projects p where p.id = project_id and p.deleted_at is null));

grant select on app_public.actees, app_public.actors, app_public.users, app_public.roles,
  app_public.assignments, app_public.projects, app_public.audits to fieldbase_request;
grant select, insert, delete on app_public.user_site_preferences, app_public.user_project_preferences to fieldbase_request;
grant update (property_value) on app_public.user_site_preferences, app_public.user_project_preferences to fieldbase_request;

create function app_hidden.audit_preference_change() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  pref record := case when tg_op = 'DELETE' then old else new end;
  details jsonb := jsonb_build_object('propertyName', pref.property_name);
begin
  if tg_table_name = 'user_project_preferences' then
    details := details || jsonb_build_object('projectId', pref.project_id);
  end if;
  perform app_hidden.log_audit(
    case when tg_op = 'DELETE' then 'user.preference.delete' else 'user.preference.update' end,
    app_hidden.actee_of(pref.user_id), details);
  return null;
end
$$;
create trigger audit_site_preference after insert or update or delete on app_public.user_site_preferences
  for each row execute function app_hidden.audit_preference_change();
create trigger audit_project_preference after insert or update or delete on app_public.user_project_preferences
  for each row execute function app_hidden.audit_preference_change();

--! split: 8-audits.sql
/*
 * The audit log's ?action= filter: Central's categories (user, project, form, …), 'nonverbose',
 * or one exact action name.
 */
create function app_hidden.audit_actions_in(category text) returns text[]
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select case category
    when 'user' then array['user.create', 'user.update', 'user.delete', 'user.assignment.create',
                           'user.assignment.delete', 'user.session.create']
    when 'field_key' then array['field_key.create', 'field_key.assignment.create', 'field_key.assignment.delete',
                                'field_key.session.end', 'field_key.delete']
    when 'public_link' then array['public_link.create', 'public_link.assignment.create', 'public_link.assignment.delete',
                                  'public_link.session.end', 'public_link.delete']
    when 'project' then array['project.create', 'project.update', 'project.delete']
    when 'form' then array['form.create', 'form.update', 'form.delete', 'form.restore', 'form.purge',
                           'form.attachment.update', 'form.submission.export', 'form.update.draft.set',
                           'form.update.draft.delete', 'form.update.draft.replace', 'form.update.publish']
    when 'submission' then array['submission.create', 'submission.update', 'submission.update.version',
                                 'submission.attachment.update', 'submission.backlog.hold', 'submission.backlog.reprocess',
                                 'submission.backlog.force', 'submission.delete', 'submission.restore', 'submission.purge']
    when 'dataset' then array['dataset.create', 'dataset.update', 'entity.bulk.delete', 'entity.bulk.restore', 'dataset.delete']
    when 'entity' then array['entity.create', 'entity.bulk.create', 'entity.error', 'entity.update.version',
                             'entity.update.resolve', 'entity.delete', 'entity.restore', 'entity.purge',
                             'entity.bulk.delete', 'entity.bulk.restore']
    when 'upgrade' then array['upgrade.server', 'upgrade.process.form', 'upgrade.process.form.draft',
                              'upgrade.process.form.entities_version']
    when 'verbose' then array['entity.create', 'entity.bulk.create', 'entity.error', 'entity.update.version',
                              'entity.update.resolve', 'entity.delete', 'entity.restore', 'entity.purge',
                              'submission.create', 'submission.update', 'submission.update.version',
                              'submission.attachment.update', 'submission.backlog.hold', 'submission.backlog.reprocess',
                              'submission.backlog.force', 'submission.delete', 'submission.restore',
                              'user.preference.update', 'user.preference.delete', 'backup', 'analytics']
    else array[category]
  end
$$;
comment on function app_hidden.audit_actions_in(text) is 'The action names an audit ?action= category stands for (nonverbose = all but the verbose ones).';

create function app_hidden.audit_matches(action text, filter text) returns boolean
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select case
    when filter is null then true
    when filter = 'nonverbose' then action <> all (app_hidden.audit_actions_in('verbose'))
    else action = any (app_hidden.audit_actions_in(filter))
  end
$$;

grant execute on function app_hidden.audit_actions_in(text), app_hidden.audit_matches(text, text) to fieldbase_request;

create function app_hidden.iso(t timestamptz) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;
comment on function app_hidden.iso(timestamptz) is 'Central''s timestamp format (UTC, milliseconds, Z).';

create function app_hidden.actor_json(a app_public.actors) returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('id', a.id, 'type', a.type, 'displayName', a.display_name,
    'createdAt', app_hidden.iso(a.created_at), 'updatedAt', app_hidden.iso(a.updated_at), 'deletedAt', app_hidden.iso(a.deleted_at))
$$;
comment on function app_hidden.actor_json(app_public.actors) is 'An actor in Central''s JSON shape (for audit extended metadata).';

create function app_hidden.actee_json(actee text) returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  -- Later migrations extend this as more kinds of actee (forms, datasets…) appear.
  select coalesce(
    (select app_hidden.actor_json(a) from app_public.actors a where a.actee_id = actee),
    (select jsonb_build_object('id', p.id, 'name', p.name, 'description', p.description, 'archived', p.archived,
              'keyId', p.key_id, 'createdAt', app_hidden.iso(p.created_at), 'updatedAt', app_hidden.iso(p.updated_at),
              'deletedAt', app_hidden.iso(p.deleted_at))
     from app_public.projects p where p.actee_id = actee))
$$;
comment on function app_hidden.actee_json(text) is 'Whatever an actee id names, in Central''s JSON shape (for audit extended metadata).';
grant execute on function app_hidden.actor_json(app_public.actors), app_hidden.actee_json(text), app_hidden.iso(timestamptz) to fieldbase_request;
