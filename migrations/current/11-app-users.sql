/*
 * App Users (Central's field keys) and actor properties.
 * An App User is an actor of type field_key whose actee is a child of its project's actee (so grants on the
 * project cover it) and whose one session never expires: that session's token is what ODK Collect is
 * configured with (/v1/key/<token>/…). Revoking deletes the session; deleting the App User soft-deletes the actor.
 * Actor properties are per-project names whose values are set on App Users and, later, Public Links (any actor).
 */
drop table if exists app_public.actor_property_values cascade;
drop table if exists app_public.actor_properties cascade;
drop table if exists app_public.field_keys cascade;

create table app_public.field_keys (
  actor_id int primary key references app_public.actors (id),
  project_id int not null references app_public.projects (id),
  created_by int references app_public.actors (id)
);
comment on table app_public.field_keys is 'App Users: field_key actors bound to one project; their token is their session''s.';
create index field_keys_project_idx on app_public.field_keys (project_id);

create table app_public.actor_properties (
  id serial primary key,
  project_id int not null references app_public.projects (id),
  name text not null check (length(name) between 1 and 255),
  created_at timestamptz(3) not null default now()
);
comment on table app_public.actor_properties is 'Property names registered for a project, whose values App Users and Public Links carry.';
create unique index actor_properties_project_name_key on app_public.actor_properties (project_id, lower(name));

create table app_public.actor_property_values (
  actor_id int not null references app_public.actors (id),
  actor_property_id int not null references app_public.actor_properties (id) on delete cascade,
  value text not null,
  primary key (actor_id, actor_property_id)
);
comment on table app_public.actor_property_values is 'An actor property''s value on one App User or Public Link.';
create index actor_property_values_property_idx on app_public.actor_property_values (actor_property_id);

