/*
 * The permission checks run several times per request and per row of every policy. As SQL functions
 * with a pinned search_path they can be neither inlined nor cached, so each call was planned anew;
 * as PL/pgSQL the plans are cached for the session. Same rules as before, same signatures.
 */

create or replace function app_hidden.current_actor_id() returns int
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  mapped int;
begin
  -- Requests: the server's authenticator sets the actor per transaction.
  if session_user = 'fieldbase_authenticator' then
    return nullif(current_setting('fieldbase.actor_id', true), '')::int;
  end if;
  -- A DBA's login mapped to an actor always acts as that actor.
  select actor_id into mapped from app_private.reader_roles where role_name = session_user;
  if found then
    return mapped;
  end if;
  -- The owner (tools, tests) may set the actor; anyone else is nobody.
  if exists (select 1 from pg_roles r where r.rolname = session_user
             and (r.rolsuper or r.oid = (select datdba from pg_database where datname = current_database()))) then
    return nullif(current_setting('fieldbase.actor_id', true), '')::int;
  end if;
  return null;
end
$$;

create or replace function app_hidden.acting_as_system() returns boolean
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if coalesce(current_setting('fieldbase.system', true), '') <> 'on' then
    return false;
  end if;
  return exists (select 1 from pg_roles r where r.rolname = session_user
                 and (r.rolsuper or r.oid = (select datdba from pg_database where datname = current_database())));
end
$$;

create or replace function app_hidden.actee_chain(target text) returns text[]
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- The actee itself, its species, every ancestor, and the server ('*').
  return (
    with recursive chain(id, species, parent) as (
      select a.id, a.species, a.parent from app_public.actees a where a.id = target
      union all
      select a.id, a.species, a.parent from app_public.actees a join chain c on a.id = c.parent
    )
    select array_agg(distinct x) from (
      select id as x from chain union all select species from chain union all select '*'
    ) ids);
end
$$;

create or replace function app_hidden.actor_can(verb text, actee text) returns boolean
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  me int := app_hidden.current_actor_id();
begin
  if app_hidden.acting_as_system() then
    return true;
  end if;
  if me is null then
    return false;
  end if;
  return exists (
    select 1
    from app_public.assignments a
    join app_public.roles r on r.id = a.role_id
    join app_public.actors who on who.id = a.actor_id
    where a.actor_id = me
      and who.deleted_at is null
      and (who.expires_at is null or who.expires_at > now())
      -- form.x implies open_form.x, as in Central.
      and (r.verbs ? verb or (verb like 'open\_form.%' and r.verbs ? ('form.' || substr(verb, 11))))
      and a.actee_id = any (app_hidden.actee_chain(actee))
  )
  -- Users may always read and update themselves.
  or (verb in ('user.read', 'user.update') and exists (
    select 1 from app_public.actors who where who.id = me and who.actee_id = actee and who.deleted_at is null
  ));
end
$$;
comment on function app_hidden.actor_can(text, text) is 'May the current actor perform verb on actee (directly, through a parent, its species, or server-wide)? form.x implies open_form.x.';