alter table app_public.field_keys enable row level security;
alter table app_public.actor_properties enable row level security;
alter table app_public.actor_property_values enable row level security;
create policy see_listable_field_keys on app_public.field_keys for select using (
  app_hidden.can_on_actor('field_key.list', actor_id)
);
create policy see_listable_actor_properties on app_public.actor_properties for select using (
  app_hidden.actor_can('actor_property.list', (select p.actee_id from app_public.projects p where p.id = project_id))
);
-- A value is visible with the actor it is set on (actors' own policy decides: field_key.list, public_link.list).
create policy see_values_of_visible_actors on app_public.actor_property_values for select using (
  exists (select 1 from app_public.actors a where a.id = actor_id)
);
grant select on app_public.field_keys, app_public.actor_properties, app_public.actor_property_values to fieldbase_request;

/* Actor properties. */

create or replace function app_hidden.valid_actor_property_name(name text) returns boolean
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  -- Entity property rules (a letter, ':' or '_' first; then letters, digits, '.', '-', '_', ':'; no leading '__';
  -- not name/label), and displayName is reserved too.
  select name ~ '^(?!__)[[:alpha:]:_][[:alpha:][:digit:]._:-]*$' and lower(name) not in ('name', 'label', 'displayname')
$$;

drop function if exists app_public.create_actor_property(int, text) cascade;
create function app_public.create_actor_property(project_id int, name text) returns app_public.actor_properties
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  project app_public.projects;
  created app_public.actor_properties;
begin
  project := app_hidden.live_project(project_id, 'actor_property.update');
  if name is null or not app_hidden.valid_actor_property_name(name) then
    perform app_hidden.problem(400.8, format('Unexpected name value %s; This is not a valid property name.', coalesce(name, 'undefined')),
      jsonb_build_object('field', 'name', 'value', name, 'reason', 'This is not a valid property name.'));
  end if;
  if exists (select 1 from app_public.actor_properties p where p.project_id = project.id and lower(p.name) = lower(create_actor_property.name)) then
    perform app_hidden.problem(409.3, format('A resource already exists with name,projectId value(s) of %s,%s.', name, project.id),
      jsonb_build_object('fields', jsonb_build_array('name', 'projectId'), 'values', jsonb_build_array(name, project.id)));
  end if;
  insert into app_public.actor_properties (project_id, name) values (project.id, name) returning * into created;
  perform app_hidden.log_audit('actor_property.create', project.actee_id, jsonb_build_object('name', name));
  return created;
end
$$;
comment on function app_public.create_actor_property(int, text) is 'Registers an actor property name on a project (actor_property.update; 409.3 when taken, case-insensitively).';

drop function if exists app_public.project_actor_properties(int) cascade;
create function app_public.project_actor_properties(project_id int) returns table (name text, "values" text[])
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.assert_can('actor_property.list', app_hidden.project_actee(project_id));
  return query
    select p.name, coalesce(array_agg(distinct v.value order by v.value) filter (where v.value is not null), '{}')
    from app_public.actor_properties p
    left join (app_public.actor_property_values v join app_public.actors a on a.id = v.actor_id and a.deleted_at is null)
      on v.actor_property_id = p.id
    where p.project_id = project_actor_properties.project_id
    group by p.id, p.name
    order by p.name;
end
$$;
comment on function app_public.project_actor_properties(int) is 'A project''s actor property names with the distinct values in use (actor_property.list).';

drop function if exists app_hidden.set_actor_properties(app_public.actors, int, jsonb) cascade;
create function app_hidden.set_actor_properties(target app_public.actors, project_id int, properties jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  entry record;
  clean jsonb := '{}';
  prop app_public.actor_properties;
begin
  if properties is null or jsonb_typeof(properties) = 'null' then
    return clean;
  end if;
  if jsonb_typeof(properties) <> 'object' then
    perform app_hidden.problem(400.8, format('Unexpected properties value %s; Must be an object.', properties),
      jsonb_build_object('field', 'properties', 'value', properties, 'reason', 'Must be an object.'));
  end if;
  for entry in select key, value from jsonb_each(properties) loop
    select * into prop from app_public.actor_properties p where p.project_id = set_actor_properties.project_id and p.name = entry.key;
    if prop is null then
      perform app_hidden.problem(400.8, format('Unexpected properties value %s; Unknown property name.', entry.key),
        jsonb_build_object('field', 'properties', 'value', entry.key, 'reason', 'Unknown property name.'));
    end if;
    if jsonb_typeof(entry.value) not in ('string', 'null') then
      perform app_hidden.problem(400.8, format('Unexpected %s value %s; Property values must be strings or null.', entry.key, entry.value),
        jsonb_build_object('field', entry.key, 'value', entry.value, 'reason', 'Property values must be strings or null.'));
    end if;
    -- Blank values unset, as null does; others are trimmed.
    if coalesce(trim(entry.value #>> '{}'), '') = '' then
      delete from app_public.actor_property_values where actor_id = target.id and actor_property_id = prop.id;
      clean := clean || jsonb_build_object(entry.key, null);
    else
      insert into app_public.actor_property_values (actor_id, actor_property_id, value)
        values (target.id, prop.id, trim(entry.value #>> '{}'))
        on conflict (actor_id, actor_property_id) do update set value = excluded.value;
      clean := clean || jsonb_build_object(entry.key, trim(entry.value #>> '{}'));
    end if;
  end loop;
  if clean <> '{}' then
    perform app_hidden.log_audit(target.type || '.property.set', target.actee_id, jsonb_build_object('properties', clean));
  end if;
  return clean;
end
$$;
comment on function app_hidden.set_actor_properties(app_public.actors, int, jsonb) is 'Sets (string) or unsets (null or blank) actor property values on an App User or Public Link; callers check rights. Audited as <type>.property.set.';

create or replace function app_hidden.actor_properties_json(target_actor int) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_object_agg(p.name, v.value order by p.name)
  from app_public.actor_property_values v join app_public.actor_properties p on p.id = v.actor_property_id
  where v.actor_id = target_actor
$$;
comment on function app_hidden.actor_properties_json(int) is 'The property values set on an actor as {name: value}, null when none.';

/* App Users. */

drop function if exists app_public.create_field_key(int, text, jsonb) cascade;
create function app_public.create_field_key(project_id int, display_name text, properties jsonb default null) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  project app_public.projects;
  created app_public.actors;
begin
  project := app_hidden.live_project(project_id, 'field_key.create');
  if coalesce(trim(display_name), '') = '' then
    perform app_hidden.problem(400.2, 'Required parameter displayName missing.', '{"field":"displayName"}');
  end if;
  insert into app_public.actors (type, actee_id, display_name)
    values ('field_key', app_hidden.new_actee('field_key', project.actee_id), display_name)
    returning * into created;
  insert into app_public.field_keys (actor_id, project_id, created_by)
    values (created.id, project.id, app_hidden.current_actor_id());
  -- The token never expires; only revoking (ending the session) or deleting the App User ends it.
  insert into app_private.sessions (token, actor_id, csrf, expires_at)
    values (app_hidden.new_token(), created.id, app_hidden.new_token(), '9999-12-31 23:59:59.999+00');
  perform app_hidden.log_audit('field_key.create', created.actee_id);
  perform app_hidden.set_actor_properties(created, project.id, properties);
  return created.id;
end
$$;
comment on function app_public.create_field_key(int, text, jsonb) is 'Creates an App User in a project with a never-expiring token (field_key.create), optionally with property values.';

create or replace function app_hidden.live_field_key(project_id int, fk_actor int) returns app_public.actors
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  found app_public.actors;
begin
  select a.* into found from app_public.actors a join app_public.field_keys f on f.actor_id = a.id
  where a.id = fk_actor and f.project_id = live_field_key.project_id and a.deleted_at is null;
  if found is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return found;
end
$$;

create or replace function app_hidden.live_field_key(project_id int, fk_actor int, verb text) returns app_public.actors
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.assert_can(verb, app_hidden.project_actee(project_id));
  return app_hidden.live_field_key(project_id, fk_actor);
end
$$;
comment on function app_hidden.live_field_key(int, int, text) is 'A live App User of a project, after checking verb on the project: 404.1 (project), 403.1, 404.1 (App User).';

drop function if exists app_public.update_field_key(int, int, jsonb) cascade;
create function app_public.update_field_key(project_id int, fk_actor int, properties jsonb) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  target app_public.actors := app_hidden.live_field_key(project_id, fk_actor, 'field_key.update');
begin
  if properties is null then
    perform app_hidden.problem(400.2, 'Required parameter properties missing.', '{"field":"properties"}');
  end if;
  perform app_hidden.set_actor_properties(target, project_id, properties);
  update app_public.actors set updated_at = now() where id = target.id;
end
$$;
comment on function app_public.update_field_key(int, int, jsonb) is 'Sets or unsets property values on an App User (field_key.update on its project).';

drop function if exists app_public.delete_field_key(int, int) cascade;
create function app_public.delete_field_key(project_id int, fk_actor int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  target app_public.actors := app_hidden.live_field_key(project_id, fk_actor, 'field_key.delete');
begin
  update app_public.actors set deleted_at = now() where id = target.id;
  delete from app_public.assignments where actor_id = target.id;
  delete from app_private.sessions where actor_id = target.id;
  perform app_hidden.log_audit('field_key.delete', target.actee_id);
end
$$;
comment on function app_public.delete_field_key(int, int) is 'Deletes an App User: its token stops working at once and its assignments go (field_key.delete).';

drop function if exists app_public.project_field_keys(int, int) cascade;
create function app_public.project_field_keys(of_project int, only_actor int default null)
returns table (id int, type text, display_name text, created_at timestamptz, updated_at timestamptz,
               deleted_at timestamptz, project_id int, token text, last_used timestamptz, created_by jsonb,
               properties jsonb)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.assert_can('field_key.list', app_hidden.project_actee(of_project));
  if only_actor is not null then
    perform app_hidden.live_field_key(of_project, only_actor);
  end if;
  -- Live tokens first, newest first, as Central lists them; lastUsed is the latest submission by the App User.
  return query
    select a.id, a.type, a.display_name, a.created_at, a.updated_at, a.deleted_at, f.project_id, s.token,
           (select max(au.logged_at) from app_public.audits au where au.actor_id = a.id and au.action = 'submission.create'),
           (select app_hidden.actor_json(c) from app_public.actors c where c.id = f.created_by),
           app_hidden.actor_properties_json(a.id)
    from app_public.field_keys f
    join app_public.actors a on a.id = f.actor_id
    left join app_private.sessions s on s.actor_id = a.id
    where f.project_id = of_project and a.deleted_at is null
      and (only_actor is null or a.id = only_actor)
    order by (s.token is not null) desc, a.created_at desc, a.id desc;
end
$$;
comment on function app_public.project_field_keys(int, int) is 'A project''s App Users with token (null once revoked), lastUsed, createdBy and properties (field_key.list).';

/* Revoking an App User (or Public Link) token through DELETE /v1/sessions/:token is audited as Central does. */
create or replace function app_public.end_session(session_token text) returns void
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
  if owner.type in ('field_key', 'public_link') then
    perform app_hidden.log_audit(owner.type || '.session.end', owner.actee_id);
  end if;
end
$$;
comment on function app_public.end_session(text) is 'Logs a session out, or revokes an App User or Public Link token (audited as field_key/public_link.session.end).';

grant execute on function
  app_hidden.valid_actor_property_name(text), app_public.create_actor_property(int, text),
  app_public.project_actor_properties(int),
  app_public.create_field_key(int, text, jsonb), app_public.update_field_key(int, int, jsonb),
  app_public.delete_field_key(int, int), app_public.project_field_keys(int, int)
to fieldbase_request;

create or replace function app_hidden.project_app_user_count(project_id int) returns int
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select count(*)::int from app_public.field_keys f join app_public.actors a on a.id = f.actor_id
  where f.project_id = project_app_user_count.project_id and a.deleted_at is null
$$;
comment on function app_hidden.project_app_user_count(int) is 'Live App Users of a project (extended project metadata shows it to anyone who can read the project).';
grant execute on function app_hidden.project_app_user_count(int) to fieldbase_request;
