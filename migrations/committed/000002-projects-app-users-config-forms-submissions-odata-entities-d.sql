--! Previous: sha1:e69073f340fba6e88f6142384d8ce2132cac3e2f
--! Hash: sha1:73ab52264e7d8ef8f51ee0d89d083e19323fda9f
--! Message: Projects, app users, config, forms, submissions, OData, entities, DBA views, analytics

--! split: 01-foundation-fixes.sql
/*
 * Foundation fixes: grants for the lookup helpers routes call, and a user search that returns
 * the actor columns too (so an exact-email match is visible to those who cannot read users).
 */
grant execute on function app_hidden.live_user(int), app_hidden.actee_of(int) to fieldbase_request;

drop function if exists app_public.search_users(text);
create function app_public.search_users(q text)
returns table (id int, type text, display_name text, created_at timestamptz, updated_at timestamptz,
               deleted_at timestamptz, email text, last_login_at timestamptz)
language plpgsql stable security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  -- Anyone signed in may find a user by exact email (to assign them); only user.list may search or list.
  if app_hidden.actor_can('user.list', '*') then
    return query
      select a.id, a.type, a.display_name, a.created_at, a.updated_at, a.deleted_at, u.email::text, u.last_login_at
      from app_public.users u join app_public.actors a on a.id = u.actor_id
      where not u.deleted and (coalesce(q, '') = '' or u.email = q::citext or u.email::text % q or a.display_name % q
                               or u.email::text ilike '%' || q || '%' or a.display_name ilike '%' || q || '%')
      order by case when coalesce(q, '') = '' then 0
                    else -greatest(similarity(u.email::text, q), similarity(a.display_name, q)) end,
               a.display_name, a.id;
  elsif app_hidden.current_actor_id() is not null and q is not null then
    return query
      select a.id, a.type, a.display_name, a.created_at, a.updated_at, a.deleted_at, u.email::text, u.last_login_at
      from app_public.users u join app_public.actors a on a.id = u.actor_id
      where u.email = q::citext and not u.deleted;
  end if;
end
$$;
comment on function app_public.search_users(text) is 'Lists users (user.list), by trigram similarity when q is given; exact-email lookups for everyone signed in.';
grant execute on function app_public.search_users(text) to fieldbase_request;

create or replace function app_hidden.role_by_ref(ref text) returns app_public.roles
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r app_public.roles;
begin
  -- The cast sits inside a case: SQL does not promise to evaluate `and` left to right.
  select * into r from app_public.roles
  where id = case when ref ~ '^\d{1,9}$' then ref::int end or system = ref;
  if r is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return r;
end
$$;

--! split: 10-projects.sql
/*
 * Projects: creation, PATCH and deep PUT updates, soft deletion, project-level role assignments,
 * and the extension points later work (submissions, datasets) redefines with `create or replace`:
 *   app_hidden.project_last_submission(int), app_hidden.project_dataset_count(int), app_hidden.project_last_entity(int).
 * The forms work (migrations/current/21-forms-api.sql) defines app_hidden.project_form_count(int) and the deep PUT's
 * form part, app_hidden.deep_update_forms(app_public.projects, jsonb).
 */

-- Central's actor-property verbs (2026): list for viewers, managers and admins; update and field_key.update
-- for managers and admins. Idempotent: each verb is removed before it is appended.
update app_public.roles set verbs = (verbs - 'actor_property.list') || '["actor_property.list"]'
  where system in ('admin', 'manager', 'viewer');
update app_public.roles set verbs = (verbs - 'actor_property.update' - 'field_key.update')
    || '["actor_property.update", "field_key.update"]'
  where system in ('admin', 'manager');

/*
 * The permission checks, as PL/pgSQL: they run several times per request and per row of every policy, and as
 * SQL functions with a pinned search_path they could be neither inlined nor cached (each call was planned
 * anew); PL/pgSQL caches their plans per connection. form.* verbs imply their open_form.* counterparts
 * (managers may read every form, open ones included, and so may hand out the Data Collector and App User
 * roles, whose verbs are open_form.*), as in Central.
 */
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

create or replace function app_hidden.project_actee(project_id int) returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$ select actee_id from app_public.projects where id = project_id and deleted_at is null $$;
comment on function app_hidden.project_actee(int) is 'The actee of a live project, null when it does not exist or was deleted (so assert_can answers 404.1).';

create or replace function app_hidden.live_project(project_id int) returns app_public.projects
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p app_public.projects;
begin
  select * into p from app_public.projects where id = project_id and deleted_at is null;
  if p is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return p;
end
$$;
comment on function app_hidden.live_project(int) is 'A live project by id, or 404.1 (no permission check: callers assert_can on its actee).';

create or replace function app_hidden.live_project(project_id int, verb text) returns app_public.projects
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.assert_can(verb, app_hidden.project_actee(project_id));
  return app_hidden.live_project(project_id);
end
$$;
comment on function app_hidden.live_project(int, text) is 'A live project by id on which the actor holds verb: 404.1 when there is none, then 403.1.';

drop function if exists app_hidden.check_project_fields(jsonb) cascade;
create function app_hidden.check_project_fields(fields jsonb) returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if fields ? 'name' and (jsonb_typeof(fields->'name') is distinct from 'string' or trim(fields->>'name') = '') then
    perform app_hidden.problem(400.2, 'Required parameter name missing.', '{"field":"name"}');
  end if;
  if fields ? 'archived' and jsonb_typeof(fields->'archived') not in ('boolean', 'null') then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (archived) to be (boolean)',
      jsonb_build_object('field', 'archived', 'value', fields->'archived', 'expected', 'boolean'));
  end if;
  if fields ? 'description' and jsonb_typeof(fields->'description') not in ('string', 'null') then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (description) to be (string)',
      jsonb_build_object('field', 'description', 'value', fields->'description', 'expected', 'string'));
  end if;
end
$$;

drop function if exists app_public.create_project(jsonb) cascade;
create function app_public.create_project(fields jsonb) returns app_public.projects
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p app_public.projects;
begin
  perform app_hidden.assert_can('project.create', '*');
  if not (fields ? 'name') then
    perform app_hidden.problem(400.2, 'Required parameter name missing.', '{"field":"name"}');
  end if;
  perform app_hidden.check_project_fields(fields);
  insert into app_public.projects (name, description, archived, actee_id)
    values (fields->>'name', fields->>'description', coalesce((fields->>'archived')::boolean, false),
            app_hidden.new_actee('project'))
    returning * into p;
  perform app_hidden.log_audit('project.create', p.actee_id,
    jsonb_build_object('data', jsonb_build_object('name', p.name, 'description', p.description, 'archived', p.archived)));
  return p;
end
$$;
comment on function app_public.create_project(jsonb) is 'Creates a project from {name, description?, archived?} (project.create server-wide).';

drop function if exists app_public.update_project(int, jsonb) cascade;
create function app_public.update_project(project_id int, fields jsonb) returns app_public.projects
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p app_public.projects;
  data jsonb := '{}';
begin
  perform app_hidden.assert_can('project.update', app_hidden.project_actee(project_id));
  perform app_hidden.check_project_fields(fields);
  -- Only the fields present change (PATCH); a deep PUT passes all three.
  data := jsonb_strip_nulls(jsonb_build_object('name', fields->'name'))
       || case when fields ? 'description' then jsonb_build_object('description', fields->'description') else '{}' end
       || case when fields ? 'archived' then jsonb_build_object('archived',
            case when jsonb_typeof(fields->'archived') = 'boolean' then fields->'archived' else 'false' end) else '{}' end;
  update app_public.projects set
    name = coalesce(data->>'name', name),
    description = case when data ? 'description' then data->>'description' else description end,
    archived = case when data ? 'archived' then (data->>'archived')::boolean else archived end,
    updated_at = now()
  where id = project_id
  returning * into p;
  perform app_hidden.log_audit('project.update', p.actee_id, jsonb_build_object('data', data));
  return p;
end
$$;
comment on function app_public.update_project(int, jsonb) is 'Changes the name, description or archived flag present in fields (project.update).';

drop function if exists app_public.replace_project(int, jsonb, jsonb) cascade;
create function app_public.replace_project(project_id int, fields jsonb, forms jsonb default null) returns app_public.projects
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p app_public.projects;
begin
  if not (fields ? 'name') then
    perform app_hidden.problem(400.2, 'Required parameter name missing.', '{"field":"name"}');
  end if;
  -- PUT semantics: an omitted description or archived flag is nulled (archived: false).
  p := app_public.update_project(project_id, jsonb_build_object('name', fields->'name',
         'description', coalesce(fields->'description', 'null'), 'archived', coalesce(fields->'archived', 'false')));
  perform app_hidden.deep_update_forms(p, forms); -- migrations/current/21-forms-api.sql
  return p;
end
$$;
comment on function app_public.replace_project(int, jsonb, jsonb) is 'PUT /projects/:id: project fields, then every form''s state and assignments, all or nothing.';

drop function if exists app_public.delete_project(int) cascade;
create function app_public.delete_project(project_id int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  target text := app_hidden.project_actee(project_id);
begin
  perform app_hidden.assert_can('project.delete', target);
  update app_public.projects set deleted_at = now() where id = project_id;
  perform app_hidden.log_audit('project.delete', target);
end
$$;
comment on function app_public.delete_project(int) is 'Soft-deletes a project: it vanishes from listings and lookups (project.delete).';

/* Counts for extended metadata. Later work redefines the ones that need its tables (the forms count is
 * defined with the forms, in migrations/current/21-forms-api.sql). */
create or replace function app_hidden.project_last_submission(project_id int) returns timestamptz
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select null::timestamptz $$;
create or replace function app_hidden.project_dataset_count(project_id int) returns int
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select 0 $$;
create or replace function app_hidden.project_last_entity(project_id int) returns timestamptz
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select null::timestamptz $$;
comment on function app_hidden.project_last_submission(int) is 'Latest submission to any form of a project; redefined by the submissions work.';
comment on function app_hidden.project_dataset_count(int) is 'Datasets in a project; redefined by the datasets work.';
comment on function app_hidden.project_last_entity(int) is 'Latest entity in any dataset of a project; redefined by the datasets work.';

drop function if exists app_hidden.assignment_listing(int, text) cascade;
create function app_hidden.assignment_listing(project_id int, role_ref text, out target text, out only_role int)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  target := app_hidden.project_actee(project_id);
  perform app_hidden.assert_can('assignment.list', target);
  if role_ref is not null then
    only_role := (app_hidden.role_by_ref(role_ref)).id;
  end if;
end
$$;
comment on function app_hidden.assignment_listing(int, text) is 'What a listing of a project''s assignments reads: the project''s actee (after assignment.list on it) and the one role asked for (id or system name; null for all, 404.1 when unknown).';

drop function if exists app_public.project_assignments(int, text) cascade;
create function app_public.project_assignments(project_id int, role_ref text default null)
returns table (role_id int, id int, type text, display_name text, created_at timestamptz, updated_at timestamptz,
               deleted_at timestamptz)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  listing record := app_hidden.assignment_listing(project_id, role_ref);
begin
  -- Definer: whoever may list assignments sees the assigned actors, even users they cannot otherwise read.
  return query
    select s.role_id, a.id, a.type, a.display_name, a.created_at, a.updated_at, a.deleted_at
    from app_public.assignments s join app_public.actors a on a.id = s.actor_id
    where s.actee_id = listing.target and a.deleted_at is null and (listing.only_role is null or s.role_id = listing.only_role)
    order by s.role_id, a.id;
end
$$;
comment on function app_public.project_assignments(int, text) is 'Role assignments on a project (assignment.list), optionally of one role (id or system name).';

drop function if exists app_public.project_form_assignments(int, text) cascade;
create function app_public.project_form_assignments(project_id int, role_ref text default null)
returns table (role_id int, xml_form_id text, id int, type text, display_name text, created_at timestamptz,
               updated_at timestamptz, deleted_at timestamptz)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  listing record := app_hidden.assignment_listing(project_id, role_ref);
begin
  -- Form actees are children of the project's actee; actee_json (extended by the forms work) names the form.
  return query
    select s.role_id, app_hidden.actee_json(f.id)->>'xmlFormId', a.id, a.type, a.display_name, a.created_at,
           a.updated_at, a.deleted_at
    from app_public.actees f
    join app_public.assignments s on s.actee_id = f.id
    join app_public.actors a on a.id = s.actor_id
    where f.parent = listing.target and f.species = 'form' and a.deleted_at is null
      and (listing.only_role is null or s.role_id = listing.only_role)
      and app_hidden.actee_json(f.id)->>'deletedAt' is null
    order by s.role_id, a.id;
end
$$;
comment on function app_public.project_form_assignments(int, text) is 'Form-level role assignments within a project (assignment.list on the project).';

grant execute on function
  app_hidden.project_actee(int), app_hidden.live_project(int), app_hidden.check_project_fields(jsonb),
  app_public.create_project(jsonb), app_public.update_project(int, jsonb), app_public.replace_project(int, jsonb, jsonb),
  app_public.delete_project(int), app_hidden.project_last_submission(int),
  app_hidden.project_dataset_count(int), app_hidden.project_last_entity(int),
  app_public.project_assignments(int, text), app_public.project_form_assignments(int, text)
to fieldbase_request;

--! split: 11-app-users.sql
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

--! split: 12-config.sql
/*
 * Server configuration (Central's configs: analytics, login-appearance, logo, hero-image). JSON configs keep a
 * sanitised value; image configs keep their bytes, content type and an ETag. The usage report preview, which
 * reads every area's tables, is in 57-analytics.sql.
 */
drop table if exists app_public.configs cascade;
create table app_public.configs (
  key text primary key,
  value jsonb,
  blob bytea,
  content_type text,
  etag text,
  set_at timestamptz(3) not null default now(),
  check ((value is null) <> (blob is null))
);
comment on table app_public.configs is 'Server-wide settings by key; login-appearance, logo and hero-image are public, the rest need config.read.';

create or replace function app_hidden.config_kind(config_key text) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select case when config_key in ('analytics', 'login-appearance') then 'json'
              when config_key in ('logo', 'hero-image') then 'blob' end
$$;
comment on function app_hidden.config_kind(text) is 'json or blob for the keys that may be set, null for any other.';

create or replace function app_hidden.config_is_public(config_key text) returns boolean
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select config_key in ('login-appearance', 'logo', 'hero-image') $$;

alter table app_public.configs enable row level security;
create policy see_public_or_readable_configs on app_public.configs for select using (
  app_hidden.config_is_public(key) or app_hidden.actor_can('config.read', '*')
);
grant select on app_public.configs to fieldbase_request;

create or replace function app_hidden.check_config_settable(config_key text) returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if app_hidden.config_kind(config_key) is null then
    perform app_hidden.problem(400.8, format('Unexpected key value %s; the config is unknown or cannot be set.', config_key),
      jsonb_build_object('field', 'key', 'value', config_key, 'reason', 'the config is unknown or cannot be set.'));
  end if;
end
$$;

create or replace function app_hidden.sanitize_config(config_key text, body jsonb) returns jsonb
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  -- Only the known fields, and only non-empty strings, as Central keeps them.
  select case config_key
    when 'analytics' then
      case when body->'enabled' = 'true'::jsonb then
        jsonb_build_object('enabled', true)
          || case when jsonb_typeof(body->'email') = 'string' and body->>'email' <> ''
                  then jsonb_build_object('email', body->'email') else '{}' end
          || case when jsonb_typeof(body->'organization') = 'string' and body->>'organization' <> ''
                  then jsonb_build_object('organization', body->'organization') else '{}' end
      else jsonb_build_object('enabled', false) end
    when 'login-appearance' then
      (case when jsonb_typeof(body->'title') = 'string' and body->>'title' <> ''
            then jsonb_build_object('title', body->'title') else '{}' end)
      || (case when jsonb_typeof(body->'description') = 'string' and body->>'description' <> ''
               then jsonb_build_object('description', body->'description') else '{}' end)
  end
$$;
comment on function app_hidden.sanitize_config(text, jsonb) is 'The stored value of a JSON config from a request body.';

drop function if exists app_public.set_config_value(text, jsonb) cascade;
create function app_public.set_config_value(config_key text, body jsonb) returns app_public.configs
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  saved app_public.configs;
begin
  perform app_hidden.assert_can('config.set', '*');
  perform app_hidden.check_config_settable(config_key);
  if app_hidden.config_kind(config_key) <> 'json' then
    perform app_hidden.problem(400.6, 'An expected header field (Content-Type) did not match the expected format (got: application/json).',
      jsonb_build_object('field', 'Content-Type', 'value', 'application/json'));
  end if;
  insert into app_public.configs (key, value, set_at) values (config_key, app_hidden.sanitize_config(config_key, body), now())
    on conflict (key) do update set value = excluded.value, blob = null, content_type = null, etag = null, set_at = excluded.set_at
    returning * into saved;
  perform app_hidden.log_audit('config.set', null,
    jsonb_build_object('key', saved.key, 'setAt', app_hidden.iso(saved.set_at), 'value', saved.value));
  return saved;
end
$$;
comment on function app_public.set_config_value(text, jsonb) is 'Sets a JSON config (analytics, login-appearance) from a request body (config.set).';

drop function if exists app_public.set_config_blob(text, bytea, text) cascade;
create function app_public.set_config_blob(config_key text, bytes bytea, mime text) returns app_public.configs
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  saved app_public.configs;
begin
  perform app_hidden.assert_can('config.set', '*');
  perform app_hidden.check_config_settable(config_key);
  if coalesce(trim(mime), '') = '' then
    perform app_hidden.problem(400.6, 'An expected header field (Content-Type) did not match the expected format (got: [nothing]).',
      jsonb_build_object('field', 'Content-Type', 'value', mime));
  end if;
  if app_hidden.config_kind(config_key) <> 'blob' then
    perform app_hidden.problem(400.8, format('Unexpected key value %s; the config is unknown or cannot be set.', config_key),
      jsonb_build_object('field', 'key', 'value', config_key, 'reason', 'the config is unknown or cannot be set.'));
  end if;
  insert into app_public.configs (key, blob, content_type, etag, set_at)
    values (config_key, coalesce(bytes, ''::bytea), mime, md5(coalesce(bytes, ''::bytea)), now())
    on conflict (key) do update set value = null, blob = excluded.blob, content_type = excluded.content_type,
      etag = excluded.etag, set_at = excluded.set_at
    returning * into saved;
  perform app_hidden.log_audit('config.set', null,
    jsonb_build_object('key', saved.key, 'setAt', app_hidden.iso(saved.set_at), 'blobExists', true));
  return saved;
end
$$;
comment on function app_public.set_config_blob(text, bytea, text) is 'Sets an image config (logo, hero-image) with its content type (config.set).';

drop function if exists app_public.unset_config(text) cascade;
create function app_public.unset_config(config_key text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.assert_can('config.set', '*');
  perform app_hidden.check_config_settable(config_key);
  -- Idempotent, as Central: unsetting an unset config succeeds.
  delete from app_public.configs where key = config_key;
end
$$;
comment on function app_public.unset_config(text) is 'Removes a config (config.set); succeeds whether or not it was set.';

grant execute on function
  app_hidden.config_kind(text), app_hidden.config_is_public(text), app_public.set_config_value(text, jsonb),
  app_public.set_config_blob(text, bytea, text), app_public.unset_config(text)
to fieldbase_request;

--! split: 20-forms.sql
/*
 * Forms: one row per form of a project (its actee is a child of the project's), one form_defs row per
 * uploaded version (the XML exactly as received, hashes, key), the parsed field schema per version
 * (app_public.form_fields, shared by submissions, CSV, OData and SQL views), the expected form attachments
 * per version, and content-addressed blobs.
 */
drop table if exists app_public.public_links cascade;
drop table if exists app_public.form_attachments cascade;
drop table if exists app_public.form_fields cascade;
alter table if exists app_public.forms drop constraint if exists forms_current_def_fk, drop constraint if exists forms_draft_def_fk;
drop table if exists app_public.form_defs cascade;
drop table if exists app_public.forms cascade;
drop table if exists app_public.blobs cascade;
drop function if exists app_hidden.can_read_form_def(int) cascade;
drop function if exists app_hidden.draft_token_matches(text) cascade;

-- Central's encryption keys (form-supplied or project-managed); shared with managed encryption.
create table if not exists app_public.keys (
  id serial primary key,
  public text not null unique,
  private jsonb,
  managed boolean,
  hint text,
  created_at timestamptz(3) not null default now()
);
comment on table app_public.keys is 'Public encryption keys (base64RsaPublicKey) forms and projects encrypt submissions with.';
alter table app_public.keys enable row level security;
drop policy if exists keys_are_public on app_public.keys;
create policy keys_are_public on app_public.keys for select using (true);
grant select on app_public.keys to fieldbase_request;

create table app_public.blobs (
  id serial primary key,
  sha text not null unique,
  md5 text not null,
  content_type text,
  content bytea not null,
  created_at timestamptz(3) not null default now()
);
comment on table app_public.blobs is 'File contents by SHA-1 (form attachments, XLSForm uploads), stored once however often referenced.';

create table app_public.forms (
  id serial primary key,
  project_id int not null references app_public.projects (id),
  xml_form_id text not null,
  state text not null default 'open' check (state in ('open', 'closing', 'closed')),
  actee_id text not null unique references app_public.actees (id),
  current_def_id int,
  draft_def_id int,
  enketo_id text,
  enketo_once_id text,
  webforms_enabled boolean not null default false,
  created_at timestamptz(3) not null default now(),
  updated_at timestamptz(3),
  deleted_at timestamptz(3)
);
comment on table app_public.forms is 'A form of a project (by xmlFormId); current_def_id is its published version, draft_def_id its draft.';
create unique index forms_project_xml_form_id_live_key on app_public.forms (project_id, xml_form_id) where deleted_at is null;
create index forms_project_idx on app_public.forms (project_id);

create table app_public.form_defs (
  id serial primary key,
  form_id int not null references app_public.forms (id) on delete cascade,
  xml text not null,
  name text,
  version text not null default '',
  hash text not null,
  sha text not null,
  sha256 text not null,
  key_id int references app_public.keys (id),
  submission_url text,
  draft_token text unique,
  enketo_id text,
  entities jsonb,
  xls_blob_id int references app_public.blobs (id),
  created_at timestamptz(3) not null default clock_timestamp(),
  published_at timestamptz(3)
);
comment on table app_public.form_defs is 'One uploaded version of a form: the XForm text as received, md5/sha1/sha256 of it, and what parsing found.';
comment on column app_public.form_defs.hash is 'md5 of the XML (hex), as OpenRosa formList and Central''s API show it.';
comment on column app_public.form_defs.entities is 'Entity declarations ({version, datasets[{name, actions, path}], properties[{path, property}]}) for the datasets work.';
create unique index form_defs_published_version_key on app_public.form_defs (form_id, version) where published_at is not null;
create index form_defs_form_idx on app_public.form_defs (form_id);

alter table app_public.forms
  add constraint forms_current_def_fk foreign key (current_def_id) references app_public.form_defs (id) deferrable initially deferred,
  add constraint forms_draft_def_fk foreign key (draft_def_id) references app_public.form_defs (id) on delete set null deferrable initially deferred;

create table app_public.form_fields (
  form_def_id int not null references app_public.form_defs (id) on delete cascade,
  ord int not null,
  path text not null,
  name text not null,
  type text not null,
  "binary" boolean not null default false,
  select_multiple boolean not null default false,
  primary key (form_def_id, ord)
);
comment on table app_public.form_fields is 'A form version''s field schema in depth-first document order, exactly as Central''s /fields (path without the root element, namespaces stripped).';
create index form_fields_path_idx on app_public.form_fields (form_def_id, path);

create table app_public.form_attachments (
  form_def_id int not null references app_public.form_defs (id) on delete cascade,
  name text not null,
  type text not null check (type in ('image', 'audio', 'video', 'file')),
  blob_id int references app_public.blobs (id),
  dataset_id int,
  updated_at timestamptz(3),
  primary key (form_def_id, name)
);
comment on table app_public.form_attachments is 'Files a form version expects (media, CSV/XML/GeoJSON data), with the uploaded blob or linked dataset.';
comment on column app_public.form_attachments.dataset_id is 'The dataset this attachment is served from (entity lists); set by the datasets work.';
create index form_attachments_blob_idx on app_public.form_attachments (blob_id);

create table app_public.public_links (
  actor_id int primary key references app_public.actors (id),
  form_id int not null references app_public.forms (id) on delete cascade,
  once boolean not null default false,
  created_by int references app_public.actors (id)
);
comment on table app_public.public_links is 'Public Links: actors of type public_link that may fill one form (pub-link role on it).';
create index public_links_form_idx on app_public.public_links (form_id);

create function app_hidden.draft_token_matches(token text) returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  -- Draft-testing requests (/v1/test/:token/…) name the draft token they present in fieldbase.draft_token.
  select token is not null and token = nullif(current_setting('fieldbase.draft_token', true), '')
$$;
comment on function app_hidden.draft_token_matches(text) is 'Does this draft token match the one the request presented (draft testing endpoints)?';

/* Who may see what. Central: unpublished forms need form.update; closed forms need form.read;
 * open and closing published forms also show to open_form.read (App Users, Data Collectors, Public Links). */
create function app_hidden.can_read_form(f app_public.forms) returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select case
    when f.current_def_id is null then app_hidden.actor_can('form.update', f.actee_id)
    when f.state = 'closed' then app_hidden.actor_can('form.read', f.actee_id)
    else app_hidden.actor_can('form.read', f.actee_id) or app_hidden.actor_can('open_form.read', f.actee_id)
  end
  or exists (select 1 from app_public.form_defs d where d.id = f.draft_def_id and app_hidden.draft_token_matches(d.draft_token))
$$;
comment on function app_hidden.can_read_form(app_public.forms) is 'May the current actor read this form (Central''s canReadForm)?';

create function app_hidden.can_read_form_def(def_id int) returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select exists (
    select 1 from app_public.form_defs d join app_public.forms f on f.id = d.form_id
    where d.id = def_id
      and (app_hidden.actor_can('form.update', f.actee_id)
           or (d.published_at is not null and app_hidden.can_read_form(f))
           or (d.id = f.draft_def_id and app_hidden.draft_token_matches(d.draft_token)))
  )
$$;
comment on function app_hidden.can_read_form_def(int) is 'May the current actor read this form version (drafts need form.update)?';

alter table app_public.forms enable row level security;
alter table app_public.form_defs enable row level security;
alter table app_public.form_fields enable row level security;
alter table app_public.form_attachments enable row level security;
alter table app_public.blobs enable row level security;
alter table app_public.public_links enable row level security;

create policy see_readable_forms on app_public.forms for select using (app_hidden.can_read_form(forms));
create policy see_readable_form_defs on app_public.form_defs for select using (app_hidden.can_read_form_def(id));
create policy see_readable_form_fields on app_public.form_fields for select using (app_hidden.can_read_form_def(form_def_id));
create policy see_readable_form_attachments on app_public.form_attachments for select using (app_hidden.can_read_form_def(form_def_id));
create policy see_form_blobs on app_public.blobs for select using (
  exists (select 1 from app_public.form_attachments a where a.blob_id = blobs.id)
  or exists (select 1 from app_public.form_defs d where d.xls_blob_id = blobs.id)
);
create policy see_listable_public_links on app_public.public_links for select using (
  exists (select 1 from app_public.forms f where f.id = form_id and app_hidden.actor_can('public_link.list', f.actee_id))
);

grant select on app_public.forms, app_public.form_defs, app_public.form_fields, app_public.form_attachments,
  app_public.blobs, app_public.public_links to fieldbase_request;
grant execute on function app_hidden.can_read_form(app_public.forms), app_hidden.can_read_form_def(int),
  app_hidden.draft_token_matches(text) to fieldbase_request;

--! split: 21-forms-api.sql
/*
 * Forms API: creating forms and versions from parsed XForms (the server parses the XML once, at upload,
 * and passes the result as jsonb), drafts, publishing, state changes, soft deletion, attachments.
 * Every mutation checks Central's verb on the form's actee and writes Central's audit action.
 * The parsed form (server/formats/xform.ts): {xmlFormId, version, title, base64RsaPublicKey, submissionUrl,
 * fields: [{name, path, type, binary, selectMultiple}], attachments: [{name, type}], entities}.
 */
drop function if exists app_hidden.form_for(int, text) cascade;
drop function if exists app_hidden.form_for(int, text, text) cascade;
drop function if exists app_hidden.insert_form_def(app_public.forms, text, jsonb, int) cascade;
drop function if exists app_hidden.form_warnings(app_public.forms, jsonb, boolean) cascade;
drop function if exists app_hidden.raise_warnings(jsonb) cascade;
drop function if exists app_hidden.raise_warnings(jsonb, jsonb) cascade;
drop function if exists app_hidden.def_publish_notes(text, int) cascade;
drop function if exists app_hidden.check_field_types(app_public.forms, jsonb) cascade;
drop function if exists app_hidden.publish_form(int, boolean) cascade;
drop function if exists app_hidden.drop_unused_def(int) cascade;
drop function if exists app_public.create_form(int, text, jsonb, boolean, boolean, int) cascade;
drop function if exists app_public.create_draft(int, text, text, jsonb, boolean, int, boolean) cascade;
drop function if exists app_public.publish_draft(int, text) cascade;
drop function if exists app_public.delete_draft(int, text) cascade;
drop function if exists app_public.update_form(int, text, text, boolean) cascade;
drop function if exists app_public.delete_form(int, text) cascade;
drop function if exists app_public.restore_form(int, int) cascade;
drop function if exists app_public.ensure_blob(bytea, text) cascade;
drop function if exists app_public.set_draft_attachment(int, text, text, int) cascade;
drop function if exists app_hidden.form_created_by(text) cascade;
drop function if exists app_hidden.def_published_by(text, int) cascade;
drop function if exists app_hidden.public_link_count(int) cascade;
drop function if exists app_public.create_public_link(int, text, text, boolean) cascade;
drop function if exists app_public.create_public_link(int, text, text, boolean, jsonb) cascade;
drop function if exists app_public.delete_public_link(int, text, int) cascade;
drop function if exists app_hidden.public_link_of(int, text, int, text) cascade;
drop function if exists app_hidden.public_link_token(int) cascade;

create function app_hidden.form_for(project int, xml_form text) returns app_public.forms
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms;
begin
  perform app_hidden.live_project(project);
  select * into f from app_public.forms where project_id = project and xml_form_id = xml_form and deleted_at is null;
  if f is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return f;
end
$$;
comment on function app_hidden.form_for(int, text) is 'The live form of a project by xmlFormId, or 404.1.';

create function app_hidden.form_for(project int, xml_form text, verb text) returns app_public.forms
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form);
begin
  perform app_hidden.assert_can(verb, f.actee_id);
  return f;
end
$$;
comment on function app_hidden.form_for(int, text, text) is 'The live form of a project by xmlFormId on which the actor holds verb: 404.1 when there is none, then 403.1.';

create function app_hidden.insert_form_def(f app_public.forms, xml text, parsed jsonb, xls_blob int) returns app_public.form_defs
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  key int;
  def app_public.form_defs;
  previous int := coalesce(f.draft_def_id, f.current_def_id);
begin
  if nullif(parsed->>'base64RsaPublicKey', '') is not null then
    insert into app_public.keys (public) values (parsed->>'base64RsaPublicKey')
    on conflict (public) do update set public = excluded.public
    returning id into key;
  end if;
  insert into app_public.form_defs (form_id, xml, name, version, hash, sha, sha256, key_id, submission_url, entities, xls_blob_id)
  values (f.id, xml, parsed->>'title', coalesce(parsed->>'version', ''), md5(xml),
          encode(digest(convert_to(xml, 'UTF8'), 'sha1'), 'hex'), encode(digest(convert_to(xml, 'UTF8'), 'sha256'), 'hex'),
          key, parsed->>'submissionUrl', nullif(parsed->'entities', 'null'::jsonb), xls_blob)
  returning * into def;
  insert into app_public.form_fields (form_def_id, ord, path, name, type, "binary", select_multiple)
  select def.id, (e.ord - 1)::int, e.field->>'path', e.field->>'name', e.field->>'type',
         coalesce((e.field->>'binary')::boolean, false), coalesce((e.field->>'selectMultiple')::boolean, false)
  from jsonb_array_elements(coalesce(parsed->'fields', '[]')) with ordinality as e(field, ord);
  -- Files already uploaded for the same name and type carry over to the new version.
  insert into app_public.form_attachments (form_def_id, name, type, blob_id, dataset_id, updated_at)
  select distinct on (a->>'name') def.id, a->>'name', a->>'type', old.blob_id, old.dataset_id, old.updated_at
  from jsonb_array_elements(coalesce(parsed->'attachments', '[]')) with ordinality as e(a, ord)
  left join app_public.form_attachments old
    on old.form_def_id = previous and old.name = a->>'name' and old.type = a->>'type'
  order by a->>'name', e.ord;
  return def;
end
$$;
comment on function app_hidden.insert_form_def(app_public.forms, text, jsonb, int) is 'Stores a parsed form version: the def with hashes and key, its fields and expected attachments.';

create function app_hidden.form_warnings(f app_public.forms, parsed jsonb, check_structure boolean) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  -- Central's workflow warnings: a deleted form with this id, old entity spec versions, removed fields.
  select coalesce(jsonb_agg(w), '[]'::jsonb) from (
    select jsonb_build_object('type', 'deletedFormExists', 'details', jsonb_build_object('xmlFormId', parsed->>'xmlFormId')) as w
    where f.id is null and exists (select 1 from app_public.forms d
      where d.project_id = f.project_id and d.xml_form_id = parsed->>'xmlFormId' and d.deleted_at is not null)
    union all
    select w from jsonb_array_elements(coalesce(parsed->'entities'->'warnings', '[]')) w
    union all
    select jsonb_build_object('type', 'structureChanged', 'details', jsonb_agg(old.name order by old.ord))
    from app_public.form_fields old
    where check_structure and old.form_def_id = f.current_def_id
      and not exists (select 1 from jsonb_array_elements(parsed->'fields') n where n->>'path' = old.path)
    having count(*) > 0
  ) warnings
$$;

create function app_hidden.raise_warnings(warnings jsonb, xls_warnings jsonb default null) returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  xls jsonb := case when jsonb_typeof(xls_warnings) = 'array' and jsonb_array_length(xls_warnings) > 0 then xls_warnings end;
  workflow jsonb := case when jsonb_array_length(warnings) > 0 then warnings end;
begin
  -- The XLSForm converter's warnings (parsed->'xlsFormWarnings') and the workflow warnings come back together.
  if xls is not null or workflow is not null then
    perform app_hidden.problem(400.16, 'The Form is valid, but with warnings. Please check the warnings and if they are acceptable resubmit with ?ignoreWarnings=true',
      jsonb_build_object('warnings', jsonb_strip_nulls(jsonb_build_object('xlsFormWarnings', xls, 'workflowWarnings', workflow))));
  end if;
end
$$;

create function app_hidden.check_field_types(f app_public.forms, parsed jsonb) returns void
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  clash record;
begin
  -- A field may become a string, but may not otherwise change type, and groups/repeats may not become strings.
  select old.path, old.type into clash
  from jsonb_array_elements(parsed->'fields') n
  join app_public.form_fields old on old.path = n->>'path'
  join app_public.form_defs d on d.id = old.form_def_id and d.form_id = f.id and d.published_at is not null
  where (n->>'type' <> 'string' and n->>'type' <> old.type)
     or (n->>'type' = 'string' and old.type in ('structure', 'repeat'))
  limit 1;
  if clash.path is not null then
    perform app_hidden.problem(400.17, format('The form you have uploaded attempts to change the type of the field at %s. In a previous version, it had the type %s. Please either return that field to its previous type, or rename the field so it lives at a new path.', clash.path, clash.type),
      jsonb_build_object('path', clash.path, 'type', clash.type));
  end if;
end
$$;

create function app_hidden.drop_unused_def(def_id int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A replaced draft goes away unless something (e.g. draft submissions) still refers to it.
  delete from app_public.form_defs where id = def_id and published_at is null;
exception when foreign_key_violation then
  null;
end
$$;

create function app_hidden.publish_form(target int, with_create boolean) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms;
  def app_public.form_defs;
begin
  select * into f from app_public.forms where id = target for update;
  select * into def from app_public.form_defs where id = f.draft_def_id;
  if def is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  begin
    update app_public.form_defs
    set published_at = case when with_create then f.created_at else clock_timestamp() end, draft_token = null, enketo_id = null
    where id = def.id;
  exception when unique_violation then
    perform app_hidden.problem(409.6, format('You tried to publish the form ''%s'' with version ''%s'', but a published form has already existed in this project with those identifiers.', f.xml_form_id, def.version),
      jsonb_build_object('xmlFormId', f.xml_form_id, 'version', def.version));
  end;
  update app_public.forms
  set current_def_id = def.id, draft_def_id = null, updated_at = case when with_create then null else clock_timestamp() end
  where id = f.id;
  perform app_hidden.log_audit('form.update.publish', f.actee_id, jsonb_build_object('oldDefId', f.current_def_id, 'newDefId', def.id));
end
$$;

create function app_public.create_form(project int, xml text, parsed jsonb, publish boolean default false,
                                       ignore_warnings boolean default false, xls_blob int default null)
returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p app_public.projects := app_hidden.live_project(project, 'form.create');
  f app_public.forms;
  def app_public.form_defs;
  xml_form text := parsed->>'xmlFormId';
begin
  if not ignore_warnings then
    f.project_id := p.id;
    perform app_hidden.raise_warnings(app_hidden.form_warnings(f, parsed, false), parsed->'xlsFormWarnings');
  end if;
  if exists (select 1 from app_public.forms where project_id = p.id and xml_form_id = xml_form and deleted_at is null) then
    perform app_hidden.problem(409.3, format('A resource already exists with projectId,xmlFormId value(s) of %s,%s.', p.id, xml_form),
      jsonb_build_object('fields', jsonb_build_array('projectId', 'xmlFormId'), 'values', jsonb_build_array(p.id, xml_form)));
  end if;
  insert into app_public.forms (project_id, xml_form_id, actee_id, created_at)
  values (p.id, xml_form, app_hidden.new_actee('form', p.actee_id), clock_timestamp())
  returning * into f;
  def := app_hidden.insert_form_def(f, xml, parsed, xls_blob);
  update app_public.form_defs set draft_token = app_hidden.new_token(), created_at = f.created_at where id = def.id;
  update app_public.forms set draft_def_id = def.id where id = f.id;
  perform app_hidden.log_audit('form.create', f.actee_id, null);
  if publish then
    perform app_hidden.publish_form(f.id, true);
  end if;
  return f.id;
end
$$;
comment on function app_public.create_form(int, text, jsonb, boolean, boolean, int) is 'POST /projects/:id/forms: a new form with the upload as its draft (published at once with publish).';

create function app_public.create_draft(project int, xml_form text, xml text, parsed jsonb, ignore_warnings boolean default false,
                                        xls_blob int default null, duplicating boolean default false)
returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
  old_draft app_public.form_defs;
  def app_public.form_defs;
begin
  if parsed->>'xmlFormId' is distinct from f.xml_form_id then
    perform app_hidden.problem(400.8, format('Unexpected xmlFormId value %s; does not match the form you are updating', parsed->>'xmlFormId'),
      jsonb_build_object('field', 'xmlFormId', 'value', parsed->>'xmlFormId', 'reason', 'does not match the form you are updating'));
  end if;
  perform app_hidden.check_field_types(f, parsed);
  if not ignore_warnings and not duplicating then
    perform app_hidden.raise_warnings(app_hidden.form_warnings(f, parsed, true), parsed->'xlsFormWarnings');
  end if;
  select * into old_draft from app_public.form_defs where id = f.draft_def_id;
  def := app_hidden.insert_form_def(f, xml, parsed, xls_blob);
  -- A replaced draft hands its testing token (and Enketo id) on to the new one.
  if old_draft.id is not null then
    update app_public.form_defs set draft_token = null where id = old_draft.id;
  end if;
  update app_public.form_defs
  set draft_token = coalesce(old_draft.draft_token, app_hidden.new_token()), enketo_id = old_draft.enketo_id
  where id = def.id;
  update app_public.forms set draft_def_id = def.id, updated_at = clock_timestamp() where id = f.id;
  if old_draft.id is not null then
    perform app_hidden.drop_unused_def(old_draft.id);
  end if;
  perform app_hidden.log_audit('form.update.draft.set', f.actee_id,
    jsonb_build_object('oldDraftDefId', old_draft.id, 'newDraftDefId', def.id));
  return def.id;
end
$$;
comment on function app_public.create_draft(int, text, text, jsonb, boolean, int, boolean) is 'POST /forms/:id/draft: a new draft version (replacing any draft; attachments carry over by name and type).';

create function app_public.publish_draft(project int, xml_form text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
begin
  perform app_hidden.publish_form(f.id, false);
end
$$;
comment on function app_public.publish_draft(int, text) is 'POST /forms/:id/draft/publish: the draft becomes the published version (409.6 when its version was published before).';

create function app_public.delete_draft(project int, xml_form text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
begin
  if f.current_def_id is null then
    perform app_hidden.problem(409.7, 'Could not delete draft, because the form has not been published. Either delete the whole form, or replace the draft.');
  end if;
  if f.draft_def_id is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  update app_public.forms set draft_def_id = null where id = f.id;
  perform app_hidden.drop_unused_def(f.draft_def_id);
  perform app_hidden.log_audit('form.update.draft.delete', f.actee_id, jsonb_build_object('oldDraftDefId', f.draft_def_id));
end
$$;
comment on function app_public.delete_draft(int, text) is 'DELETE /forms/:id/draft (409.7 for a form never published).';

create function app_public.update_form(project int, xml_form text, new_state text, webforms boolean default null) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
  data jsonb := '{}';
begin
  if new_state is not null and new_state not in ('open', 'closing', 'closed') then
    perform app_hidden.problem(400.8, format('Unexpected state value %s; not a recognized form state.', new_state),
      jsonb_build_object('field', 'state', 'value', new_state, 'reason', 'not a recognized form state.'));
  end if;
  if new_state is not null then data := data || jsonb_build_object('state', new_state); end if;
  if webforms is not null then data := data || jsonb_build_object('webformsEnabled', webforms); end if;
  update app_public.forms
  set state = coalesce(new_state, state), webforms_enabled = coalesce(webforms, webforms_enabled), updated_at = clock_timestamp()
  where id = f.id;
  perform app_hidden.log_audit('form.update', f.actee_id, jsonb_build_object('data', data));
end
$$;
comment on function app_public.update_form(int, text, text, boolean) is 'PATCH /forms/:id: state (open/closing/closed) and webformsEnabled.';

create function app_public.delete_form(project int, xml_form text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.delete');
begin
  update app_public.forms set deleted_at = clock_timestamp() where id = f.id;
  perform app_hidden.log_audit('form.delete', f.actee_id, null);
end
$$;
comment on function app_public.delete_form(int, text) is 'DELETE /forms/:id: moves the form to the trash (restorable by numeric id).';

create function app_public.restore_form(project int, form int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms;
begin
  perform app_hidden.live_project(project);
  select * into f from app_public.forms where id = form and project_id = project and deleted_at is not null;
  if f is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  perform app_hidden.assert_can('form.restore', f.actee_id);
  if exists (select 1 from app_public.forms where project_id = project and xml_form_id = f.xml_form_id and deleted_at is null) then
    perform app_hidden.problem(409.3, format('A resource already exists with projectId,xmlFormId value(s) of %s,%s.', project, f.xml_form_id),
      jsonb_build_object('fields', jsonb_build_array('projectId', 'xmlFormId'), 'values', jsonb_build_array(project, f.xml_form_id)));
  end if;
  update app_public.forms set deleted_at = null where id = f.id;
  perform app_hidden.log_audit('form.restore', f.actee_id, null);
end
$$;
comment on function app_public.restore_form(int, int) is 'POST /forms/:numericId/restore: brings a deleted form back (409.3 if its xmlFormId is taken again).';

create function app_public.ensure_blob(content bytea, content_type text) returns int
language sql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
  insert into app_public.blobs (sha, md5, content_type, content)
  values (encode(digest(content, 'sha1'), 'hex'), md5(content), content_type, content)
  on conflict (sha) do update set sha = excluded.sha
  returning id
$$;
comment on function app_public.ensure_blob(bytea, text) is 'Stores file contents once (by SHA-1) and returns the blob id.';

create function app_public.set_draft_attachment(project int, xml_form text, file_name text, blob int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
  a app_public.form_attachments;
begin
  select * into a from app_public.form_attachments where form_def_id = f.draft_def_id and name = file_name;
  if a is null or (blob is null and a.blob_id is null and a.dataset_id is null) then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  update app_public.form_attachments set blob_id = blob, dataset_id = null, updated_at = clock_timestamp()
  where form_def_id = a.form_def_id and name = a.name;
  perform app_hidden.log_audit('form.attachment.update', f.actee_id, jsonb_build_object('formDefId', a.form_def_id,
    'name', a.name, 'oldBlobId', a.blob_id, 'newBlobId', blob, 'oldDatasetId', a.dataset_id, 'newDatasetId', null));
end
$$;
comment on function app_public.set_draft_attachment(int, text, text, int) is 'POST/DELETE /forms/:id/draft/attachments/:name: sets or clears the file of an expected attachment.';

/* Extended metadata that reads across audits and sessions, which the caller may not see directly. */
create function app_hidden.form_created_by(actee text) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.actor_json(a) from app_public.audits au join app_public.actors a on a.id = au.actor_id
  where au.actee_id = actee and au.action = 'form.create' order by au.id limit 1
$$;

create function app_hidden.def_published_by(actee text, def_id int) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.actor_json(a) from app_public.audits au join app_public.actors a on a.id = au.actor_id
  where au.actee_id = actee and au.action = 'form.update.publish' and au.details->'newDefId' = to_jsonb(def_id)
  order by au.id desc limit 1
$$;

create function app_hidden.def_publish_notes(actee text, def_id int) returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select au.notes from app_public.audits au
  where au.actee_id = actee and au.action = 'form.update.publish' and au.details->'newDefId' = to_jsonb(def_id)
    and app_hidden.actor_can('form.update', actee)
  order by au.id desc limit 1
$$;

create function app_hidden.public_link_count(form int) returns int
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select count(*)::int from app_public.public_links l join app_public.actors a on a.id = l.actor_id
  where l.form_id = form and a.deleted_at is null
    and exists (select 1 from app_private.sessions s where s.actor_id = a.id and s.expires_at > now())
$$;

/* Public Links: an actor of type public_link with a long-lived session, granted pub-link on one form. */
create function app_public.create_public_link(project int, xml_form text, display text, single boolean default false,
                                              properties jsonb default null) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'public_link.create');
  link app_public.actors;
begin
  if display is null or display = '' then
    perform app_hidden.problem(400.2, 'Required parameter displayName missing.', jsonb_build_object('field', 'displayName'));
  end if;
  insert into app_public.actors (type, actee_id, display_name)
  values ('public_link', app_hidden.new_actee('public_link', f.actee_id), display)
  returning * into link;
  insert into app_public.public_links (actor_id, form_id, once, created_by) values (link.id, f.id, coalesce(single, false), app_hidden.current_actor_id());
  insert into app_public.assignments (actor_id, role_id, actee_id)
  select link.id, r.id, f.actee_id from app_public.roles r where r.system = 'pub-link';
  perform app_hidden.start_session(link.id, interval '100 years');
  perform app_hidden.log_audit('public_link.create', link.actee_id, null);
  perform app_hidden.set_actor_properties(link, f.project_id, properties);
  return link.id;
end
$$;
comment on function app_public.create_public_link(int, text, text, boolean, jsonb) is 'POST /forms/:id/public-links: a Public Link actor with a session token and the pub-link role on the form, optionally with actor property values.';

create function app_hidden.public_link_of(project int, xml_form text, link int, verb text) returns app_public.actors
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, verb);
  a app_public.actors;
begin
  select ac.* into a from app_public.actors ac join app_public.public_links l on l.actor_id = ac.id
  where ac.id = link and l.form_id = f.id and ac.deleted_at is null;
  if a is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return a;
end
$$;
comment on function app_hidden.public_link_of(int, text, int, text) is 'A live Public Link of a form, after checking verb on the form: 404.1 (form or link), 403.1.';

create function app_public.delete_public_link(project int, xml_form text, link int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  a app_public.actors := app_hidden.public_link_of(project, xml_form, link, 'public_link.delete');
begin
  delete from app_private.sessions where actor_id = a.id;
  delete from app_public.assignments where actor_id = a.id;
  update app_public.actors set deleted_at = clock_timestamp() where id = a.id;
  perform app_hidden.log_audit('public_link.delete', a.actee_id, null);
end
$$;
comment on function app_public.delete_public_link(int, text, int) is 'DELETE /forms/:id/public-links/:linkId: revokes and deletes a Public Link.';

create function app_hidden.public_link_token(link int) returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.token from app_private.sessions s join app_public.public_links l on l.actor_id = s.actor_id
  join app_public.forms f on f.id = l.form_id
  where s.actor_id = link and s.expires_at > now() and app_hidden.actor_can('public_link.read', f.actee_id)
  order by s.created_at desc limit 1
$$;
comment on function app_hidden.public_link_token(int) is 'The live session token of a Public Link (null once revoked), for those with public_link.read.';

grant execute on function
  app_hidden.form_for(int, text), app_hidden.form_for(int, text, text),
  app_public.create_form(int, text, jsonb, boolean, boolean, int),
  app_public.create_draft(int, text, text, jsonb, boolean, int, boolean),
  app_public.publish_draft(int, text), app_public.delete_draft(int, text),
  app_public.update_form(int, text, text, boolean), app_public.delete_form(int, text), app_public.restore_form(int, int),
  app_public.ensure_blob(bytea, text), app_public.set_draft_attachment(int, text, text, int),
  app_hidden.form_created_by(text), app_hidden.def_published_by(text, int), app_hidden.def_publish_notes(text, int),
  app_hidden.public_link_count(int), app_public.create_public_link(int, text, text, boolean, jsonb),
  app_hidden.public_link_of(int, text, int, text), app_public.delete_public_link(int, text, int),
  app_hidden.public_link_token(int)
to fieldbase_request;

/* Project extended metadata and the deep PUT of a project's forms (10-projects.sql calls them), and extension
 * points of the foundation, now that forms exist. */
create or replace function app_hidden.project_form_count(project_id int) returns int
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select count(*)::int from app_public.forms f where f.project_id = project_form_count.project_id and f.deleted_at is null $$;
comment on function app_hidden.project_form_count(int) is 'Live forms in a project (extended metadata).';
grant execute on function app_hidden.project_form_count(int) to fieldbase_request;

create or replace function app_hidden.form_json(f app_public.forms) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('projectId', f.project_id, 'xmlFormId', f.xml_form_id, 'state', f.state,
    'name', d.name, 'version', d.version, 'hash', d.hash, 'publishedAt', app_hidden.iso(d.published_at),
    'createdAt', app_hidden.iso(f.created_at), 'updatedAt', app_hidden.iso(f.updated_at), 'deletedAt', app_hidden.iso(f.deleted_at))
  from (select 1) one left join app_public.form_defs d on d.id = coalesce(f.current_def_id, f.draft_def_id)
$$;
comment on function app_hidden.form_json(app_public.forms) is 'A form in Central''s JSON shape (for audit extended metadata and assignments).';

create or replace function app_hidden.actee_json(actee text) returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(
    (select app_hidden.actor_json(a) from app_public.actors a where a.actee_id = actee),
    (select jsonb_build_object('id', p.id, 'name', p.name, 'description', p.description, 'archived', p.archived,
              'keyId', p.key_id, 'createdAt', app_hidden.iso(p.created_at), 'updatedAt', app_hidden.iso(p.updated_at),
              'deletedAt', app_hidden.iso(p.deleted_at))
     from app_public.projects p where p.actee_id = actee),
    (select app_hidden.form_json(f) from app_public.forms f where f.actee_id = actee))
$$;
comment on function app_hidden.actee_json(text) is 'Whatever an actee id names (actor, project, form), in Central''s JSON shape.';

create or replace function app_hidden.deep_update_forms(project app_public.projects, forms jsonb) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  item jsonb;
  f app_public.forms;
  g jsonb;
  seen text[] := '{}';
  unlisted record;
begin
  if forms is null or jsonb_typeof(forms) = 'null' then
    return;
  end if;
  if jsonb_typeof(forms) <> 'array' then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (forms) to be (array)',
      jsonb_build_object('field', 'forms', 'value', forms, 'expected', 'array'));
  end if;
  -- First check the whole request, as Central does: the list names exactly the project's live forms, each once,
  -- and every assignment names an actor and an existing role.
  if (select count(*) from app_public.forms x where x.project_id = project.id and x.deleted_at is null) <> jsonb_array_length(forms) then
    perform app_hidden.problem(501.2, 'This endpoint does not allow creation or deletion of forms. Please check that you have sent the correct detail for all forms in this project.');
  end if;
  for item in select * from jsonb_array_elements(forms) loop
    if jsonb_typeof(item) = 'object' and (item->>'xmlFormId') = any (seen) then
      perform app_hidden.problem(400.8, format('Unexpected xmlFormId value %s; duplicate value', item->>'xmlFormId'),
        jsonb_build_object('field', 'xmlFormId', 'value', item->'xmlFormId', 'reason', 'duplicate value'));
    end if;
    if jsonb_typeof(item) <> 'object' or not exists (select 1 from app_public.forms x
        where x.project_id = project.id and x.deleted_at is null and x.xml_form_id = item->>'xmlFormId') then
      perform app_hidden.problem(501.2, 'This endpoint does not allow creation or deletion of forms. Please check that you have sent the correct detail for all forms in this project.');
    end if;
    seen := seen || (item->>'xmlFormId');
    continue when jsonb_typeof(item->'assignments') is distinct from 'array';
    for g in select * from jsonb_array_elements(item->'assignments') loop
      if jsonb_typeof(g->'actorId') is distinct from 'number' and jsonb_typeof(g->'actorId') is distinct from 'string' then
        perform app_hidden.problem(400.2, 'Required parameter assignment actorId missing.', '{"field":"assignment actorId"}');
      end if;
      if jsonb_typeof(g->'roleId') is distinct from 'number' and jsonb_typeof(g->'roleId') is distinct from 'string' then
        perform app_hidden.problem(400.2, 'Required parameter assignment roleId missing.', '{"field":"assignment roleId"}');
      end if;
      if not exists (select 1 from app_public.roles r where r.id::text = g->>'roleId') then
        perform app_hidden.problem(400.14, format('The given roleId %s for roles does not exist.', g->>'roleId'),
          jsonb_build_object('field', 'roleId', 'value', g->'roleId', 'table', 'roles'));
      end if;
      if not exists (select 1 from app_public.actors a where a.id::text = g->>'actorId' and a.deleted_at is null) then
        perform app_hidden.problem(400.14, format('The given actorId %s for actors does not exist.', g->>'actorId'),
          jsonb_build_object('field', 'actorId', 'value', g->'actorId', 'table', 'actors'));
      end if;
    end loop;
  end loop;

  -- Then apply it: a bad state (400.8) or a role the caller may not hand out (403.1) rolls the whole PUT back.
  for item in select * from jsonb_array_elements(forms) loop
    f := app_hidden.form_for(project.id, item->>'xmlFormId');
    if item ? 'state' and jsonb_typeof(item->'state') <> 'null' then
      if jsonb_typeof(item->'state') <> 'string' then
        perform app_hidden.problem(400.8, format('Unexpected state value %s; not a recognized form state.', item->'state'),
          jsonb_build_object('field', 'state', 'value', item->'state', 'reason', 'not a recognized form state.'));
      end if;
      perform app_public.update_form(project.id, f.xml_form_id, item->>'state', null);
    end if;
    continue when jsonb_typeof(item->'assignments') is distinct from 'array';
    -- Omitted assignments are revoked, except Form Viewer and Public Link grants (Enketo previews, Public Links).
    for unlisted in
      select a.role_id, a.actor_id from app_public.assignments a join app_public.roles r on r.id = a.role_id
      where a.actee_id = f.actee_id and coalesce(r.system, '') not in ('formview', 'pub-link')
        and not exists (select 1 from jsonb_array_elements(item->'assignments') listed
                        where listed->>'roleId' = a.role_id::text and listed->>'actorId' = a.actor_id::text)
      order by a.role_id, a.actor_id
    loop
      perform app_public.unassign_role(unlisted.role_id::text, unlisted.actor_id, f.actee_id);
    end loop;
    for g in select * from jsonb_array_elements(item->'assignments') loop
      if not exists (select 1 from app_public.assignments a where a.actee_id = f.actee_id
                     and a.role_id::text = g->>'roleId' and a.actor_id::text = g->>'actorId') then
        perform app_public.assign_role(g->>'roleId', (g->>'actorId')::int, f.actee_id);
      end if;
    end loop;
  end loop;
end
$$;
comment on function app_hidden.deep_update_forms(app_public.projects, jsonb) is 'Deep PUT of a project''s forms: each form''s state and its role assignments; 501.2 unless the list names exactly the live forms.';
grant execute on function app_hidden.form_json(app_public.forms) to fieldbase_request;

--! split: 22-forms-links-xls-diffs.sql
/*
 * Forms, continued: actor property values on Public Links (PATCH …/public-links/:id, extended metadata),
 * the itemsets.csv an XLSForm conversion produces, and the related-dataset diffs of a form version
 * (…/dataset-diff, …/draft/dataset-diff).
 */
drop function if exists app_public.update_public_link(int, text, int, jsonb) cascade;
drop function if exists app_hidden.public_link_properties(int) cascade;
drop function if exists app_public.set_itemsets(int, int) cascade;
drop function if exists app_public.form_dataset_diff(int, text, boolean) cascade;

/* Public Links' actor properties. */

create function app_public.update_public_link(project int, xml_form text, link int, properties jsonb) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  target app_public.actors := app_hidden.public_link_of(project, xml_form, link, 'public_link.update');
begin
  if properties is null or jsonb_typeof(properties) = 'null' then
    perform app_hidden.problem(400.2, 'Required parameter properties missing.', '{"field":"properties"}');
  end if;
  perform app_hidden.set_actor_properties(target, project, properties);
  update app_public.actors set updated_at = clock_timestamp() where id = target.id;
end
$$;
comment on function app_public.update_public_link(int, text, int, jsonb) is 'PATCH /forms/:id/public-links/:linkId: sets or unsets actor property values on a Public Link (public_link.update; audited public_link.property.set).';

create function app_hidden.public_link_properties(link int) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.actor_properties_json(l.actor_id)
  from app_public.public_links l join app_public.forms f on f.id = l.form_id
  where l.actor_id = link and app_hidden.actor_can('public_link.read', f.actee_id)
$$;
comment on function app_hidden.public_link_properties(int) is 'The actor property values set on a Public Link ({name: value}, null when none), for those with public_link.read.';

/* XLSForm conversions may produce itemsets.csv (external choices): it becomes that expected attachment's file. */

create function app_public.set_itemsets(def int, blob int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  actee text := (select f.actee_id from app_public.form_defs d join app_public.forms f on f.id = d.form_id where d.id = def);
begin
  perform app_hidden.assert_can('form.update', actee);
  update app_public.form_attachments set blob_id = blob, dataset_id = null, updated_at = clock_timestamp()
  where form_def_id = def and name = 'itemsets.csv';
end
$$;
comment on function app_public.set_itemsets(int, int) is 'Attaches the itemsets.csv an XLSForm conversion returned to the version that expects it (form.update).';

/* Related datasets. Written in plpgsql so that this file applies before the datasets tables exist
 * (migrations/current/50-datasets.sql); without them no form has related datasets. */

create function app_public.form_dataset_diff(project int, xml_form text, for_draft boolean) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
  def app_public.form_defs;
  ds_name text;
  ds_id int;
  in_form jsonb;
  published jsonb;
  result jsonb := '[]';
begin
  select * into def from app_public.form_defs d where d.id = case when for_draft then f.draft_def_id else f.current_def_id end;
  if def.id is null and for_draft then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  -- A form never published has no published diff (an empty list, as Central answers).
  if def.id is null or jsonb_typeof(def.entities->'datasets') is distinct from 'array' or to_regclass('app_public.datasets') is null then
    return result;
  end if;
  for ds_name in
    select b->>'name' from jsonb_array_elements(def.entities->'datasets') with ordinality as e(b, ord)
    group by b->>'name' order by min(e.ord)
  loop
    execute 'select id from app_public.datasets where project_id = $1 and name = $2 and deleted_at is null and published_at is not null'
      into ds_id using f.project_id, ds_name;
    -- The properties this version saves to (each saveto belongs to the nearest entity block above it), in field order.
    select coalesce(jsonb_agg(p.property order by p.ord, p.property), '[]') into in_form from (
      select prop->>'property' as property, min(coalesce(ff.ord, 2147483647)) as ord
      from jsonb_array_elements(coalesce(def.entities->'properties', '[]')) prop
      left join app_public.form_fields ff on ff.form_def_id = def.id and ff.path = prop->>'path'
      where (select b->>'name' from jsonb_array_elements(def.entities->'datasets') b
             where prop->>'path' like case when b->>'path' = '/' then '/%' else (b->>'path') || '/%' end
             order by length(b->>'path') desc limit 1) = ds_name
      group by prop->>'property'
    ) p;
    published := '[]';
    if ds_id is not null then
      execute 'select coalesce(jsonb_agg(name order by published_at, id), ''[]'') from app_public.ds_properties
               where dataset_id = $1 and published_at is not null' into published using ds_id;
    end if;
    result := result || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
      'name', ds_name,
      'isNew', case when for_draft then ds_id is null end,
      'properties', coalesce((
        select jsonb_agg(x.item order by x.pos) from (
          -- Published properties this version does not fill come first, then those it does.
          select jsonb_strip_nulls(jsonb_build_object('name', p.value, 'isNew', case when for_draft then false end, 'inForm', false)) as item,
                 p.ord as pos
          from jsonb_array_elements_text(published) with ordinality as p(value, ord)
          where not in_form ? p.value
          union all
          select jsonb_strip_nulls(jsonb_build_object('name', p.value, 'isNew', case when for_draft then not published ? p.value end, 'inForm', true)),
                 1000000 + p.ord
          from jsonb_array_elements_text(in_form) with ordinality as p(value, ord)
        ) x), '[]'))));
  end loop;
  return result;
end
$$;
comment on function app_public.form_dataset_diff(int, text, boolean) is 'GET /forms/:id/dataset-diff and /draft/dataset-diff: the datasets a form version writes, with every published property (inForm) and, for drafts, what publishing would create (isNew); form.update.';

grant execute on function
  app_public.update_public_link(int, text, int, jsonb), app_hidden.public_link_properties(int),
  app_public.set_itemsets(int, int), app_public.form_dataset_diff(int, text, boolean)
to fieldbase_request;

--! split: 30-odata.sql
/*
 * OData feeds: the form version a feed reads (with Central's checks), a change stamp for ETags, and the
 * small helpers the server's generated queries use to read typed values out of structured submission data
 * (safe casts that give null instead of failing on a malformed value) and repeat instances.
 */
drop function if exists app_public.odata_form(int, text, boolean) cascade;
drop function if exists app_hidden.odata_stamp(int, boolean) cascade;
drop function if exists app_hidden.odata_actor_name(int) cascade;
drop function if exists app_hidden.odata_instances(jsonb) cascade;
drop function if exists app_hidden.odata_int(text) cascade;
drop function if exists app_hidden.odata_decimal(text) cascade;
drop function if exists app_hidden.odata_boolean(text) cascade;
drop function if exists app_hidden.odata_date(text) cascade;
drop function if exists app_hidden.odata_timestamptz(text) cascade;

create function app_public.odata_form(project int, xml_form text, is_draft boolean default false)
returns table (form_id int, form_def_id int, xml_form_id text, fields jsonb)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'submission.read');
  def_id int := case when is_draft then f.draft_def_id else f.current_def_id end;
begin
  if def_id is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return query select f.id, def_id, f.xml_form_id, coalesce((
    select jsonb_agg(jsonb_build_object('path', ff.path, 'name', ff.name, 'type', ff.type, 'binary', ff.binary,
                                        'selectMultiple', ff.select_multiple) order by ff.ord)
    from app_public.form_fields ff where ff.form_def_id = def_id), '[]'::jsonb);
end
$$;
comment on function app_public.odata_form(int, text, boolean) is
  'The form version an OData service reads (published, or the draft): its id and field schema; 404.1 unknown form or version, 403.1 without submission.read.';

-- plpgsql (not sql) functions where they read tables created by later files (40-submissions.sql).
create function app_hidden.odata_stamp(form int, is_draft boolean) returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return concat_ws('/',
    (select concat_ws(',', count(*), max(s.id), max(s.created_at), max(s.updated_at), max(s.deleted_at), count(s.deleted_at),
                      count(s.review_state), string_agg(distinct s.review_state, ','))
       from app_public.submissions s where s.form_id = form and s.draft = is_draft),
    (select concat_ws(',', max(d.id), count(*)) from app_public.submission_defs d where d.form_id = form),
    (select count(a.blob_id) from app_public.submission_attachments a where a.form_id = form),
    (select max(a.updated_at) from app_public.actors a
      where a.id in (select s.submitter_id from app_public.submissions s where s.form_id = form)));
end
$$;
comment on function app_hidden.odata_stamp(int, boolean) is
  'Changes whenever anything an OData feed of the form shows changes (submissions, versions, reviews, attachments, submitter names): the ETag basis.';

create function app_hidden.odata_actor_name(actor int) returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return (select a.display_name from app_public.actors a where a.id = actor);
end
$$;
comment on function app_hidden.odata_actor_name(int) is 'A submitter''s display name for OData __system/submitterName (shown to whoever may read the submission).';

create function app_hidden.odata_instances(node jsonb) returns jsonb
language sql immutable parallel safe
as $$
  select case jsonb_typeof(node) when 'array' then node when 'object' then jsonb_build_array(node) else '[]'::jsonb end
$$;
comment on function app_hidden.odata_instances(jsonb) is 'A repeat''s instances as a json array, whatever shape the data has (none, one object, an array).';

create function app_hidden.odata_int(value text) returns bigint
language sql immutable parallel safe
as $$ select case when value ~ '^\s*[-+]?\d{1,18}\s*$' then value::bigint end $$;
comment on function app_hidden.odata_int(text) is 'An integer question''s text as bigint, null when it is not one.';

create function app_hidden.odata_decimal(value text) returns numeric
language sql immutable parallel safe
as $$ select case when value ~ '^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$' then value::numeric end $$;
comment on function app_hidden.odata_decimal(text) is 'A decimal question''s text as numeric, null when it is not a number.';

create function app_hidden.odata_boolean(value text) returns boolean
language sql immutable parallel safe
as $$ select case lower(trim(value)) when 'true' then true when '1' then true when 'false' then false when '0' then false end $$;
comment on function app_hidden.odata_boolean(text) is 'A boolean question''s text (true/false/1/0), null otherwise.';

create function app_hidden.odata_date(value text) returns date
language plpgsql immutable parallel safe
as $$
begin
  if value !~ '^\s*\d{4}-\d\d-\d\d' then return null; end if;
  return substring(trim(value) from 1 for 10)::date;
exception when others then
  return null;
end
$$;
comment on function app_hidden.odata_date(text) is 'A date question''s text as date, null when it is not a date.';

create function app_hidden.odata_timestamptz(value text) returns timestamptz
language plpgsql stable parallel safe
as $$
begin
  if value !~ '^\s*\d{4}-\d\d-\d\d' then return null; end if;
  return value::timestamptz;
exception when others then
  return null;
end
$$;
comment on function app_hidden.odata_timestamptz(text) is 'A dateTime question''s text as timestamptz, null when it is not one.';

grant execute on function
  app_public.odata_form(int, text, boolean),
  app_hidden.odata_stamp(int, boolean),
  app_hidden.odata_actor_name(int),
  app_hidden.odata_instances(jsonb),
  app_hidden.odata_int(text),
  app_hidden.odata_decimal(text),
  app_hidden.odata_boolean(text),
  app_hidden.odata_date(text),
  app_hidden.odata_timestamptz(text)
to fieldbase_request;

--! split: 40-submissions.sql
/*
 * Submissions: one logical submission per (form, instanceID, draft), one submission_defs row per
 * version (the XML byte for byte beside its structured data, parsed once at ingestion by the server
 * against the form version's field schema), the attachments each version expects (with their blobs
 * once received), and comments. Reads go through RLS (submission.read on the form); writes through
 * the security-definer functions in 41-submission-functions.sql.
 */
drop table if exists app_public.submission_comments cascade;
drop table if exists app_public.submission_attachments cascade;
drop table if exists app_public.submission_defs cascade;
drop table if exists app_public.submissions cascade;

create table app_public.submissions (
  id serial primary key,
  form_id int not null references app_public.forms (id) on delete cascade,
  instance_id text not null,
  draft boolean not null default false,
  submitter_id int references app_public.actors (id),
  device_id text,
  user_agent text,
  review_state text check (review_state in ('hasIssues', 'edited', 'approved', 'rejected')),
  created_at timestamptz(3) not null default clock_timestamp(),
  updated_at timestamptz(3),
  deleted_at timestamptz(3),
  unique (form_id, draft, instance_id)
);
comment on table app_public.submissions is 'Logical submissions (Central''s Submission): identified by the first version''s instanceID within a form; draft ones are test data of a form''s draft.';
create index submissions_form_created_idx on app_public.submissions (form_id, draft, created_at desc, id desc);
create index submissions_deleted_idx on app_public.submissions (deleted_at) where deleted_at is not null;

create table app_public.submission_defs (
  id serial primary key,
  submission_id int not null references app_public.submissions (id) on delete cascade,
  form_id int not null references app_public.forms (id) on delete cascade,
  form_def_id int not null references app_public.form_defs (id),
  instance_id text not null,
  instance_name text,
  xml text not null,
  data jsonb not null default '{}',
  encryption jsonb,
  submitter_id int references app_public.actors (id),
  device_id text,
  user_agent text,
  current boolean not null default true,
  created_at timestamptz(3) not null default clock_timestamp()
);
comment on table app_public.submission_defs is 'Versions of a submission: the XML exactly as received, its data structured by the form schema (group → object, repeat → array, leaf → text), who sent it.';
comment on column app_public.submission_defs.data is 'The instance keyed by the form''s field schema, for lists, exports, OData and SQL without re-parsing XML.';
comment on column app_public.submission_defs.encryption is 'Encrypted submissions as sent: {base64EncryptedKey, encryptedXmlFile, media[], base64EncryptedElementSignature}.';
create unique index submission_defs_current_key on app_public.submission_defs (submission_id) where current;
create index submission_defs_submission_idx on app_public.submission_defs (submission_id, id);
create index submission_defs_instance_idx on app_public.submission_defs (form_id, instance_id);

create table app_public.submission_attachments (
  submission_def_id int not null references app_public.submission_defs (id) on delete cascade,
  form_id int not null references app_public.forms (id) on delete cascade,
  name text not null,
  ord int not null,
  blob_id int references app_public.blobs (id),
  primary key (submission_def_id, name)
);
comment on table app_public.submission_attachments is 'Files a submission version refers to (binary questions, encrypted parts), with the blob once it has arrived.';
create index submission_attachments_blob_idx on app_public.submission_attachments (blob_id);

create table app_public.submission_comments (
  id serial primary key,
  submission_id int not null references app_public.submissions (id) on delete cascade,
  form_id int not null references app_public.forms (id) on delete cascade,
  actor_id int not null references app_public.actors (id),
  body text not null check (length(body) > 0),
  created_at timestamptz(3) not null default clock_timestamp()
);
comment on table app_public.submission_comments is 'Reviewers'' comments on a submission.';
create index submission_comments_submission_idx on app_public.submission_comments (submission_id, created_at);

/* Which forms' submissions may the actor read? Computed once per statement (policies wrap it in a
 * scalar subquery), so listing or exporting N submissions asks actor_can per form, not per row. */
drop function if exists app_hidden.forms_where_can(text) cascade;
create function app_hidden.forms_where_can(verb text) returns int[]
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(f.id), '{}') from app_public.forms f where app_hidden.actor_can(verb, f.actee_id)
$$;
comment on function app_hidden.forms_where_can(text) is 'Ids of the forms on which the current actor holds verb (for submission policies).';
grant execute on function app_hidden.forms_where_can(text) to fieldbase_request;

alter table app_public.submissions enable row level security;
alter table app_public.submission_defs enable row level security;
alter table app_public.submission_attachments enable row level security;
alter table app_public.submission_comments enable row level security;

create policy see_readable_submissions on app_public.submissions for select
  using (form_id = any (coalesce((select app_hidden.forms_where_can('submission.read')), '{}')));
create policy see_readable_submission_defs on app_public.submission_defs for select
  using (form_id = any (coalesce((select app_hidden.forms_where_can('submission.read')), '{}')));
create policy see_readable_submission_attachments on app_public.submission_attachments for select
  using (form_id = any (coalesce((select app_hidden.forms_where_can('submission.read')), '{}')));
create policy see_readable_submission_comments on app_public.submission_comments for select
  using (form_id = any (coalesce((select app_hidden.forms_where_can('submission.read')), '{}')));
drop policy if exists see_submission_blobs on app_public.blobs;
create policy see_submission_blobs on app_public.blobs for select using (
  exists (select 1 from app_public.submission_attachments a where a.blob_id = blobs.id)
);

grant select on app_public.submissions, app_public.submission_defs, app_public.submission_attachments,
  app_public.submission_comments to fieldbase_request;

--! split: 41-submission-functions.sql
/*
 * Submission API functions (security definer, one call per request step): resolve the form version a
 * submission is for (so the server can structure the XML by its schema), ingest it with its
 * attachments in the same transaction (duplicates, resubmissions that add files, edits by deprecatedID),
 * review, delete/restore/purge, comments and attachment uploads, with Central's problems and audits.
 */

drop function if exists app_hidden.form_for_submissions(int, text, text) cascade;
create function app_hidden.form_for_submissions(project int, xml_form text, verb text) returns app_public.forms
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$ select app_hidden.form_for(project, xml_form, verb) $$;
comment on function app_hidden.form_for_submissions(int, text, text) is 'Another name of app_hidden.form_for(project, xml_form, verb), kept for the export routes that still call it.';

drop function if exists app_hidden.submission_form_def(int, text, text, boolean, text) cascade;
create function app_hidden.submission_form_def(project int, xml_form text, form_version text, is_draft boolean, token text)
returns app_public.form_defs
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms;
  d app_public.form_defs;
begin
  select fo.* into f from app_public.forms fo join app_public.projects p on p.id = fo.project_id
  where fo.project_id = project and fo.xml_form_id = xml_form and fo.deleted_at is null and p.deleted_at is null;
  if is_draft and token is not null then
    -- Draft testing: the draft token in the URL is the credential.
    select * into d from app_public.form_defs where id = f.draft_def_id and draft_token = token;
    if d.id is null then
      perform app_hidden.problem(404.4, 'You tried to access a draft testing endpoint, but it does not exist anymore or your access is no longer valid. If the form has been published and you would like to submit to it, you should configure your device with an App User token. If there is a new draft, you may have to reconfigure your device from the draft settings.');
    end if;
  else
    if f.id is null then
      perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
    end if;
    perform app_hidden.assert_can('submission.create', f.actee_id);
    if is_draft then
      select * into d from app_public.form_defs where id = f.draft_def_id;
      if d.id is null then
        perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
      end if;
    else
      if f.current_def_id is null then
        perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
      end if;
      if f.state = 'closed' then
        perform app_hidden.problem(409.2, 'This form is not currently accepting submissions. Please talk to your program staff if this is unexpected.');
      end if;
      select * into d from app_public.form_defs
      where form_id = f.id and published_at is not null and version = coalesce(form_version, '')
      order by id desc limit 1;
    end if;
  end if;
  if d.id is null or d.version <> coalesce(form_version, '') then
    perform app_hidden.problem(404.6, format('The form version specified in this submission ''%s'' does not exist.', coalesce(form_version, '')),
      jsonb_build_object('formVersion', coalesce(form_version, '')));
  end if;
  return d;
end
$$;
comment on function app_hidden.submission_form_def(int, text, text, boolean, text) is 'The form version a submission is for, after Central''s checks: 404.1 unknown form, 403.1, 409.2 closed, 404.6 unknown version, 404.4 bad draft token.';

drop function if exists app_public.submission_target(int, text, text, boolean, text) cascade;
create function app_public.submission_target(project int, xml_form text, form_version text, is_draft boolean default false, token text default null)
returns table (form_def_id int, fields jsonb)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  with d as (select * from app_hidden.submission_form_def(project, xml_form, form_version, is_draft, token))
  select d.id, coalesce((
    select jsonb_agg(jsonb_build_object('path', ff.path, 'type', ff.type, 'binary', ff.binary, 'selectMultiple', ff.select_multiple) order by ff.ord)
    from app_public.form_fields ff where ff.form_def_id = d.id), '[]')
  from d
$$;
comment on function app_public.submission_target(int, text, text, boolean, text) is 'Step 1 of ingestion: the form version and its field schema, so the server can structure the XML before create_submission.';

drop function if exists app_hidden.attach_files(int, text[], text[], bytea[], boolean) cascade;
create function app_hidden.attach_files(def_id int, names text[], types text[], contents bytea[], overwrite boolean) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  attached int := 0;
  blob int;
begin
  for i in 1 .. coalesce(array_length(names, 1), 0) loop
    -- Only files the version expects are kept; on a plain resubmission, only the missing ones.
    if exists (select 1 from app_public.submission_attachments a where a.submission_def_id = def_id and a.name = names[i]
               and (overwrite or a.blob_id is null)) then
      blob := app_hidden.submission_blob(contents[i], types[i]);
      update app_public.submission_attachments set blob_id = blob where submission_def_id = def_id and name = names[i];
      attached := attached + 1;
    end if;
  end loop;
  return attached;
end
$$;

drop function if exists app_hidden.submission_blob(bytea, text) cascade;
create function app_hidden.submission_blob(content bytea, content_type text) returns int
language sql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
  insert into app_public.blobs (sha, md5, content_type, content)
  values (encode(digest(content, 'sha1'), 'hex'), md5(content), coalesce(content_type, 'application/octet-stream'), content)
  on conflict (sha) do update set sha = excluded.sha
  returning id
$$;
comment on function app_hidden.submission_blob(bytea, text) is 'Stores file content once by SHA-1 and returns its blob id.';

drop function if exists app_public.create_submission(int, boolean, text, text, text, text, text, jsonb, jsonb, text[], text, text, text[], text[], bytea[]) cascade;
create function app_public.create_submission(
  def_id int, is_draft boolean, token text, new_instance_id text, deprecated_id text, new_instance_name text,
  new_xml text, new_data jsonb, new_encryption jsonb, expected text[], new_device_id text, new_user_agent text,
  file_names text[], file_types text[], file_contents bytea[])
returns table (submission_id int, submission_def_id int, outcome text)
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.form_defs;
  f app_public.forms;
  s app_public.submissions;
  cur app_public.submission_defs;
  new_def int;
begin
  select * into d from app_public.form_defs where id = def_id;
  select * into f from app_public.forms where id = d.form_id;
  -- Re-check everything submission_target checked: this is the call that writes.
  perform app_hidden.submission_form_def(f.project_id, f.xml_form_id, d.version, is_draft, token);

  if deprecated_id is null then
    insert into app_public.submissions (form_id, instance_id, draft, submitter_id, device_id, user_agent)
    values (f.id, new_instance_id, is_draft, app_hidden.current_actor_id(), new_device_id, new_user_agent)
    on conflict (form_id, draft, instance_id) do nothing
    returning * into s;
    if s.id is null then
      -- Already known (possibly just committed by a concurrent request): a resubmission adding attachments.
      select * into s from app_public.submissions x where x.form_id = f.id and x.draft = is_draft and x.instance_id = new_instance_id for update;
      if s.deleted_at is not null then
        perform app_hidden.problem(409.18, 'This submission has been deleted. You may not resubmit it.');
      end if;
      select * into cur from app_public.submission_defs x where x.submission_id = s.id and x.current;
      if cur.xml is distinct from new_xml then
        perform app_hidden.problem(409.1, 'A submission already exists with this ID, but with different XML. Resubmissions to attach additional multimedia must resubmit an identical xml_submission_file.');
      end if;
      perform app_hidden.attach_files(cur.id, file_names, file_types, file_contents, false);
      return query select s.id, cur.id, 'resubmitted'::text;
      return;
    end if;
    insert into app_public.submission_defs (submission_id, form_id, form_def_id, instance_id, instance_name, xml, data, encryption,
                                            submitter_id, device_id, user_agent, current)
    values (s.id, f.id, d.id, new_instance_id, new_instance_name, new_xml, coalesce(new_data, '{}'), new_encryption,
            app_hidden.current_actor_id(), new_device_id, new_user_agent, true)
    returning id into new_def;
    insert into app_public.submission_attachments (submission_def_id, form_id, name, ord)
    select new_def, f.id, e.name, e.ord - 1 from unnest(expected) with ordinality e(name, ord) on conflict do nothing;
    perform app_hidden.attach_files(new_def, file_names, file_types, file_contents, true);
    if not is_draft then
      perform app_hidden.log_audit('submission.create', f.actee_id,
        jsonb_build_object('submissionId', s.id, 'instanceId', new_instance_id, 'submissionDefId', new_def));
    end if;
    return query select s.id, new_def, 'created'::text;
    return;
  end if;

  -- An edit: deprecatedID names the version being replaced, which must be the current one.
  select x.* into cur from app_public.submission_defs x join app_public.submissions sx on sx.id = x.submission_id
  where x.form_id = f.id and sx.draft = is_draft and x.instance_id = new_instance_id;
  if cur.id is not null then
    if cur.xml is distinct from new_xml then
      perform app_hidden.problem(409.1, 'A submission already exists with this ID, but with different XML. Resubmissions to attach additional multimedia must resubmit an identical xml_submission_file.');
    end if;
    perform app_hidden.attach_files(cur.id, file_names, file_types, file_contents, false);
    return query select cur.submission_id, cur.id, 'resubmitted'::text;
    return;
  end if;
  select x.* into cur from app_public.submission_defs x join app_public.submissions sx on sx.id = x.submission_id
  where x.form_id = f.id and sx.draft = is_draft and x.instance_id = deprecated_id
  order by x.current desc limit 1;
  if cur.id is null then
    perform app_hidden.problem(404.5, format('You tried to update an existing submission, but we can''t find that submission to update (%s)', deprecated_id),
      jsonb_build_object('deprecatedId', deprecated_id));
  end if;
  select * into s from app_public.submissions x where x.id = cur.submission_id for update;
  if s.deleted_at is not null then
    perform app_hidden.problem(409.18, 'This submission has been deleted. You may not resubmit it.');
  end if;
  if not cur.current then
    perform app_hidden.problem(409.9, format('You tried to update a submission, but the copy you were editing (%s) is now out of date. Please get the new version that has been submitted, and make your edits again.', deprecated_id),
      jsonb_build_object('deprecatedId', deprecated_id));
  end if;
  update app_public.submission_defs set current = false where id = cur.id;
  insert into app_public.submission_defs (submission_id, form_id, form_def_id, instance_id, instance_name, xml, data, encryption,
                                          submitter_id, device_id, user_agent, current)
  values (s.id, f.id, d.id, new_instance_id, new_instance_name, new_xml, coalesce(new_data, '{}'), new_encryption,
          app_hidden.current_actor_id(), new_device_id, new_user_agent, true)
  returning id into new_def;
  -- Files still referred to carry over from the replaced version; files sent now overwrite them.
  insert into app_public.submission_attachments (submission_def_id, form_id, name, ord, blob_id)
  select new_def, f.id, e.name, e.ord - 1,
         (select a.blob_id from app_public.submission_attachments a where a.submission_def_id = cur.id and a.name = e.name)
  from unnest(expected) with ordinality e(name, ord) on conflict do nothing;
  perform app_hidden.attach_files(new_def, file_names, file_types, file_contents, true);
  update app_public.submissions set review_state = 'edited', updated_at = clock_timestamp() where id = s.id;
  if not is_draft then
    perform app_hidden.log_audit('submission.update.version', f.actee_id,
      jsonb_build_object('submissionId', s.id, 'instanceId', s.instance_id, 'submissionDefId', new_def));
  end if;
  return query select s.id, new_def, 'edited'::text;
end
$$;
comment on function app_public.create_submission(int, boolean, text, text, text, text, text, jsonb, jsonb, text[], text, text, text[], text[], bytea[]) is
  'Step 2 of ingestion: stores a submission (or a new version when deprecated_id is given, or missing attachments of an identical resubmission) with its structured data and files; 409.1, 409.9, 409.18, 404.5 as Central.';

/* A submission of a form by its instanceID, for the REST routes, with the actor's rights checked. */
drop function if exists app_hidden.submission_for(int, text, text, boolean, text, boolean) cascade;
create function app_hidden.submission_for(project int, xml_form text, instance text, is_draft boolean, verb text, include_deleted boolean default false)
returns app_public.submissions
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, verb);
  s app_public.submissions;
begin
  select * into s from app_public.submissions x
  where x.form_id = f.id and x.draft = is_draft and x.instance_id = instance and (include_deleted or x.deleted_at is null);
  if s.id is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return s;
end
$$;
comment on function app_hidden.submission_for(int, text, text, boolean, text, boolean) is 'A submission by form and instanceID on which the actor holds verb (via its form); 404.1/403.1 otherwise.';

drop function if exists app_public.review_submission(int, text, text, text) cascade;
create function app_public.review_submission(project int, xml_form text, instance text, new_state text) returns app_public.submissions
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, false, 'submission.update');
begin
  if new_state is null or new_state not in ('hasIssues', 'edited', 'approved', 'rejected') then
    perform app_hidden.problem(400.8, format('Unexpected reviewState value %s; not a valid review state.', coalesce(new_state, 'null')),
      jsonb_build_object('field', 'reviewState', 'value', new_state, 'reason', 'not a valid review state.'));
  end if;
  update app_public.submissions set review_state = new_state, updated_at = clock_timestamp() where id = s.id returning * into s;
  perform app_hidden.log_audit('submission.update', (select actee_id from app_public.forms where id = s.form_id),
    jsonb_build_object('submissionId', s.id, 'instanceId', s.instance_id, 'reviewState', new_state,
      'submissionDefId', (select id from app_public.submission_defs where submission_id = s.id and current)));
  return s;
end
$$;
comment on function app_public.review_submission(int, text, text, text) is 'Sets a submission''s reviewState (submission.update); audited as submission.update.';

drop function if exists app_public.delete_submission(int, text, text) cascade;
create function app_public.delete_submission(project int, xml_form text, instance text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, false, 'submission.delete');
begin
  update app_public.submissions set deleted_at = clock_timestamp() where id = s.id;
  perform app_hidden.log_audit('submission.delete', (select actee_id from app_public.forms where id = s.form_id),
    jsonb_build_object('submissionId', s.id, 'instanceId', s.instance_id));
end
$$;
comment on function app_public.delete_submission(int, text, text) is 'Soft-deletes a submission (purged after 30 days); audited as submission.delete.';

drop function if exists app_public.restore_submission(int, text, text) cascade;
create function app_public.restore_submission(project int, xml_form text, instance text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, false, 'submission.restore', true);
begin
  if s.deleted_at is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  update app_public.submissions set deleted_at = null where id = s.id;
  perform app_hidden.log_audit('submission.restore', (select actee_id from app_public.forms where id = s.form_id),
    jsonb_build_object('submissionId', s.id, 'instanceId', s.instance_id));
end
$$;
comment on function app_public.restore_submission(int, text, text) is 'Undeletes a soft-deleted submission; audited as submission.restore.';

drop function if exists app_hidden.purge_submissions(interval) cascade;
create function app_hidden.purge_submissions(older_than interval default interval '30 days') returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  purged int;
begin
  with gone as (
    delete from app_public.submissions where deleted_at is not null and deleted_at < now() - older_than returning id, instance_id, form_id
  )
  select count(*) into purged from gone;
  if purged > 0 then
    perform app_hidden.log_audit('submission.purge', null, jsonb_build_object('submissionsDeleted', purged));
  end if;
  return purged;
end
$$;
comment on function app_hidden.purge_submissions(interval) is 'Permanently removes submissions deleted longer ago than older_than (the scheduled purge); audited as submission.purge.';

drop function if exists app_public.add_submission_comment(int, text, text, text) cascade;
create function app_public.add_submission_comment(project int, xml_form text, instance text, comment_body text) returns app_public.submission_comments
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, false, 'submission.update');
  c app_public.submission_comments;
begin
  if comment_body is null or comment_body = '' then
    perform app_hidden.problem(400.2, 'Required parameter body missing.', '{"field":"body"}');
  end if;
  insert into app_public.submission_comments (submission_id, form_id, actor_id, body)
  values (s.id, s.form_id, app_hidden.current_actor_id(), comment_body) returning * into c;
  return c;
end
$$;
comment on function app_public.add_submission_comment(int, text, text, text) is 'Adds a reviewer''s comment to a submission (submission.update).';

drop function if exists app_hidden.replace_attachment_blob(int, text, int) cascade;
create function app_hidden.replace_attachment_blob(def_id int, file_name text, new_blob int) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  old_blob int;
begin
  select blob_id into old_blob from app_public.submission_attachments where submission_def_id = def_id and name = file_name;
  if not found then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  update app_public.submission_attachments set blob_id = new_blob where submission_def_id = def_id and name = file_name;
  return old_blob;
end
$$;
comment on function app_hidden.replace_attachment_blob(int, text, int) is 'Sets (or clears, with null) the file of an expected attachment of one submission version and returns the old blob id; 404.1 when the version expects no such file. Callers check rights and audit.';

drop function if exists app_public.set_submission_attachment(int, text, text, boolean, text, text, bytea) cascade;
create function app_public.set_submission_attachment(project int, xml_form text, instance text, is_draft boolean, file_name text,
                                                     content_type text, content bytea)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, is_draft, 'submission.update');
  cur app_public.submission_defs;
  old_blob int;
  new_blob int;
begin
  select * into cur from app_public.submission_defs where submission_id = s.id and current;
  new_blob := case when content is null then null else app_hidden.submission_blob(content, content_type) end;
  old_blob := app_hidden.replace_attachment_blob(cur.id, file_name, new_blob);
  perform app_hidden.log_audit('submission.attachment.update', (select actee_id from app_public.forms where id = s.form_id),
    jsonb_build_object('instanceId', s.instance_id, 'submissionDefId', cur.id, 'name', file_name, 'oldBlobId', old_blob, 'newBlobId', new_blob));
end
$$;
comment on function app_public.set_submission_attachment(int, text, text, boolean, text, text, bytea) is 'Uploads (or clears, with null content) an expected attachment of a submission''s current version; audited as submission.attachment.update.';

drop function if exists app_public.submission_audits(int, text, text) cascade;
create function app_public.submission_audits(project int, xml_form text, instance text)
returns setof app_public.audits
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select a.* from app_public.audits a
  where a.actee_id = (select f.actee_id from app_public.forms f where f.id = (app_hidden.submission_for(project, xml_form, instance, false, 'submission.read')).form_id)
    and a.details->>'submissionId' = (app_hidden.submission_for(project, xml_form, instance, false, 'submission.read')).id::text
  order by a.logged_at desc, a.id desc
$$;
comment on function app_public.submission_audits(int, text, text) is 'A submission''s audit log (submission.read on its form), newest first.';

drop function if exists app_public.form_submitters(int, text, boolean) cascade;
create function app_public.form_submitters(project int, xml_form text, is_draft boolean default false)
returns setof app_public.actors
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select a.* from app_public.actors a
  where a.id in (select s.submitter_id from app_public.submissions s
                 where s.form_id = (app_hidden.form_for(project, xml_form, 'submission.read')).id
                   and s.draft = is_draft and s.deleted_at is null)
  order by a.display_name, a.id
$$;
comment on function app_public.form_submitters(int, text, boolean) is 'Every actor who has submitted to a form (submission.read).';

/* Draft submissions are test data: they go when the draft is published, replaced or deleted. */
drop function if exists app_hidden.drop_draft_submissions() cascade;
create function app_hidden.drop_draft_submissions() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  delete from app_public.submissions where form_id = new.id and draft;
  return null;
end
$$;
create trigger drop_draft_submissions after update of draft_def_id on app_public.forms
  for each row when (old.draft_def_id is distinct from new.draft_def_id)
  execute function app_hidden.drop_draft_submissions();

grant execute on function
  app_hidden.form_for_submissions(int, text, text),
  app_hidden.submission_for(int, text, text, boolean, text, boolean),
  app_public.submission_target(int, text, text, boolean, text),
  app_public.create_submission(int, boolean, text, text, text, text, text, jsonb, jsonb, text[], text, text, text[], text[], bytea[]),
  app_public.review_submission(int, text, text, text),
  app_public.delete_submission(int, text, text),
  app_public.restore_submission(int, text, text),
  app_public.add_submission_comment(int, text, text, text),
  app_public.set_submission_attachment(int, text, text, boolean, text, text, bytea),
  app_public.submission_audits(int, text, text),
  app_public.form_submitters(int, text, boolean)
to fieldbase_request;

drop function if exists app_hidden.submission_actor_json(int) cascade;
create function app_hidden.submission_actor_json(actor int) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.actor_json(a) from app_public.actors a where a.id = actor
$$;
comment on function app_hidden.submission_actor_json(int) is 'The submitter of a submission a reader may see (App Users and Public Links included), in Central''s Actor shape.';
grant execute on function app_hidden.submission_actor_json(int) to fieldbase_request;

--! split: 45-export-performance.sql
/*
 * Set-based helpers for exports and OData feeds: the display names of a form's submitters, read once per
 * statement (a materialized CTE joined by id) instead of one security-definer function call per row.
 */
drop function if exists app_hidden.form_submitter_names(int) cascade;
create function app_hidden.form_submitter_names(form int) returns table (id int, display_name text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select a.id, a.display_name from app_public.actors a
  where a.id in (select s.submitter_id from app_public.submissions s where s.form_id = form)
    and app_hidden.actor_can('submission.read', (select f.actee_id from app_public.forms f where f.id = form))
$$;
comment on function app_hidden.form_submitter_names(int) is
  'Id and display name of everyone who submitted to a form, for readers of its submissions (submission.read), else nothing: exports and OData join it once per query.';
grant execute on function app_hidden.form_submitter_names(int) to fieldbase_request;

--! split: 46-submission-geojson.sql
/*
 * Submission geodata as GeoJSON (…/submissions.geojson, …/submissions/:instanceId.geojson and per version),
 * computed from the structured data stored at ingestion: ODK's geopoint ("lat lon [alt [acc]]"), geotrace
 * (points joined by ';') and geoshape (a closed trace) become Point, LineString and Polygon with [lon, lat(, alt)]
 * coordinates; values that are not valid coordinates give no geometry. The field is the one asked for, or the
 * form version's first geo field outside any repeat.
 */
drop function if exists app_hidden.odk_geometry(text, text) cascade;
drop function if exists app_hidden.odk_coordinates(text) cascade;
drop function if exists app_hidden.submission_geometry(int, jsonb, text) cascade;

create function app_hidden.odk_coordinates(point text) returns jsonb
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  parts text[] := regexp_split_to_array(trim(point), '\s+');
  lat numeric;
  lon numeric;
begin
  if array_length(parts, 1) not between 2 and 4
     or exists (select 1 from unnest(parts) p where p !~ '^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$') then
    return null;
  end if;
  lat := parts[1]::numeric;
  lon := parts[2]::numeric;
  if lat not between -90 and 90 or lon not between -180 and 180 then
    return null;
  end if;
  return case when array_length(parts, 1) >= 3 then jsonb_build_array(lon, lat, parts[3]::numeric) else jsonb_build_array(lon, lat) end;
end
$$;
comment on function app_hidden.odk_coordinates(text) is 'One ODK point ("lat lon [alt [acc]]") as GeoJSON coordinates [lon, lat(, alt)], or null when not valid.';

create function app_hidden.odk_geometry(kind text, value text) returns jsonb
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  points jsonb;
  invalid boolean;
begin
  if value is null or trim(value) = '' then
    return null;
  end if;
  if kind = 'geopoint' then
    points := app_hidden.odk_coordinates(value);
    return case when points is null then null else jsonb_build_object('type', 'Point', 'coordinates', points) end;
  end if;
  select jsonb_agg(app_hidden.odk_coordinates(p) order by n), bool_or(app_hidden.odk_coordinates(p) is null)
  into points, invalid
  from unnest(regexp_split_to_array(trim(both ';' from trim(value)), '\s*;\s*')) with ordinality as t(p, n);
  if invalid or points is null then
    return null;
  end if;
  if kind = 'geotrace' then
    return case when jsonb_array_length(points) >= 2 then jsonb_build_object('type', 'LineString', 'coordinates', points) end;
  elsif kind = 'geoshape' then
    if points->0 is distinct from points->-1 then
      points := points || jsonb_build_array(points->0);
    end if;
    return case when jsonb_array_length(points) >= 4 then jsonb_build_object('type', 'Polygon', 'coordinates', jsonb_build_array(points)) end;
  end if;
  return null;
end
$$;
comment on function app_hidden.odk_geometry(text, text) is 'An ODK geopoint/geotrace/geoshape value as a GeoJSON geometry (Point/LineString/Polygon), or null when not valid.';

create function app_hidden.submission_geometry(def_id int, data jsonb, wanted_path text)
returns table (path text, geometry jsonb)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select f.path, app_hidden.odk_geometry(f.type, data #>> string_to_array(substr(f.path, 2), '/'))
  from app_public.form_fields f
  where f.form_def_id = def_id and f.type in ('geopoint', 'geotrace', 'geoshape')
    and (wanted_path is null or f.path = wanted_path)
    and not exists (select 1 from app_public.form_fields r
                    where r.form_def_id = def_id and r.type = 'repeat' and f.path like r.path || '/%')
  order by f.ord
  limit 1
$$;
comment on function app_hidden.submission_geometry(int, jsonb, text) is
  'The geometry of one submission version: of the field at wanted_path, or of its form version''s first geo field outside repeats.';

grant execute on function app_hidden.odk_coordinates(text), app_hidden.odk_geometry(text, text),
  app_hidden.submission_geometry(int, jsonb, text) to fieldbase_request;

--! split: 47-managed-encryption.sql
/*
 * Project managed encryption (POST /v1/projects/:id/key): the server generates an RSA key pair, seals the
 * private key under the caller's passphrase (server/formats/decrypt.ts) and hands both here; the project
 * gets the key, and every form of the project without a self-supplied key gets a new published version
 * (and a new draft) whose XML carries the public key. The sealed private key is only ever read back by the
 * CSV export, which opens it with the passphrase given for that one request.
 */
drop function if exists app_public.enable_managed_encryption(int, text, jsonb, text) cascade;
drop function if exists app_public.set_form_managed_key(int, text, text, jsonb, text, jsonb) cascade;
drop function if exists app_hidden.managed_private_keys(int[]) cascade;

create function app_public.enable_managed_encryption(project int, public_key text, sealed jsonb, passphrase_hint text)
returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p app_public.projects := app_hidden.live_project(project, 'project.update');
  new_key int;
begin
  -- Serialise with concurrent enabling of the same project.
  select * into p from app_public.projects where id = p.id for update;
  if p.key_id is not null then
    perform app_hidden.problem(409.4, 'Could not activate feature (managed encryption) as it was already activated',
      jsonb_build_object('feature', 'managed encryption'));
  end if;
  insert into app_public.keys (public, private, managed, hint)
  values (public_key, sealed, true, passphrase_hint)
  returning id into new_key;
  update app_public.projects set key_id = new_key, updated_at = clock_timestamp() where id = p.id;
  perform app_hidden.log_audit('project.update', p.actee_id, jsonb_build_object('encrypted', true));
  return new_key;
end
$$;
comment on function app_public.enable_managed_encryption(int, text, jsonb, text) is
  'POST /projects/:id/key: stores the managed key pair (private half sealed under the passphrase) and sets it on the project; 409.4 when already enabled.';

create function app_public.set_form_managed_key(project int, xml_form text, published_xml text, published_parsed jsonb,
                                                draft_xml text, draft_parsed jsonb)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form);
  p app_public.projects := app_hidden.live_project(project, 'project.update');
  base app_public.forms;
  def app_public.form_defs;
  old_draft app_public.form_defs;
begin
  if p.key_id is null or (published_xml is null and draft_xml is null) then
    return;
  end if;
  if published_xml is not null and f.current_def_id is not null then
    -- A new published version carrying the key; attachments carry over from the published version.
    base := f;
    base.draft_def_id := null;
    def := app_hidden.insert_form_def(base, published_xml, published_parsed, (select xls_blob_id from app_public.form_defs where id = f.current_def_id));
    update app_public.form_defs set published_at = clock_timestamp() where id = def.id;
    update app_public.forms set current_def_id = def.id, updated_at = clock_timestamp() where id = f.id;
    perform app_hidden.log_audit('form.update.publish', f.actee_id, jsonb_build_object('oldDefId', f.current_def_id, 'newDefId', def.id));
  end if;
  if draft_xml is not null and f.draft_def_id is not null then
    select * into old_draft from app_public.form_defs where id = f.draft_def_id;
    def := app_hidden.insert_form_def(f, draft_xml, draft_parsed, old_draft.xls_blob_id);
    update app_public.form_defs set draft_token = null where id = old_draft.id;
    update app_public.form_defs set draft_token = old_draft.draft_token, enketo_id = old_draft.enketo_id where id = def.id;
    update app_public.forms set draft_def_id = def.id where id = f.id;
    perform app_hidden.drop_unused_def(old_draft.id);
  end if;
end
$$;
comment on function app_public.set_form_managed_key(int, text, text, jsonb, text, jsonb) is
  'Managed encryption: re-publishes a form (and replaces its draft) with the XML carrying the project''s public key.';

create function app_hidden.managed_private_keys(ids int[]) returns table (id int, private jsonb)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select k.id, k.private from app_public.keys k
  where k.id = any (ids) and k.managed
    and exists (select 1 from app_public.form_defs fd join app_public.forms f on f.id = fd.form_id
                where fd.key_id = k.id and app_hidden.actor_can('submission.read', f.actee_id))
$$;
comment on function app_hidden.managed_private_keys(int[]) is 'Sealed private halves of managed keys (useless without their passphrase) of forms whose submissions the actor may read, for decrypting exports.';

grant execute on function
  app_public.enable_managed_encryption(int, text, jsonb, text),
  app_public.set_form_managed_key(int, text, text, jsonb, text, jsonb),
  app_hidden.managed_private_keys(int[])
to fieldbase_request;

-- The sealed private key stays out of reach of plain selects: readers see keys without it.
revoke select on app_public.keys from fieldbase_request;
grant select (id, public, managed, hint, created_at) on app_public.keys to fieldbase_request;

--! split: 48-enketo-and-submission-extras.sql
/*
 * Enketo: the audit actions after which Central asks Enketo for survey ids (form.create, form.update.draft.set,
 * form.update.publish) queue the enketo__create job (workers/tasks/enketo.ts, a no-op without Enketo), and
 * forms are found by Enketo id for GET /v1/form-links/:enketoId/form.
 * Submissions: clearing an attachment of an older version (DELETE …/versions/:versionId/attachments/:name),
 * and comments audited as comment.create.
 */
drop trigger if exists queue_enketo_survey on app_public.audits;
drop function if exists app_hidden.queue_enketo_survey() cascade;
drop function if exists app_hidden.form_by_enketo_id(text) cascade;
drop function if exists app_public.clear_submission_version_attachment(int, text, text, text, text) cascade;
drop trigger if exists audit_submission_comment on app_public.submission_comments;
drop function if exists app_hidden.audit_submission_comment() cascade;

create function app_hidden.queue_enketo_survey() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.enqueue('enketo__create', jsonb_build_object('formActeeId', new.actee_id));
  return null;
end
$$;
comment on function app_hidden.queue_enketo_survey() is 'Queues enketo__create for the form an audited form action was about.';
create trigger queue_enketo_survey after insert on app_public.audits
  for each row when (new.action in ('form.create', 'form.update.draft.set', 'form.update.publish') and new.actee_id is not null)
  execute function app_hidden.queue_enketo_survey();

create function app_hidden.form_by_enketo_id(enketo text) returns table (project_id int, xml_form_id text, draft boolean)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select f.project_id, f.xml_form_id, false from app_public.forms f
    where (f.enketo_id = enketo or f.enketo_once_id = enketo) and f.deleted_at is null and f.current_def_id is not null
    union all
    select f.project_id, f.xml_form_id, true from app_public.forms f join app_public.form_defs d on d.id = f.draft_def_id
    where d.enketo_id = enketo and f.deleted_at is null
    limit 1;
  if not found then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
end
$$;
comment on function app_hidden.form_by_enketo_id(text) is 'Which form (and whether its draft) an Enketo id belongs to; 404.1 when none. Callers then read the form under its own rights.';

create function app_public.clear_submission_version_attachment(project int, xml_form text, instance text, version_instance text, file_name text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, false, 'submission.update');
  def_id int;
  old_blob int;
begin
  select d.id into def_id from app_public.submission_defs d where d.submission_id = s.id and d.instance_id = version_instance;
  old_blob := app_hidden.replace_attachment_blob(def_id, file_name, null);
  perform app_hidden.log_audit('submission.attachment.update', (select actee_id from app_public.forms where id = s.form_id),
    jsonb_build_object('submissionId', s.id, 'instanceId', s.instance_id, 'submissionDefId', def_id, 'name', file_name, 'oldBlobId', old_blob, 'newBlobId', null));
end
$$;
comment on function app_public.clear_submission_version_attachment(int, text, text, text, text) is
  'DELETE …/versions/:versionId/attachments/:name: clears the file of one version''s expected attachment; audited as submission.attachment.update.';

create function app_hidden.audit_submission_comment() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.log_audit('comment.create', (select actee_id from app_public.forms where id = new.form_id),
    jsonb_build_object('submissionId', new.submission_id,
      'instanceId', (select instance_id from app_public.submissions where id = new.submission_id), 'commentId', new.id));
  return null;
end
$$;
comment on function app_hidden.audit_submission_comment() is 'Audits every new submission comment as comment.create (on the form, with the submission).';
create trigger audit_submission_comment after insert on app_public.submission_comments
  for each row execute function app_hidden.audit_submission_comment();

grant execute on function app_hidden.form_by_enketo_id(text),
  app_public.clear_submission_version_attachment(int, text, text, text, text) to fieldbase_request;

--! split: 49-submission-ingest-performance.sql
/*
 * Ingestion without rebuilding the form's schema per request: step 1 of ingestion resolves the form version
 * (with every check of app_public.submission_target) and returns only its id and content hash. A stored form
 * version's fields never change, so the server keeps them per version in memory and asks
 * app_public.submission_target for them only when it has not seen that version yet.
 */
drop function if exists app_public.submission_target_def(int, text, text, boolean, text) cascade;
create function app_public.submission_target_def(project int, xml_form text, form_version text,
                                                 is_draft boolean default false, token text default null)
returns table (form_def_id int, form_def_sha256 text)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.form_defs := app_hidden.submission_form_def(project, xml_form, form_version, is_draft, token);
begin
  return query select d.id, d.sha256;
end
$$;
comment on function app_public.submission_target_def(int, text, text, boolean, text) is
  'Step 1 of ingestion without the schema: the form version a submission is for (id and SHA-256 of its XML, which identify its fields), after the checks of app_public.submission_target.';
grant execute on function app_public.submission_target_def(int, text, text, boolean, text) to fieldbase_request;

--! split: 50-datasets.sql
/*
 * Datasets (Central's Entity Lists): one per (project, name), an actee beneath the project's; their
 * properties; which form versions write to them (with the entity actions they declare) and which fields
 * fill each property. Publishing a form version that declares entities creates what it needs (a trigger on
 * form_defs.published_at, so the forms work need not call anything). Reads go through RLS
 * (dataset.list/dataset.read on the dataset or its project); writes through the functions below.
 */
drop table if exists app_public.ds_property_fields cascade;
drop table if exists app_public.dataset_form_defs cascade;
drop table if exists app_public.ds_properties cascade;
drop table if exists app_public.datasets cascade;
drop function if exists app_hidden.valid_dataset_name(text) cascade;
drop function if exists app_hidden.valid_property_name(text) cascade;
drop function if exists app_hidden.dataset_for(int, text, text) cascade;
drop function if exists app_hidden.datasets_where_can(text) cascade;
drop function if exists app_hidden.check_dataset_name(int, text) cascade;
drop function if exists app_hidden.check_access_filter(jsonb) cascade;
drop function if exists app_public.create_dataset(int, jsonb) cascade;
drop function if exists app_public.update_dataset(int, text, jsonb) cascade;
drop function if exists app_public.delete_dataset(int, text) cascade;
drop function if exists app_public.create_property(int, text, text) cascade;
drop function if exists app_hidden.ensure_dataset(int, text, timestamptz) cascade;
drop function if exists app_hidden.publish_form_datasets() cascade;
drop function if exists app_hidden.link_dataset_attachment() cascade;

create table app_public.datasets (
  id serial primary key,
  project_id int not null references app_public.projects (id),
  name text not null,
  actee_id text not null unique references app_public.actees (id),
  approval_required boolean not null default false,
  owner_only boolean not null default false,
  access_filter jsonb,
  created_at timestamptz(3) not null default clock_timestamp(),
  published_at timestamptz(3),
  updated_at timestamptz(3),
  deleted_at timestamptz(3)
);
comment on table app_public.datasets is 'Entity Lists (Central''s Datasets): named collections of Entities in a project; a dataset''s actee is a child of its project''s.';
comment on column app_public.datasets.access_filter is 'Which entities restricted actors see through linked form attachments: null, {"type":"ownerOnly"} or {"type":"property","rules":[{datasetProperty, actorProperty}]}.';
create unique index datasets_project_name_live_key on app_public.datasets (project_id, lower(name)) where deleted_at is null;
create index datasets_deleted_idx on app_public.datasets (deleted_at) where deleted_at is not null;

create table app_public.ds_properties (
  id serial primary key,
  dataset_id int not null references app_public.datasets (id) on delete cascade,
  name text not null,
  published_at timestamptz(3),
  created_at timestamptz(3) not null default clock_timestamp()
);
comment on table app_public.ds_properties is 'Properties of a dataset (beyond name and label); deleting one removes its row, so the name may be added again.';
create unique index ds_properties_dataset_name_key on app_public.ds_properties (dataset_id, lower(name));

create table app_public.dataset_form_defs (
  dataset_id int not null references app_public.datasets (id) on delete cascade,
  form_def_id int not null references app_public.form_defs (id) on delete cascade,
  actions jsonb not null default '["create"]',
  primary key (dataset_id, form_def_id)
);
comment on table app_public.dataset_form_defs is 'Form versions that write entities to a dataset, with the actions (create, update) their entity blocks permit.';
create index dataset_form_defs_form_def_idx on app_public.dataset_form_defs (form_def_id);

create table app_public.ds_property_fields (
  ds_property_id int not null references app_public.ds_properties (id) on delete cascade,
  form_def_id int not null references app_public.form_defs (id) on delete cascade,
  path text not null,
  primary key (ds_property_id, form_def_id, path)
);
comment on table app_public.ds_property_fields is 'Which field (path, as in form_fields) of which form version saves to which property (entities:saveto).';
create index ds_property_fields_form_def_idx on app_public.ds_property_fields (form_def_id);

/* Names. Datasets: an XML name without '.' that does not start with '__'. Properties: an XML name that is
 * not name or label (any case) and does not start with '__'. */
create function app_hidden.valid_dataset_name(name text) returns boolean
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select name ~ '^(?!__)[[:alpha:]:_][[:alpha:][:digit:]:_-]*$' $$;
comment on function app_hidden.valid_dataset_name(text) is 'Central''s dataset name rule (XML identifier, no period, no leading __).';

create function app_hidden.valid_property_name(name text) returns boolean
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select name ~ '^(?!__)[[:alpha:]_][[:alpha:][:digit:]._-]*$' and lower(name) not in ('name', 'label') $$;
comment on function app_hidden.valid_property_name(text) is 'Central''s entity property name rule (XML identifier, not name/label, no leading __).';

create function app_hidden.datasets_where_can(verb text) returns int[]
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(d.id), '{}') from app_public.datasets d where app_hidden.actor_can(verb, d.actee_id)
$$;
comment on function app_hidden.datasets_where_can(text) is 'Ids of the datasets on which the current actor holds verb (policies call it once per statement).';

create function app_hidden.dataset_for(project int, ds_name text, verb text) returns app_public.datasets
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets;
begin
  select ds.* into d from app_public.datasets ds join app_public.projects p on p.id = ds.project_id
  where ds.project_id = project and ds.name = ds_name and ds.deleted_at is null and ds.published_at is not null
    and p.deleted_at is null;
  if d is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  perform app_hidden.assert_can(verb, d.actee_id);
  return d;
end
$$;
comment on function app_hidden.dataset_for(int, text, text) is 'A live published dataset of a project by name on which the actor holds verb; 404.1 or 403.1 otherwise.';

create function app_hidden.check_dataset_name(project int, ds_name text) returns void
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  existing text;
begin
  if ds_name is null or trim(ds_name) = '' then
    perform app_hidden.problem(400.2, 'Required parameter name missing.', '{"field":"name"}');
  end if;
  if not app_hidden.valid_dataset_name(ds_name) then
    perform app_hidden.problem(400.8, format('Unexpected name value %s; This is not a valid dataset name.', ds_name),
      jsonb_build_object('field', 'name', 'value', ds_name, 'reason', 'This is not a valid dataset name.'));
  end if;
  select name into existing from app_public.datasets
  where project_id = project and lower(name) = lower(ds_name) and deleted_at is null;
  if existing = ds_name then
    perform app_hidden.problem(409.3, format('A resource already exists with name,projectId value(s) of %s,%s.', ds_name, project),
      jsonb_build_object('fields', jsonb_build_array('name', 'projectId'), 'values', jsonb_build_array(ds_name, project)));
  elsif existing is not null then
    perform app_hidden.problem(409.16, format('A dataset named ''%s'' exists and you provided ''%s'' with the same name but different capitalization.', existing, ds_name),
      jsonb_build_object('current', existing, 'provided', ds_name));
  end if;
end
$$;

create function app_hidden.check_access_filter(filter jsonb) returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  rule jsonb;
begin
  if filter is null or jsonb_typeof(filter) = 'null' then
    return;
  end if;
  if jsonb_typeof(filter) <> 'object' or coalesce(filter->>'type', '') not in ('ownerOnly', 'property') then
    perform app_hidden.problem(400.8, format('Unexpected accessFilter value %s; accessFilter.type must be ownerOnly or property.', filter),
      jsonb_build_object('field', 'accessFilter', 'value', filter, 'reason', 'accessFilter.type must be ownerOnly or property.'));
  end if;
  if filter->>'type' = 'property' then
    if jsonb_typeof(filter->'rules') is distinct from 'array' or jsonb_array_length(filter->'rules') = 0 then
      perform app_hidden.problem(400.8, format('Unexpected accessFilter value %s; accessFilter.rules must be a non-empty array.', filter),
        jsonb_build_object('field', 'accessFilter', 'value', filter, 'reason', 'accessFilter.rules must be a non-empty array.'));
    end if;
    for rule in select r from jsonb_array_elements(filter->'rules') r loop
      if jsonb_typeof(rule->'datasetProperty') is distinct from 'string' or jsonb_typeof(rule->'actorProperty') is distinct from 'string' then
        perform app_hidden.problem(400.8, format('Unexpected accessFilter value %s; Each rule needs datasetProperty and actorProperty.', filter),
          jsonb_build_object('field', 'accessFilter', 'value', filter, 'reason', 'Each rule needs datasetProperty and actorProperty.'));
      end if;
    end loop;
  end if;
end
$$;

create function app_public.create_dataset(project int, fields jsonb) returns app_public.datasets
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p app_public.projects;
  d app_public.datasets;
begin
  perform app_hidden.assert_can('dataset.create', app_hidden.project_actee(project));
  p := app_hidden.live_project(project);
  if jsonb_typeof(fields->'name') is not null and jsonb_typeof(fields->'name') not in ('string', 'null') then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (name) to be (string)',
      jsonb_build_object('field', 'name', 'value', fields->'name', 'expected', 'string'));
  end if;
  perform app_hidden.check_dataset_name(p.id, fields->>'name');
  if jsonb_typeof(fields->'approvalRequired') not in ('boolean', 'null') then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (approvalRequired) to be (boolean)',
      jsonb_build_object('field', 'approvalRequired', 'value', fields->'approvalRequired', 'expected', 'boolean'));
  end if;
  if jsonb_typeof(fields->'ownerOnly') not in ('boolean', 'null') then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (ownerOnly) to be (boolean)',
      jsonb_build_object('field', 'ownerOnly', 'value', fields->'ownerOnly', 'expected', 'boolean'));
  end if;
  perform app_hidden.check_access_filter(fields->'accessFilter');
  insert into app_public.datasets (project_id, name, actee_id, approval_required, owner_only, access_filter, published_at)
  values (p.id, fields->>'name', app_hidden.new_actee('dataset', p.actee_id),
          coalesce((fields->>'approvalRequired')::boolean, false), coalesce((fields->>'ownerOnly')::boolean, false),
          nullif(fields->'accessFilter', 'null'::jsonb), clock_timestamp())
  returning * into d;
  update app_public.datasets set published_at = created_at where id = d.id returning * into d;
  perform app_hidden.log_audit('dataset.create', d.actee_id, jsonb_build_object('properties', '[]'::jsonb));
  return d;
end
$$;
comment on function app_public.create_dataset(int, jsonb) is 'Creates an empty dataset from {name, approvalRequired?, ownerOnly?, accessFilter?} (dataset.create on the project).';

create function app_public.update_dataset(project int, ds_name text, fields jsonb) returns app_public.datasets
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'dataset.update');
  data jsonb := '{}';
begin
  if jsonb_typeof(fields->'approvalRequired') not in ('boolean', 'null') then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (approvalRequired) to be (boolean)',
      jsonb_build_object('field', 'approvalRequired', 'value', fields->'approvalRequired', 'expected', 'boolean'));
  end if;
  if jsonb_typeof(fields->'ownerOnly') not in ('boolean', 'null') then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (ownerOnly) to be (boolean)',
      jsonb_build_object('field', 'ownerOnly', 'value', fields->'ownerOnly', 'expected', 'boolean'));
  end if;
  if fields ? 'accessFilter' then
    perform app_hidden.check_access_filter(fields->'accessFilter');
    data := data || jsonb_build_object('accessFilter', fields->'accessFilter');
  elsif jsonb_typeof(fields->'ownerOnly') = 'boolean' then
    data := data || jsonb_build_object('ownerOnly', fields->'ownerOnly');
  end if;
  if jsonb_typeof(fields->'approvalRequired') = 'boolean' then
    data := data || jsonb_build_object('approvalRequired', fields->'approvalRequired');
  end if;
  update app_public.datasets set
    approval_required = coalesce((data->>'approvalRequired')::boolean, approval_required),
    owner_only = case when data ? 'ownerOnly' then (data->>'ownerOnly')::boolean
                      when data ? 'accessFilter' then coalesce(data->'accessFilter'->>'type' = 'ownerOnly', false)
                      else owner_only end,
    access_filter = case when data ? 'accessFilter' then nullif(data->'accessFilter', 'null'::jsonb)
                         when data ? 'ownerOnly' then case when (data->>'ownerOnly')::boolean then '{"type":"ownerOnly"}'::jsonb end
                         else access_filter end,
    updated_at = clock_timestamp()
  where id = d.id
  returning * into d;
  perform app_hidden.log_audit('dataset.update', d.actee_id, jsonb_build_object('data', data));
  return d;
end
$$;
comment on function app_public.update_dataset(int, text, jsonb) is 'Changes approvalRequired, ownerOnly or accessFilter (dataset.update); accessFilter wins over ownerOnly.';

create function app_public.delete_dataset(project int, ds_name text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'dataset.update');
begin
  if exists (
    select 1 from app_public.forms f join app_public.form_defs fd on fd.id in (f.current_def_id, f.draft_def_id)
    where f.deleted_at is null and (
      exists (select 1 from app_public.dataset_form_defs x where x.form_def_id = fd.id and x.dataset_id = d.id)
      or exists (select 1 from app_public.form_attachments a where a.form_def_id = fd.id and a.dataset_id = d.id))
  ) then
    perform app_hidden.problem(409.21, 'You can''t delete this dataset because there are Form(s) dependent on it.');
  end if;
  update app_public.datasets set deleted_at = clock_timestamp() where id = d.id;
  perform app_hidden.log_audit('dataset.delete', d.actee_id, null);
end
$$;
comment on function app_public.delete_dataset(int, text) is 'Moves a dataset no form depends on to the trash (purged with its entities after 30 days); 409.21 otherwise.';

create function app_public.create_property(project int, ds_name text, prop_name text) returns app_public.ds_properties
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'dataset.update');
  prop app_public.ds_properties;
begin
  if prop_name is null or trim(prop_name) = '' then
    perform app_hidden.problem(400.2, 'Required parameter name missing.', '{"field":"name"}');
  end if;
  if not app_hidden.valid_property_name(prop_name) then
    perform app_hidden.problem(400.8, format('Unexpected name value %s; This is not a valid property name.', prop_name),
      jsonb_build_object('field', 'name', 'value', prop_name, 'reason', 'This is not a valid property name.'));
  end if;
  if exists (select 1 from app_public.ds_properties where dataset_id = d.id and lower(name) = lower(prop_name)) then
    perform app_hidden.problem(409.3, format('A resource already exists with name,datasetId value(s) of %s,%s.', prop_name, d.id),
      jsonb_build_object('fields', jsonb_build_array('name', 'datasetId'), 'values', jsonb_build_array(prop_name, d.id)));
  end if;
  insert into app_public.ds_properties (dataset_id, name, published_at) values (d.id, prop_name, clock_timestamp())
  returning * into prop;
  update app_public.datasets set updated_at = clock_timestamp() where id = d.id;
  perform app_hidden.log_audit('dataset.update', d.actee_id, jsonb_build_object('properties', jsonb_build_array(prop_name)));
  return prop;
end
$$;
comment on function app_public.create_property(int, text, text) is 'Adds a property to a dataset (dataset.update); 409.3 when one exists with that name in any case.';

/* Publishing: creates the datasets and properties a form version declares, records which fields save to
 * which property, and links the version's <dataset>.csv attachments. Runs as a trigger on form_defs so the
 * forms work stays unaware of datasets. */
create function app_hidden.ensure_dataset(project int, ds_name text, at timestamptz) returns app_public.datasets
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets;
  p app_public.projects;
begin
  select * into d from app_public.datasets where project_id = project and name = ds_name and deleted_at is null;
  if d.id is not null then
    if d.published_at is null then
      update app_public.datasets set published_at = at where id = d.id returning * into d;
    end if;
    return d;
  end if;
  select * into p from app_public.projects where id = project;
  perform app_hidden.check_dataset_name(project, ds_name);
  insert into app_public.datasets (project_id, name, actee_id, published_at)
  values (project, ds_name, app_hidden.new_actee('dataset', p.actee_id), at)
  returning * into d;
  perform app_hidden.log_audit('dataset.create', d.actee_id, jsonb_build_object('properties', '[]'::jsonb));
  return d;
end
$$;

create function app_hidden.publish_form_datasets() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  project int := (select project_id from app_public.forms where id = new.form_id);
  block jsonb;
  prop jsonb;
  d app_public.datasets;
  owner_path text;
  prop_row app_public.ds_properties;
  new_props jsonb;
begin
  if new.entities is null or jsonb_typeof(new.entities->'datasets') is distinct from 'array' then
    return null;
  end if;
  for block in select b from jsonb_array_elements(new.entities->'datasets') b loop
    d := app_hidden.ensure_dataset(project, block->>'name', new.published_at);
    insert into app_public.dataset_form_defs (dataset_id, form_def_id, actions)
    values (d.id, new.id, block->'actions')
    on conflict (dataset_id, form_def_id) do update
      set actions = (select jsonb_agg(distinct a) from jsonb_array_elements(dataset_form_defs.actions || excluded.actions) a);
    new_props := '[]';
    for prop in select x from jsonb_array_elements(coalesce(new.entities->'properties', '[]')) x loop
      -- A saveto belongs to the nearest entity block above it: the longest dataset path that prefixes it.
      select b->>'path' into owner_path from jsonb_array_elements(new.entities->'datasets') b
      where prop->>'path' like case when b->>'path' = '/' then '/%' else (b->>'path') || '/%' end
      order by length(b->>'path') desc limit 1;
      continue when owner_path is distinct from block->>'path';
      select * into prop_row from app_public.ds_properties where dataset_id = d.id and lower(name) = lower(prop->>'property');
      if prop_row.id is not null and prop_row.name <> prop->>'property' then
        perform app_hidden.problem(409.17, 'This form attempts to create new Entity properties that match with existing ones except for capitalization.');
      end if;
      if prop_row.id is null then
        insert into app_public.ds_properties (dataset_id, name, published_at) values (d.id, prop->>'property', new.published_at)
        returning * into prop_row;
        new_props := new_props || jsonb_build_array(prop_row.name);
      end if;
      insert into app_public.ds_property_fields (ds_property_id, form_def_id, path)
      values (prop_row.id, new.id, prop->>'path') on conflict do nothing;
    end loop;
    if jsonb_array_length(new_props) > 0 then
      update app_public.datasets set updated_at = clock_timestamp() where id = d.id;
    end if;
  end loop;
  -- The version's data-file attachments named after a dataset of the project are served from it.
  update app_public.form_attachments a set dataset_id = ds.id
  from app_public.datasets ds
  where a.form_def_id = new.id and a.type = 'file' and a.blob_id is null and a.dataset_id is null
    and ds.project_id = project and ds.deleted_at is null and ds.published_at is not null and a.name = ds.name || '.csv';
  return null;
end
$$;
comment on function app_hidden.publish_form_datasets() is 'On publishing a form version: creates its declared datasets and properties (dataset.create), records its actions and saveto fields, links <dataset>.csv attachments.';
create trigger publish_form_datasets after update of published_at on app_public.form_defs
  for each row when (old.published_at is null and new.published_at is not null)
  execute function app_hidden.publish_form_datasets();

create function app_hidden.link_dataset_attachment() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A new form version's data file named <dataset>.csv is linked to that dataset of its project, as in Central.
  if new.type = 'file' and new.blob_id is null and new.dataset_id is null and new.name like '%.csv' then
    select ds.id into new.dataset_id
    from app_public.datasets ds join app_public.forms f on f.project_id = ds.project_id
    join app_public.form_defs fd on fd.form_id = f.id
    where fd.id = new.form_def_id and ds.deleted_at is null and ds.published_at is not null and ds.name || '.csv' = new.name;
  end if;
  return new;
end
$$;
comment on function app_hidden.link_dataset_attachment() is 'Links a new form version''s <dataset>.csv data-file attachment to the project''s dataset of that name.';
create trigger link_dataset_attachment before insert on app_public.form_attachments
  for each row execute function app_hidden.link_dataset_attachment();

alter table app_public.datasets enable row level security;
alter table app_public.ds_properties enable row level security;
alter table app_public.dataset_form_defs enable row level security;
alter table app_public.ds_property_fields enable row level security;

create policy see_listable_datasets on app_public.datasets for select using (
  id = any (coalesce((select app_hidden.datasets_where_can('dataset.list')), '{}'))
  or id = any (coalesce((select app_hidden.datasets_where_can('dataset.read')), '{}')));
create policy see_dataset_properties on app_public.ds_properties for select using (
  dataset_id = any (coalesce((select app_hidden.datasets_where_can('dataset.read')), '{}')));
create policy see_dataset_form_defs on app_public.dataset_form_defs for select using (
  dataset_id = any (coalesce((select app_hidden.datasets_where_can('dataset.read')), '{}')));
create policy see_property_fields on app_public.ds_property_fields for select using (
  exists (select 1 from app_public.ds_properties p where p.id = ds_property_id
          and p.dataset_id = any (coalesce((select app_hidden.datasets_where_can('dataset.read')), '{}'))));

grant select on app_public.datasets, app_public.ds_properties, app_public.dataset_form_defs, app_public.ds_property_fields
  to fieldbase_request;
grant execute on function
  app_hidden.datasets_where_can(text), app_hidden.dataset_for(int, text, text),
  app_public.create_dataset(int, jsonb), app_public.update_dataset(int, text, jsonb), app_public.delete_dataset(int, text),
  app_public.create_property(int, text, text)
to fieldbase_request;

create or replace function app_hidden.project_dataset_count(project_id int) returns int
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select count(*)::int from app_public.datasets d
  where d.project_id = project_dataset_count.project_id and d.deleted_at is null and d.published_at is not null
$$;

--! split: 51-entities.sql
/*
 * Entities: one row per entity (uuid, dataset, conflict state, creator), one entity_defs row per version
 * (label, merged data, the data that version received, base/branch/trunk versions, conflicting properties),
 * and where each version came from (entity_def_sources: the API, a bulk upload or a submission version).
 * Conflicts follow Central: an update whose base is not the server's latest version is a soft conflict, a
 * hard one when it changes a property (or the label) the server also changed since that base. An entity's
 * conflict only ever rises (null → soft → hard) until resolved.
 */

/*
 * Entities under concurrency. Every change to an entity holds its advisory lock (app_hidden.lock_entity, by
 * uuid, so it works before the entity exists) until commit. A transaction that changes several entities
 * takes all their locks first, in one global order (app_hidden.lock_entities), before writing anything: with
 * the row locks writes take afterwards (the entity, its dataset's updated_at), locks are always acquired
 * advisory locks first and in key order, so two submissions (or bulk requests) touching the same entities in
 * different orders wait for each other instead of deadlocking. The next version number is computed under the
 * entity's row lock, and unique (entity_id, version) stays as the backstop.
 * A deadlock or serialization failure is never recorded as an entity.error (which would lose the update): it
 * fails the job, which workers/tasks/entities.ts retries; processing a submission twice is harmless because
 * the "already processed" check runs again under the locks.
 */
drop table if exists app_public.entity_defs cascade;
drop table if exists app_public.entity_def_sources cascade;
drop table if exists app_public.entities cascade;
drop table if exists app_private.purged_entities cascade;
drop type if exists app_hidden.client_entity cascade;
drop function if exists app_hidden.lock_entity(uuid) cascade;
drop function if exists app_hidden.entity_lock_key(uuid) cascade;
drop function if exists app_hidden.lock_entities(uuid[]) cascade;
drop function if exists app_hidden.uuid_or_null(text) cascade;
drop function if exists app_hidden.normalize_uuid(text, text) cascade;
drop function if exists app_hidden.new_entity_source(text, int, jsonb, boolean) cascade;
drop function if exists app_hidden.insert_entity(app_public.datasets, app_hidden.client_entity, bigint, int, text, text) cascade;
drop function if exists app_hidden.insert_entity_version(app_public.datasets, app_public.entities, app_hidden.client_entity, int, bigint, int, text, boolean) cascade;
drop function if exists app_hidden.entity_for(app_public.datasets, text, boolean) cascade;
drop function if exists app_hidden.entity_from_json(app_public.datasets, jsonb, boolean) cascade;
drop function if exists app_hidden.audit_entity(text, app_public.datasets, app_public.entities, jsonb) cascade;
drop function if exists app_public.create_entities(int, text, jsonb, jsonb, boolean) cascade;
drop function if exists app_public.update_entity(int, text, text, jsonb, int, boolean, boolean) cascade;
drop function if exists app_public.delete_entities(int, text, text[], boolean) cascade;
drop function if exists app_public.restore_entities(int, text, text[], boolean) cascade;
drop function if exists app_hidden.purge_entities(interval) cascade;
drop function if exists app_public.delete_property(int, text, text) cascade;
drop function if exists app_hidden.assert_uuids_unused(uuid[]) cascade;
drop function if exists app_hidden.data_diff(jsonb, jsonb) cascade;

create table app_public.entities (
  id serial primary key,
  dataset_id int not null references app_public.datasets (id) on delete cascade,
  uuid uuid not null unique,
  creator_id int references app_public.actors (id),
  conflict text check (conflict in ('soft', 'hard')),
  created_at timestamptz(3) not null default clock_timestamp(),
  updated_at timestamptz(3),
  deleted_at timestamptz(3)
);
comment on table app_public.entities is 'Entities of a dataset: identity, creator and conflict state; their data lives in versions (entity_defs).';
create index entities_dataset_created_idx on app_public.entities (dataset_id, created_at desc, id desc);
create index entities_deleted_idx on app_public.entities (deleted_at) where deleted_at is not null;

create table app_public.entity_def_sources (
  id bigserial primary key,
  type text not null check (type in ('api', 'bulk', 'submission')),
  submission_def_id int references app_public.submission_defs (id) on delete set null,
  audit_id bigint,
  details jsonb,
  force_processed boolean not null default false
);
comment on table app_public.entity_def_sources is 'Where entity versions came from: an API request, a bulk upload {name, size, count, userAgent} or a submission version.';
create index entity_def_sources_submission_def_idx on app_public.entity_def_sources (submission_def_id);

create table app_public.entity_defs (
  id bigserial primary key,
  entity_id int not null references app_public.entities (id) on delete cascade,
  version int not null,
  current boolean not null default true,
  root boolean not null default false,
  label text not null,
  data jsonb not null default '{}',
  data_received jsonb not null default '{}',
  base_version int,
  branch_id uuid,
  trunk_version int,
  branch_base_version int,
  conflicting_properties jsonb,
  source_id bigint references app_public.entity_def_sources (id),
  creator_id int references app_public.actors (id),
  user_agent text,
  created_at timestamptz(3) not null default clock_timestamp(),
  unique (entity_id, version)
);
comment on table app_public.entity_defs is 'Versions of an entity: label and full data after merging, what the version itself received, its base version and offline branch (branchId, trunkVersion, branchBaseVersion).';
comment on column app_public.entity_defs.conflicting_properties is 'Properties (and label) this version changed that the server had also changed since its base; null when its base was the latest version.';
create unique index entity_defs_current_key on app_public.entity_defs (entity_id) where current;
create index entity_defs_branch_idx on app_public.entity_defs (branch_id, branch_base_version) where branch_id is not null;
create index entity_defs_source_idx on app_public.entity_defs (source_id);

create table app_private.purged_entities (
  uuid uuid primary key,
  dataset_id int,
  purged_at timestamptz(3) not null default clock_timestamp()
);
comment on table app_private.purged_entities is 'UUIDs of purged entities: they may never be used again (409.19).';

/* An entity as a client sent it (API JSON or a submission's entity block), before merging with the server. */
create type app_hidden.client_entity as (
  uuid uuid,
  label text,
  data jsonb,
  base_version int,
  trunk_version int,
  branch_id uuid
);
comment on type app_hidden.client_entity is 'One entity as received: uuid, label (null when not changed), properties, and the versions it was based on.';

create function app_hidden.entity_lock_key(target uuid) returns bigint
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select ('x' || substr(replace(target::text, '-', ''), 1, 15))::bit(60)::bigint $$;
comment on function app_hidden.entity_lock_key(uuid) is 'The advisory lock key of an entity uuid (its first 60 bits).';

create function app_hidden.lock_entities(targets uuid[]) returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  k bigint;
begin
  -- In key order, so that transactions locking overlapping sets never wait on each other in a cycle.
  for k in select distinct app_hidden.entity_lock_key(t) from unnest(targets) t where t is not null order by 1 loop
    perform pg_advisory_xact_lock(k);
  end loop;
end
$$;
comment on function app_hidden.lock_entities(uuid[]) is 'Takes the locks of several entities (as lock_entity) in one global order; call it before writing anything.';

create function app_hidden.uuid_or_null(id text) returns uuid
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select lower(m[2])::uuid
  from regexp_match(id, '^(uuid:)?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12})$') m
$$;
comment on function app_hidden.uuid_or_null(text) is 'The uuid normalize_uuid would return, or null where it would raise (for locking before validating).';

create function app_hidden.lock_entity(target uuid) returns void
language sql volatile
set search_path = pg_catalog, pg_temp
as $$
  -- An advisory lock works before the entity exists (offline updates may arrive before their create).
  select pg_advisory_xact_lock(app_hidden.entity_lock_key(target))
$$;
comment on function app_hidden.lock_entity(uuid) is 'Serializes every change to one entity (by uuid) until the end of the transaction.';

create function app_hidden.normalize_uuid(id text, field text default 'uuid') returns uuid
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  m text[];
begin
  if id is null or trim(id) = '' then
    perform app_hidden.problem(400.2, format('Required parameter %s missing.', field), jsonb_build_object('field', field));
  end if;
  m := regexp_match(id, '^(uuid:)?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12})$');
  if m is null then
    perform app_hidden.problem(400.11, format('Invalid input data type: expected (%s) to be (valid version 4 UUID)', field),
      jsonb_build_object('field', field, 'expected', 'valid version 4 UUID'));
  end if;
  return lower(m[2])::uuid;
end
$$;
comment on function app_hidden.normalize_uuid(text, text) is 'A version 4 UUID, with or without the uuid: prefix, lowercased; 400.2 when blank, 400.11 when not a UUID.';

create function app_hidden.assert_uuids_unused(uuids uuid[]) returns void
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  used uuid[];
begin
  select array_agg(u order by u) into used from (
    select uuid as u from app_private.purged_entities where uuid = any (uuids)
    union
    select uuid from app_public.entities where deleted_at is not null and uuid = any (uuids)) x;
  if used is not null then
    perform app_hidden.problem(409.19, format('The following UUID(s) cannot be used because they are associated with deleted Entities: (%s).',
      array_to_string(used, ', ')), jsonb_build_object('entityUuids', to_jsonb(used)));
  end if;
  select array_agg(e.uuid order by e.uuid) into used from app_public.entities e where e.uuid = any (uuids);
  if used is not null then
    perform app_hidden.problem(409.3, format('A resource already exists with uuid value(s) of %s.', array_to_string(used, ',')),
      jsonb_build_object('fields', jsonb_build_array('uuid'), 'values', to_jsonb(used)));
  end if;
end
$$;
comment on function app_hidden.assert_uuids_unused(uuid[]) is '409.19 for uuids of deleted or purged entities, 409.3 for uuids in use.';

create function app_hidden.new_entity_source(source_type text, sub_def int, details jsonb, forced boolean default false) returns bigint
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into app_public.entity_def_sources (type, submission_def_id, details, force_processed)
  values (source_type, sub_def, details, forced) returning id
$$;

create function app_hidden.audit_entity(action text, d app_public.datasets, e app_public.entities, extra jsonb default '{}') returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.log_audit(action, d.actee_id, jsonb_build_object(
    'entityId', e.id,
    'entityDefId', (select id from app_public.entity_defs where entity_id = e.id and current),
    'entity', jsonb_build_object('uuid', e.uuid, 'dataset', d.name)) || coalesce(extra, '{}'));
  return currval(pg_get_serial_sequence('app_public.audits', 'id'));
end
$$;
comment on function app_hidden.audit_entity(text, app_public.datasets, app_public.entities, jsonb) is 'Logs an entity event on its dataset with Central''s details {entityId, entityDefId, entity: {uuid, dataset}}; returns the audit id.';

/* Writing versions. */
create function app_hidden.insert_entity(d app_public.datasets, c app_hidden.client_entity, source bigint,
                                         creator int, agent text, conflict text default null, branch_base int default null)
returns app_public.entities
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  e app_public.entities;
begin
  insert into app_public.entities (dataset_id, uuid, creator_id, conflict)
  values (d.id, c.uuid, creator, conflict) returning * into e;
  insert into app_public.entity_defs (entity_id, version, current, root, label, data, data_received, source_id, creator_id,
                                      user_agent, created_at, branch_id, trunk_version, branch_base_version)
  values (e.id, 1, true, true, c.label, coalesce(c.data, '{}'), coalesce(c.data, '{}') || jsonb_build_object('label', c.label),
          source, creator, nullif(agent, ''), e.created_at, c.branch_id, c.trunk_version, branch_base);
  update app_public.datasets set updated_at = e.created_at where id = d.id;
  return e;
end
$$;
comment on function app_hidden.insert_entity(app_public.datasets, app_hidden.client_entity, bigint, int, text, text, int) is 'Creates an entity and its first version (no checks: callers validate and lock).';

create function app_hidden.data_diff(newer jsonb, older jsonb) returns text[]
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  -- Keys of newer that older lacks or holds another value for (Central's getDiffProp).
  select coalesce(array_agg(k order by k), '{}') from jsonb_each(newer) n(k, v) where older->k is distinct from v
$$;

create function app_hidden.insert_entity_version(d app_public.datasets, e app_public.entities, c app_hidden.client_entity,
                                                            base int, source bigint, creator int, agent text,
                                                            create_as_update boolean default false)
returns app_public.entities
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  cur app_public.entity_defs;
  base_def app_public.entity_defs;
  received jsonb := coalesce(c.data, '{}') || case when c.label is null then '{}' else jsonb_build_object('label', c.label) end;
  server_changes jsonb;
  conflicting jsonb;
  new_conflict text;
begin
  -- Callers hold the entity's advisory lock; the row lock makes this safe on its own, and the state fresh.
  select * into e from app_public.entities where id = e.id for update;
  new_conflict := e.conflict;
  select * into cur from app_public.entity_defs where entity_id = e.id and current;
  select * into base_def from app_public.entity_defs where entity_id = e.id and version = base;
  if base_def.version <> cur.version or create_as_update then
    -- What the server changed since the base (for a create applied as an update: everything it holds).
    if create_as_update then
      server_changes := cur.data || jsonb_build_object('label', cur.label);
    else
      select coalesce(jsonb_object_agg(k, cur.data->k), '{}') into server_changes
      from unnest(app_hidden.data_diff(cur.data, base_def.data)) k;
      if cur.label is distinct from base_def.label then
        server_changes := server_changes || jsonb_build_object('label', cur.label);
      end if;
    end if;
    select coalesce(jsonb_agg(k order by k), '[]') into conflicting
    from jsonb_each(received) r(k, v) where server_changes ? k and server_changes->k is distinct from v;
    if new_conflict is distinct from 'hard' then
      new_conflict := case when jsonb_array_length(conflicting) > 0 then 'hard' else 'soft' end;
    end if;
  elsif c.branch_id is not null and new_conflict is null and exists (
    -- An offline branch interrupted by a version from elsewhere since its trunk is a soft conflict.
    select 1 from app_public.entity_defs x where x.entity_id = e.id and x.branch_id is distinct from c.branch_id
      and x.version > coalesce(c.trunk_version, 1)) then
    new_conflict := 'soft';
  end if;
  update app_public.entity_defs set current = false where entity_id = e.id and current;
  insert into app_public.entity_defs (entity_id, version, current, root, label, data, data_received, base_version,
                                      branch_id, trunk_version, branch_base_version, conflicting_properties,
                                      source_id, creator_id, user_agent)
  values (e.id, cur.version + 1, true, false, coalesce(c.label, cur.label), cur.data || coalesce(c.data, '{}'), received,
          base_def.version, c.branch_id, c.trunk_version, case when c.branch_id is not null then c.base_version end,
          conflicting, source, creator, nullif(agent, ''));
  update app_public.entities set updated_at = clock_timestamp(), conflict = new_conflict where id = e.id returning * into e;
  update app_public.datasets set updated_at = e.updated_at where id = d.id;
  return e;
end
$$;
comment on function app_hidden.insert_entity_version(app_public.datasets, app_public.entities, app_hidden.client_entity, int, bigint, int, text, boolean) is
  'Adds the next version of an entity (under its row lock) from a client update based on version base: merges data and label, and raises the conflict as Central defines it.';

/* The API. */
create function app_hidden.entity_for(d app_public.datasets, ref text, want_deleted boolean default false) returns app_public.entities
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  e app_public.entities;
begin
  select * into e from app_public.entities
  where dataset_id = d.id and uuid::text = lower(regexp_replace(ref, '^uuid:', ''))
    and (deleted_at is not null) = want_deleted;
  if e is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return e;
end
$$;
comment on function app_hidden.entity_for(app_public.datasets, text, boolean) is 'An entity of the dataset by uuid (live, or deleted when asked); 404.1 otherwise.';

create function app_hidden.entity_from_json(d app_public.datasets, body jsonb, creating boolean) returns app_hidden.client_entity
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  c app_hidden.client_entity;
  extra text[];
  k text;
  v jsonb;
begin
  if jsonb_typeof(body) is distinct from 'object' then
    perform app_hidden.problem(400.28, 'The entity is invalid. No entity data or label provided.',
      jsonb_build_object('reason', 'No entity data or label provided.'));
  end if;
  select array_agg(key) into extra from jsonb_object_keys(body) key where key not in ('label', 'uuid', 'data');
  if extra is not null then
    perform app_hidden.problem(400.31, format('Expected parameters: (label, uuid, data). Got (%s).',
      (select string_agg(key, ', ') from jsonb_object_keys(body) key)),
      jsonb_build_object('expected', jsonb_build_array('label', 'uuid', 'data'), 'actual', (select jsonb_agg(key) from jsonb_object_keys(body) key)));
  end if;
  if creating then
    if body ? 'uuid' and jsonb_typeof(body->'uuid') not in ('string', 'null') then
      perform app_hidden.problem(400.11, 'Invalid input data type: expected (uuid) to be (string)',
        jsonb_build_object('field', 'uuid', 'expected', 'string'));
    end if;
    c.uuid := case when coalesce(body->>'uuid', '') = '' then gen_random_uuid() else app_hidden.normalize_uuid(body->>'uuid') end;
  end if;
  if body ? 'label' and jsonb_typeof(body->'label') <> 'null' then
    if jsonb_typeof(body->'label') <> 'string' then
      perform app_hidden.problem(400.11, 'Invalid input data type: expected (label) to be (string)',
        jsonb_build_object('field', 'label', 'expected', 'string'));
    elsif trim(body->>'label') = '' then
      perform app_hidden.problem(400.8, 'Unexpected label value (empty string); Label cannot be blank.',
        jsonb_build_object('field', 'label', 'value', '(empty string)', 'reason', 'Label cannot be blank.'));
    end if;
    c.label := body->>'label';
  elsif creating then
    perform app_hidden.problem(400.2, 'Required parameter label missing.', '{"field":"label"}');
  end if;
  if jsonb_typeof(body->'data') is distinct from 'object' and (body->'data') is not null and jsonb_typeof(body->'data') <> 'null' then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (data) to be (object)',
      jsonb_build_object('field', 'data', 'expected', 'object'));
  end if;
  if coalesce(jsonb_typeof(body->'data'), 'null') = 'null' and c.label is null then
    perform app_hidden.problem(400.28, 'The entity is invalid. No entity data or label provided.',
      jsonb_build_object('reason', 'No entity data or label provided.'));
  end if;
  c.data := '{}';
  for k, v in select key, value from jsonb_each(case when jsonb_typeof(body->'data') = 'object' then body->'data' else '{}' end) loop
    if jsonb_typeof(v) <> 'string' then
      perform app_hidden.problem(400.11, format('Invalid input data type: expected (%s) to be (string)', k),
        jsonb_build_object('field', k, 'expected', 'string'));
    end if;
    if not exists (select 1 from app_public.ds_properties p where p.dataset_id = d.id and p.name = k) then
      perform app_hidden.problem(400.28, format('The entity is invalid. You specified the dataset property [%s] which does not exist.', k),
        jsonb_build_object('reason', format('You specified the dataset property [%s] which does not exist.', k)));
    end if;
    c.data := c.data || jsonb_build_object(k, v);
  end loop;
  return c;
end
$$;
comment on function app_hidden.entity_from_json(app_public.datasets, jsonb, boolean) is 'Validates an API entity body {uuid?, label, data} against the dataset as Central does (400.2, 400.8, 400.11, 400.28, 400.31).';

create function app_public.create_entities(project int, ds_name text, entities jsonb, source jsonb default null, bulk boolean default false)
returns setof app_public.entities
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'entity.create');
  clients app_hidden.client_entity[] := '{}';
  item jsonb;
  c app_hidden.client_entity;
  src bigint;
  e app_public.entities;
  agent text := nullif(current_setting('fieldbase.user_agent', true), '');
  me int := app_hidden.current_actor_id();
  dup uuid;
begin
  if jsonb_typeof(entities) is distinct from 'array' then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (entities) to be (array)',
      jsonb_build_object('field', 'entities', 'expected', 'array'));
  end if;
  if bulk then
    if jsonb_typeof(source) is distinct from 'object' then
      perform app_hidden.problem(400.2, 'Required parameter source missing.', '{"field":"source"}');
    elsif coalesce(source->>'name', '') = '' then
      perform app_hidden.problem(400.2, 'Required parameter source.name missing.', '{"field":"source.name"}');
    elsif jsonb_typeof(source->'name') <> 'string' then
      perform app_hidden.problem(400.11, 'Invalid input data type: expected (name) to be (string)',
        jsonb_build_object('field', 'name', 'value', jsonb_typeof(source->'name'), 'expected', 'string'));
    elsif source ? 'size' and jsonb_typeof(source->'size') not in ('number', 'null') then
      perform app_hidden.problem(400.11, 'Invalid input data type: expected (size) to be (number)',
        jsonb_build_object('field', 'size', 'value', jsonb_typeof(source->'size'), 'expected', 'number'));
    elsif jsonb_array_length(entities) = 0 then
      perform app_hidden.problem(400.2, 'Required parameter entities missing.', '{"field":"entities"}');
    end if;
  end if;
  for item in select x from jsonb_array_elements(entities) x loop
    clients := clients || app_hidden.entity_from_json(d, item, true);
  end loop;
  select u into dup from unnest(clients) cl(u) group by u having count(*) > 1 limit 1;
  if dup is not null then
    perform app_hidden.problem(409.3, format('A resource already exists with uuid value(s) of %s.', dup),
      jsonb_build_object('fields', jsonb_build_array('uuid'), 'values', jsonb_build_array(dup)));
  end if;
  -- Locked before checking: a create of the same uuid committed meanwhile is then seen (409.3).
  perform app_hidden.lock_entities(array(select cl.uuid from unnest(clients) cl));
  perform app_hidden.assert_uuids_unused(array(select cl.uuid from unnest(clients) cl));
  src := app_hidden.new_entity_source(case when bulk then 'bulk' else 'api' end, null,
    case when bulk then jsonb_strip_nulls(jsonb_build_object('name', source->>'name', 'size', nullif(source->'size', 'null'::jsonb),
                                                             'count', jsonb_array_length(entities), 'userAgent', agent)) end);
  foreach c in array clients loop
    e := app_hidden.insert_entity(d, c, src, me, agent);
    if not bulk then
      update app_public.entity_def_sources set audit_id = app_hidden.audit_entity('entity.create', d, e) where id = src;
    end if;
    return next e;
  end loop;
  if bulk then
    perform app_hidden.log_audit('entity.bulk.create', d.actee_id, jsonb_build_object('sourceId', src));
    update app_public.entity_def_sources set audit_id = currval(pg_get_serial_sequence('app_public.audits', 'id')) where id = src;
  end if;
end
$$;
comment on function app_public.create_entities(int, text, jsonb, jsonb, boolean) is 'Creates entities from API bodies (entity.create), all or none: one (entity.create) or a bulk upload with its source {name, size} (entity.bulk.create).';

create function app_public.update_entity(project int, ds_name text, entity_ref text, body jsonb, base_version int,
                                         force boolean default false, resolve boolean default false)
returns app_public.entities
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'entity.update');
  e app_public.entities;
  cur int;
  c app_hidden.client_entity;
  src bigint;
  has_body boolean := jsonb_typeof(body) = 'object' and body <> '{}'::jsonb;
begin
  e := app_hidden.entity_for(d, entity_ref);
  perform app_hidden.lock_entity(e.uuid);
  select * into e from app_public.entities where app_public.entities.id = e.id;
  select version into cur from app_public.entity_defs where entity_id = e.id and current;
  if resolve and e.conflict is null then
    perform app_hidden.problem(400.32, 'The Entity doesn''t have any conflict');
  end if;
  if not coalesce(force, false) and base_version is null and not (resolve and not has_body) then
    perform app_hidden.problem(400.2, 'Required parameter baseVersion missing.', '{"field":"baseVersion"}');
  end if;
  if base_version is not null and not coalesce(force, false) and base_version <> cur then
    perform app_hidden.problem(409.15, format('Current version of the Entity is ''%s'' and you provided ''%s''. Please correct the version number or pass ''?force=true'' in the URL to forcefully update the Entity.', cur, base_version),
      jsonb_build_object('current', cur, 'provided', base_version));
  end if;
  if has_body or not resolve then
    c := app_hidden.entity_from_json(d, body, false);
    c.uuid := e.uuid;
    if resolve then
      update app_public.entities set conflict = null where app_public.entities.id = e.id returning * into e;
    end if;
    src := app_hidden.new_entity_source('api', null, null);
    e := app_hidden.insert_entity_version(d, e, c, cur, src, app_hidden.current_actor_id(),
                                          nullif(current_setting('fieldbase.user_agent', true), ''));
    update app_public.entity_def_sources set audit_id = app_hidden.audit_entity('entity.update.version', d, e) where app_public.entity_def_sources.id = src;
  end if;
  if resolve then
    update app_public.entities set conflict = null, updated_at = clock_timestamp() where app_public.entities.id = e.id returning * into e;
    perform app_hidden.audit_entity('entity.update.resolve', d, e);
  end if;
  return e;
end
$$;
comment on function app_public.update_entity(int, text, text, jsonb, int, boolean, boolean) is
  'PATCHes an entity (entity.update): needs baseVersion equal to the current version (409.15) or force; resolve clears its conflict (400.32 when none).';

create function app_public.delete_entities(project int, ds_name text, ids text[], bulk boolean default false) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'entity.delete');
  e app_public.entities;
  targets app_public.entities[] := '{}';
  ref text;
begin
  if ids is null or cardinality(ids) = 0 then
    perform app_hidden.problem(400.2, 'Required parameter ids missing.', '{"field":"ids"}');
  end if;
  perform app_hidden.lock_entities(array(select app_hidden.uuid_or_null(i) from unnest(ids) i));
  foreach ref in array ids loop
    targets := targets || app_hidden.entity_for(d, ref);
  end loop;
  foreach e in array targets loop
    update app_public.entities set deleted_at = clock_timestamp() where app_public.entities.id = e.id returning * into e;
    if not bulk then
      perform app_hidden.log_audit('entity.delete', d.actee_id, jsonb_build_object('entityId', e.id, 'entity', jsonb_build_object('uuid', e.uuid)));
    end if;
  end loop;
  if bulk then
    perform app_hidden.log_audit('entity.bulk.delete', d.actee_id,
      jsonb_build_object('entity', jsonb_build_object('uuids', (select jsonb_agg(t.uuid) from unnest(targets) t))));
  end if;
  update app_public.datasets set updated_at = clock_timestamp() where app_public.datasets.id = d.id;
  return cardinality(targets);
end
$$;
comment on function app_public.delete_entities(int, text, text[], boolean) is 'Soft-deletes entities (entity.delete), all or none (404.1 for any unknown); audited per entity or as entity.bulk.delete.';

create function app_public.restore_entities(project int, ds_name text, ids text[], bulk boolean default false) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'entity.restore');
  e app_public.entities;
  targets app_public.entities[] := '{}';
  ref text;
begin
  if ids is null or cardinality(ids) = 0 then
    perform app_hidden.problem(400.2, 'Required parameter ids missing.', '{"field":"ids"}');
  end if;
  perform app_hidden.lock_entities(array(select app_hidden.uuid_or_null(i) from unnest(ids) i));
  foreach ref in array ids loop
    targets := targets || app_hidden.entity_for(d, ref, true);
  end loop;
  foreach e in array targets loop
    -- Restoring bumps updatedAt so entity-list hashes change, as in Central.
    update app_public.entities set deleted_at = null, updated_at = clock_timestamp() where app_public.entities.id = e.id returning * into e;
    if not bulk then
      perform app_hidden.log_audit('entity.restore', d.actee_id, jsonb_build_object('entityId', e.id, 'entity', jsonb_build_object('uuid', e.uuid)));
    end if;
  end loop;
  if bulk then
    perform app_hidden.log_audit('entity.bulk.restore', d.actee_id,
      jsonb_build_object('entity', jsonb_build_object('uuids', (select jsonb_agg(t.uuid) from unnest(targets) t))));
  end if;
  update app_public.datasets set updated_at = clock_timestamp() where app_public.datasets.id = d.id;
  return cardinality(targets);
end
$$;
comment on function app_public.restore_entities(int, text, text[], boolean) is 'Restores soft-deleted entities (entity.restore), all or none; audited per entity or as entity.bulk.restore.';

create function app_hidden.purge_entities(older_than interval default interval '30 days') returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  n int;
  ds record;
begin
  -- Entities deleted long enough ago, and every entity of datasets deleted long enough ago.
  for ds in
    select d.id, d.actee_id, count(*)::int as n from app_public.entities e join app_public.datasets d on d.id = e.dataset_id
    where e.deleted_at < now() - older_than or d.deleted_at < now() - older_than
    group by d.id, d.actee_id
  loop
    perform app_hidden.log_audit('entity.purge', ds.actee_id, jsonb_build_object('entitiesDeleted', ds.n));
  end loop;
  with gone as (
    delete from app_public.entities e using app_public.datasets d
    where d.id = e.dataset_id and (e.deleted_at < now() - older_than or d.deleted_at < now() - older_than)
    returning e.uuid, e.dataset_id
  )
  insert into app_private.purged_entities (uuid, dataset_id) select uuid, dataset_id from gone on conflict do nothing;
  get diagnostics n = row_count;
  delete from app_public.entity_def_sources s where not exists (select 1 from app_public.entity_defs x where x.source_id = s.id);
  delete from app_public.datasets d where d.deleted_at < now() - older_than
    and not exists (select 1 from app_public.form_attachments a where a.dataset_id = d.id);
  return n;
end
$$;
comment on function app_hidden.purge_entities(interval) is 'Permanently removes entities deleted longer ago than older_than (and trashed datasets with theirs); their uuids stay unusable. Audited as entity.purge.';

create function app_public.delete_property(project int, ds_name text, prop_name text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'dataset.update');
  prop app_public.ds_properties;
  forms jsonb;
  total int;
  examples jsonb;
  prerequisites jsonb := '{}';
begin
  select * into prop from app_public.ds_properties where dataset_id = d.id and name = prop_name;
  if prop is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  select jsonb_agg(distinct jsonb_build_object('formName', coalesce(fd.name, f.xml_form_id), 'xmlFormId', f.xml_form_id)) into forms
  from app_public.ds_property_fields pf join app_public.form_defs fd on fd.id = pf.form_def_id
  join app_public.forms f on f.id = fd.form_id
  where pf.ds_property_id = prop.id and f.deleted_at is null and fd.id in (f.current_def_id, f.draft_def_id);
  if forms is not null then
    prerequisites := prerequisites || jsonb_build_object('dependentForms', jsonb_build_object(
      'message', 'You can''t delete this property because there are Form(s) writing to it', 'details', jsonb_build_object('forms', forms)));
  end if;
  select count(*) into total from app_public.entities e join app_public.entity_defs x on x.entity_id = e.id and x.current
  where e.dataset_id = d.id and e.deleted_at is null and nullif(trim(x.data->>prop_name), '') is not null;
  if total > 0 then
    select jsonb_agg(jsonb_build_object('uuid', uuid, 'label', label)) into examples from (
      select e.uuid, x.label from app_public.entities e join app_public.entity_defs x on x.entity_id = e.id and x.current
      where e.dataset_id = d.id and e.deleted_at is null and nullif(trim(x.data->>prop_name), '') is not null
      order by e.created_at, e.id limit 3) s;
    prerequisites := prerequisites || jsonb_build_object('nonEmptyEntities', jsonb_build_object(
      'message', format('You can''t delete this property because there are Entity(ies) with the non-empty value for the ''%s''', prop_name),
      'details', jsonb_build_object('totalCount', total, 'entities', examples)));
  end if;
  if prerequisites <> '{}' then
    perform app_hidden.problem(409.22, format('Prerequisites for deleting the property "%s" are not met.', prop_name),
      jsonb_build_object('prerequisites', prerequisites));
  end if;
  delete from app_public.ds_properties where id = prop.id;
  update app_public.datasets set updated_at = clock_timestamp() where id = d.id;
  perform app_hidden.log_audit('dataset.update', d.actee_id, jsonb_build_object('deletedProperties', jsonb_build_array(prop_name)));
end
$$;
comment on function app_public.delete_property(int, text, text) is 'Deletes a property no form writes to and no entity has a value for (409.22 with the prerequisites otherwise).';

alter table app_public.entities enable row level security;
alter table app_public.entity_defs enable row level security;
alter table app_public.entity_def_sources enable row level security;

create policy see_readable_entities on app_public.entities for select
  using (dataset_id = any (coalesce((select app_hidden.datasets_where_can('entity.read')), '{}')));
create policy see_readable_entity_defs on app_public.entity_defs for select
  using (exists (select 1 from app_public.entities e where e.id = entity_id));
create policy see_readable_entity_sources on app_public.entity_def_sources for select
  using (exists (select 1 from app_public.entity_defs x where x.source_id = entity_def_sources.id));

grant select on app_public.entities, app_public.entity_defs, app_public.entity_def_sources to fieldbase_request;
grant execute on function
  app_hidden.data_diff(jsonb, jsonb),
  app_public.create_entities(int, text, jsonb, jsonb, boolean),
  app_public.update_entity(int, text, text, jsonb, int, boolean, boolean),
  app_public.delete_entities(int, text, text[], boolean), app_public.restore_entities(int, text, text[], boolean),
  app_public.delete_property(int, text, text)
to fieldbase_request;

create or replace function app_hidden.project_last_entity(project_id int) returns timestamptz
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select max(e.created_at) from app_public.entities e join app_public.datasets d on d.id = e.dataset_id
  where d.project_id = project_last_entity.project_id and d.deleted_at is null and e.deleted_at is null
$$;

--! split: 52-entity-submissions.sql
/*
 * Entities from submissions. Contract for the submissions work:
 *
 *   app_hidden.process_submission_entities(submission_def_id bigint, event text default 'submission.create',
 *                                          actor int default null, force boolean default false)
 *
 * Inputs: the submission version (its XML as received, in submission_defs.xml: entity blocks carry their
 * dataset, id, create/update, baseVersion, trunkVersion and branchId as XML attributes, which the structured
 * jsonb data does not keep) and the form version's entity declarations (form_defs.entities: datasets[{name,
 * actions, path}] and properties[{path, property}], recorded per dataset at publish in dataset_form_defs and
 * ds_property_fields). event is Central's triggering action: 'submission.create', 'submission.update.version'
 * (an edit), 'submission.update' (a review; only approvals create entities, and only in approvalRequired
 * datasets) or 'submission.backlog.reprocess'. actor is whom the audit rows name (the submitter by default).
 * Effects: creates or updates the entities the submission's blocks ask for (entity.create /
 * entity.update.version audits naming submissionId and submissionDefId), holds offline updates that arrive
 * before their predecessors (submission.backlog.hold; they run when the predecessor arrives, or are forced
 * after 5 days by app_hidden.process_entity_backlog), or, when anything fails, changes nothing and logs
 * entity.error with Central's problem. It never raises, so the submission is never lost. A submission that
 * already produced an entity version, or is held, is skipped, so running it twice is harmless.
 *
 * The triggers below queue it (graphile-worker task submission__process_entities, one job per submission
 * version by job_key) when a submission version is stored or a submission is approved.
 */
drop table if exists app_private.entity_submission_backlog cascade;
drop function if exists app_hidden.submission_entities_done(int) cascade;
drop function if exists app_hidden.entity_xpath(text) cascade;
drop function if exists app_hidden.xml_string(text, xml) cascade;
drop function if exists app_hidden.submission_entity_blocks(bigint) cascade;
drop function if exists app_hidden.problem_parts(text, text, text, text) cascade;
drop function if exists app_hidden.create_entity_from_submission(app_public.datasets, jsonb, bigint, app_public.submission_defs, text, boolean) cascade;
drop function if exists app_hidden.update_entity_from_submission(app_public.datasets, jsonb, bigint, app_public.submission_defs, text, boolean, boolean) cascade;
drop function if exists app_hidden.process_entity_block(jsonb, bigint, app_public.submission_defs, app_public.forms, text, boolean) cascade;
drop function if exists app_hidden.process_submission_entities(bigint, text, int, boolean) cascade;
drop function if exists app_hidden.process_entity_backlog(boolean, interval) cascade;
drop function if exists app_hidden.queue_submission_entities(bigint, text, int) cascade;
drop function if exists app_hidden.queue_entities_on_submission() cascade;
drop function if exists app_hidden.queue_entities_on_approval() cascade;

create table app_private.entity_submission_backlog (
  submission_def_id int primary key references app_public.submission_defs (id) on delete cascade,
  submission_id int not null,
  entity_uuid uuid not null,
  branch_id uuid not null,
  branch_base_version int not null,
  event text not null,
  actor_id int,
  logged_at timestamptz(3) not null default clock_timestamp()
);
comment on table app_private.entity_submission_backlog is 'Offline entity updates held until the update before them in their branch arrives (or 5 days pass).';
create index entity_submission_backlog_branch_idx on app_private.entity_submission_backlog (branch_id, branch_base_version);
create index entity_submission_backlog_entity_idx on app_private.entity_submission_backlog (entity_uuid, branch_base_version);

create function app_hidden.entity_xpath(path text) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  -- '/household_member/meta' → /*/*[local-name()='household_member']/*[local-name()='meta'] (namespace-blind).
  select '/*' || coalesce(string_agg(format('/*[local-name()=''%s'']', seg), '' order by n), '')
  from unnest(string_to_array(trim(both '/' from path), '/')) with ordinality s(seg, n) where seg <> ''
$$;

create function app_hidden.xml_string(expr text, doc xml) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select (xpath('string(' || expr || ')', doc))[1]::text $$;

create function app_hidden.submission_entity_blocks(def_id bigint) returns setof jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sd app_public.submission_defs;
  decl jsonb;
  doc xml;
  block jsonb;
  ctx text;
  n int;
  i int;
  entity text;
  prop jsonb;
  owner_path text;
  rel text;
  data jsonb;
  attr text;
  sys jsonb;
begin
  select * into sd from app_public.submission_defs where id = def_id;
  select entities into decl from app_public.form_defs where id = sd.form_def_id;
  if decl is null then
    return;
  end if;
  doc := xmlparse(document sd.xml);
  for block in select distinct on (b->>'path') b from jsonb_array_elements(decl->'datasets') b loop
    ctx := app_hidden.entity_xpath(block->>'path');
    n := (xpath('count(' || ctx || ')', doc))[1]::text::numeric::int;
    for i in 1 .. n loop
      entity := format('(%s)[%s]/*[local-name()=''meta'']/*[local-name()=''entity'']', ctx, i);
      continue when (xpath('count(' || entity || ')', doc))[1]::text::numeric = 0;
      sys := '{}';
      foreach attr in array array['dataset', 'id', 'create', 'update', 'baseVersion', 'trunkVersion', 'branchId'] loop
        if (xpath(format('count(%s/@*[local-name()=''%s''])', entity, attr), doc))[1]::text::numeric > 0 then
          sys := sys || jsonb_build_object(attr, app_hidden.xml_string(format('%s/@*[local-name()=''%s'']', entity, attr), doc));
        end if;
      end loop;
      if (xpath(format('count(%s/*[local-name()=''label''])', entity), doc))[1]::text::numeric > 0 then
        sys := sys || jsonb_build_object('label', app_hidden.xml_string(entity || '/*[local-name()=''label'']', doc));
      end if;
      data := '{}';
      for prop in select x from jsonb_array_elements(coalesce(decl->'properties', '[]')) x loop
        select b->>'path' into owner_path from jsonb_array_elements(decl->'datasets') b
        where prop->>'path' like case when b->>'path' = '/' then '/%' else (b->>'path') || '/%' end
        order by length(b->>'path') desc limit 1;
        continue when owner_path is distinct from block->>'path';
        rel := substr(prop->>'path', case when owner_path = '/' then 1 else length(owner_path) + 1 end);
        if (xpath(format('count((%s)[%s]%s)', ctx, i, substr(app_hidden.entity_xpath(rel), 3)), doc))[1]::text::numeric > 0 then
          data := data || jsonb_build_object(prop->>'property',
            app_hidden.xml_string(format('(%s)[%s]%s', ctx, i, substr(app_hidden.entity_xpath(rel), 3)), doc));
        end if;
      end loop;
      return next jsonb_build_object('system', sys, 'data', data);
    end loop;
  end loop;
end
$$;
comment on function app_hidden.submission_entity_blocks(bigint) is 'The entity blocks of a submission version, in declaration and document order: {system: {dataset, id, create, update, baseVersion, trunkVersion, branchId, label}, data: {property: value}}.';

create function app_hidden.problem_parts(state text, hint text, message text, detail text) returns jsonb
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A raised problem as Central serializes it in entity.error audits.
  if state like 'FB%' and hint is not null then
    return jsonb_build_object('problemCode', hint::numeric, 'problemDetails', nullif(coalesce(detail, '{}')::jsonb, '{}'::jsonb));
  end if;
  return null;
end
$$;

create function app_hidden.create_entity_from_submission(d app_public.datasets, block jsonb, source bigint,
                                                         sd app_public.submission_defs, event text, force boolean)
returns app_public.entities
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sys jsonb := block->'system';
  c app_hidden.client_entity;
  e app_public.entities;
begin
  -- approvalRequired datasets create on approval only; others on receipt only.
  if (d.approval_required and event <> 'submission.update') or (not d.approval_required and event = 'submission.update') then
    return null;
  end if;
  c.uuid := app_hidden.normalize_uuid(sys->>'id');
  c.label := sys->>'label';
  if force and coalesce(trim(c.label), '') = '' then
    c.label := 'auto generated';
  end if;
  if coalesce(trim(c.label), '') = '' then
    perform app_hidden.problem(400.2, 'Required parameter label missing.', '{"field":"label"}');
  end if;
  c.data := block->'data';
  if exists (select 1 from app_public.entities x where x.uuid = c.uuid and x.deleted_at is null) then
    perform app_hidden.problem(409.3, format('A resource already exists with uuid value(s) of %s.', c.uuid),
      jsonb_build_object('fields', jsonb_build_array('uuid'), 'values', jsonb_build_array(c.uuid)));
  end if;
  perform app_hidden.assert_uuids_unused(array[c.uuid]);
  if force then
    c.branch_id := nullif(sys->>'branchId', '')::uuid;
    c.trunk_version := nullif(sys->>'trunkVersion', '')::int;
  end if;
  e := app_hidden.insert_entity(d, c, source, sd.submitter_id, sd.user_agent, null,
                                case when force then nullif(sys->>'baseVersion', '')::int end);
  perform app_hidden.audit_entity('entity.create', d, e,
    jsonb_build_object('submissionId', sd.submission_id, 'submissionDefId', sd.id));
  return e;
end
$$;

create function app_hidden.update_entity_from_submission(d app_public.datasets, block jsonb, source bigint,
                                                         sd app_public.submission_defs, event text, force boolean,
                                                         create_as_update boolean default false)
returns app_public.entities
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sys jsonb := block->'system';
  c app_hidden.client_entity;
  e app_public.entities;
  cur app_public.entity_defs;
  base int;
  held boolean := false;
begin
  if event not in ('submission.create', 'submission.update.version', 'submission.backlog.reprocess') then
    return null;
  end if;
  c.uuid := app_hidden.normalize_uuid(sys->>'id');
  c.label := nullif(trim(coalesce(sys->>'label', '')), '');
  c.label := case when c.label is null then null else sys->>'label' end;
  if create_as_update and c.label is null then
    perform app_hidden.problem(400.2, 'Required parameter label missing.', '{"field":"label"}');
  end if;
  c.data := block->'data';
  if coalesce(trim(sys->>'baseVersion'), '') = '' then
    if not create_as_update then
      perform app_hidden.problem(400.2, 'Required parameter baseVersion missing.', '{"field":"baseVersion"}');
    end if;
  elsif sys->>'baseVersion' !~ '^\d{1,9}$' then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (baseVersion) to be (integer)',
      jsonb_build_object('field', 'baseVersion', 'expected', 'integer'));
  else
    c.base_version := (sys->>'baseVersion')::int;
  end if;
  if coalesce(sys->>'branchId', '') <> '' then
    c.branch_id := app_hidden.normalize_uuid(sys->>'branchId', 'branchId');
  end if;
  if coalesce(sys->>'trunkVersion', '') <> '' then
    if c.branch_id is null then
      perform app_hidden.problem(400.2, 'Required parameter branchId missing.', '{"field":"branchId"}');
    elsif sys->>'trunkVersion' !~ '^\d{1,9}$' then
      perform app_hidden.problem(400.11, 'Invalid input data type: expected (trunkVersion) to be (integer)',
        jsonb_build_object('field', 'trunkVersion', 'expected', 'integer'));
    end if;
    c.trunk_version := (sys->>'trunkVersion')::int;
  end if;
  if create_as_update then
    c.branch_id := null; c.trunk_version := null;
  end if;

  select * into e from app_public.entities where dataset_id = d.id and uuid = c.uuid and deleted_at is null;
  -- Which server version was this update based on?
  if create_as_update then
    base := (select version from app_public.entity_defs where entity_id = e.id and current);
  elsif c.branch_id is null then
    base := (select version from app_public.entity_defs where entity_id = e.id and version = c.base_version);
    if base is null and e.id is not null then
      perform app_hidden.problem(404.9, format('Base version (%s) does not exist for entity UUID (%s) in dataset (%s).', c.base_version, c.uuid, d.name),
        jsonb_build_object('baseVersion', c.base_version, 'entityUuid', c.uuid, 'datasetName', d.name));
    end if;
  else
    base := (select x.version from app_public.entity_defs x where x.entity_id = e.id and
      case when c.base_version = 1 then x.version = 1
           when c.base_version = c.trunk_version then x.version = c.base_version
           else x.branch_id = c.branch_id and x.branch_base_version = c.base_version - 1 end);
    if base is null and force then
      base := (select version from app_public.entity_defs where entity_id = e.id and current);
    elsif base is null then
      -- Its predecessor in the branch has not arrived: hold it.
      insert into app_private.entity_submission_backlog (submission_def_id, submission_id, entity_uuid, branch_id,
                                                         branch_base_version, event, actor_id)
      values (sd.id, sd.submission_id, c.uuid, c.branch_id, c.base_version, event, app_hidden.current_actor_id());
      perform app_hidden.log_audit('submission.backlog.hold', (select actee_id from app_public.forms where id = sd.form_id),
        jsonb_build_object('submissionId', sd.submission_id, 'submissionDefId', sd.id));
      held := true;
    end if;
  end if;
  if held then
    return null;
  end if;
  if e.id is null then
    if exists (select 1 from app_public.entities where dataset_id = d.id and uuid = c.uuid) then
      perform app_hidden.problem(404.11, format('The entity with UUID (%s) has been deleted.', c.uuid), jsonb_build_object('entityUuid', c.uuid));
    end if;
    perform app_hidden.problem(404.8, format('The entity with UUID (%s) specified in the submission does not exist in the dataset (%s).', c.uuid, d.name),
      jsonb_build_object('entityUuid', c.uuid, 'datasetName', d.name));
  end if;
  select * into cur from app_public.entity_defs where entity_id = e.id and current;
  if c.trunk_version is not null and c.trunk_version > cur.version then
    perform app_hidden.problem(404.9, format('Base version (trunkVersion=%s) does not exist for entity UUID (%s) in dataset (%s).', c.trunk_version, c.uuid, d.name),
      jsonb_build_object('baseVersion', 'trunkVersion=' || c.trunk_version, 'entityUuid', c.uuid, 'datasetName', d.name));
  end if;
  e := app_hidden.insert_entity_version(d, e, c, base, source, sd.submitter_id, sd.user_agent, create_as_update);
  if create_as_update then
    update app_public.entity_def_sources set details = coalesce(details, '{}') || '{"action":"create"}' where id = source;
  end if;
  perform app_hidden.audit_entity('entity.update.version', d, e,
    jsonb_build_object('submissionId', sd.submission_id, 'submissionDefId', sd.id));
  return e;
end
$$;

create function app_hidden.process_entity_block(block jsonb, source bigint, sd app_public.submission_defs,
                                                f app_public.forms, event text, force boolean)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sys jsonb := block->'system';
  d app_public.datasets;
  permitted jsonb;
  action text;
  e app_public.entities;
  cur app_public.entity_defs;
  next_held app_private.entity_submission_backlog;
  wants_create boolean := coalesce(sys->>'create', '') in ('1', 'true');
  wants_update boolean := coalesce(sys->>'update', '') in ('1', 'true');
  state text; hint text; detail text; msg text;
  retry_as_create boolean;
begin
  if coalesce(trim(sys->>'dataset'), '') = '' then
    perform app_hidden.problem(400.2, 'Required parameter dataset missing.', '{"field":"dataset"}');
  end if;
  select * into d from app_public.datasets
  where project_id = f.project_id and name = sys->>'dataset' and deleted_at is null and published_at is not null;
  if d is null then
    perform app_hidden.problem(404.7, format('The dataset (%s) specified in the submission does not exist.', sys->>'dataset'),
      jsonb_build_object('datasetName', sys->>'dataset'));
  end if;
  permitted := coalesce((select actions from app_public.dataset_form_defs where dataset_id = d.id and form_def_id = sd.form_def_id), '[]');
  foreach action in array array['create', 'update'] loop
    if coalesce(sys->>action, '') in ('1', 'true') and not permitted ? action then
      perform app_hidden.problem(403.2, format('The submission attempts an entity %s, but the form does not permit that action. The form permits the following actions: %s.',
        action, (select string_agg(a, ', ') from jsonb_array_elements_text(permitted) a)),
        jsonb_build_object('action', action, 'permitted', permitted));
    end if;
  end loop;
  perform app_hidden.lock_entity(app_hidden.normalize_uuid(sys->>'id'));

  if wants_update then
    begin
      e := app_hidden.update_entity_from_submission(d, block, source, sd, event, force);
    exception when others then
      get stacked diagnostics state = returned_sqlstate, hint = pg_exception_hint, detail = pg_exception_detail, msg = message_text;
      retry_as_create := (wants_create or force) and case when hint = '404.8' then true
                                                          when hint = '400.2' then detail::jsonb->>'field' = 'baseVersion'
                                                          else false end;
      if retry_as_create then
        e := app_hidden.create_entity_from_submission(d, block, source, sd, event, force);
      else
        raise exception using errcode = state, message = msg, hint = hint, detail = detail;
      end if;
    end;
  elsif wants_create then
    begin
      e := app_hidden.create_entity_from_submission(d, block, source, sd, event, force);
    exception when others then
      get stacked diagnostics state = returned_sqlstate, hint = pg_exception_hint, detail = pg_exception_detail, msg = message_text;
      -- A create arriving after a forced update-as-create made the entity is applied as an update.
      if hint = '409.3' and exists (
        select 1 from app_public.entities x join app_public.entity_defs r on r.entity_id = x.id and r.root
        join app_public.entity_def_sources s on s.id = r.source_id
        where x.uuid = app_hidden.normalize_uuid(sys->>'id') and x.dataset_id = d.id and s.force_processed) then
        e := app_hidden.update_entity_from_submission(d, block, source, sd, event, force, true);
      else
        raise exception using errcode = state, message = msg, hint = hint, detail = detail;
      end if;
    end;
  end if;

  -- Release the next held update of this branch, if it is waiting for this one.
  if e.id is not null and not force then
    select * into cur from app_public.entity_defs where entity_id = e.id and current;
    if cur.branch_id is null then
      select * into next_held from app_private.entity_submission_backlog
      where entity_uuid = e.uuid and branch_base_version = 1 limit 1;
    else
      select * into next_held from app_private.entity_submission_backlog
      where branch_id = cur.branch_id and branch_base_version = coalesce(cur.branch_base_version, 0) + 1 limit 1;
    end if;
    if next_held.submission_def_id is not null then
      delete from app_private.entity_submission_backlog where submission_def_id = next_held.submission_def_id;
      perform app_hidden.log_audit('submission.backlog.reprocess', f.actee_id,
        jsonb_build_object('submissionId', next_held.submission_id, 'submissionDefId', next_held.submission_def_id));
      perform app_hidden.queue_submission_entities(next_held.submission_def_id, 'submission.backlog.reprocess', next_held.actor_id);
    end if;
  end if;
end
$$;

create function app_hidden.submission_entities_done(submission int) returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select exists (select 1 from app_public.entity_defs x join app_public.entity_def_sources s on s.id = x.source_id
                 join app_public.submission_defs y on y.id = s.submission_def_id where y.submission_id = submission)
      or exists (select 1 from app_private.entity_submission_backlog b where b.submission_id = submission)
$$;
comment on function app_hidden.submission_entities_done(int) is 'Whether a submission already made an entity version or is held in the offline backlog (then it is not processed again).';

create function app_hidden.process_submission_entities(submission_def_id bigint, event text default 'submission.create',
                                                                  actor int default null, force boolean default false)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sd app_public.submission_defs;
  sub app_public.submissions;
  f app_public.forms;
  previous_actor text := current_setting('fieldbase.actor_id', true);
  blocks jsonb[];
  src bigint;
  errors jsonb := '[]';
  i int;
  state text; hint text; detail text; msg text;
  problem jsonb;
begin
  select * into sd from app_public.submission_defs x where x.id = process_submission_entities.submission_def_id;
  select * into sub from app_public.submissions where id = sd.submission_id;
  select * into f from app_public.forms where id = sd.form_id;
  if sd.id is null or sub.deleted_at is not null or sub.draft or f.deleted_at is not null
     or (select entities from app_public.form_defs where id = sd.form_def_id) is null then
    return;
  end if;
  -- Once a submission made an entity version, or while it is held, it is not processed again.
  if app_hidden.submission_entities_done(sub.id) then
    return;
  end if;
  perform set_config('fieldbase.actor_id', coalesce(actor, sd.submitter_id)::text, true);
  begin
    blocks := array(select app_hidden.submission_entity_blocks(sd.id));
    -- Every entity the submission names is locked before anything is written (see the top of this file).
    perform app_hidden.lock_entities(array(select app_hidden.uuid_or_null(b->'system'->>'id') from unnest(blocks) b));
    -- Checked again under the locks: a concurrent run for the same submission has committed by now.
    if not app_hidden.submission_entities_done(sub.id) then
      src := app_hidden.new_entity_source('submission', sd.id, jsonb_build_object('submission', jsonb_build_object('instanceId', sd.instance_id)), force);
      for i in 1 .. coalesce(array_length(blocks, 1), 0) loop
        begin
          perform app_hidden.process_entity_block(blocks[i], src, sd, f, event, force);
        exception when others then
          get stacked diagnostics state = returned_sqlstate, hint = pg_exception_hint, detail = pg_exception_detail, msg = message_text;
          if array_length(blocks, 1) = 1 or state in ('40P01', '40001', '55P03') then
            raise exception using errcode = state, message = msg, hint = hint, detail = detail;
          end if;
          errors := errors || jsonb_build_object('index', i - 1, 'errorMessage', msg,
                                                 'problem', app_hidden.problem_parts(state, hint, msg, detail));
        end;
      end loop;
      if jsonb_array_length(errors) > 0 then
        perform app_hidden.problem(400.43, format('Failed to process %s of %s entities in submission: %s', jsonb_array_length(errors),
          array_length(blocks, 1), (select string_agg(format('(Entity %s) %s', (x->>'index')::int + 1, x->>'errorMessage'), ' ')
                                    from jsonb_array_elements(errors) x)),
          jsonb_build_object('count', jsonb_array_length(errors), 'total', array_length(blocks, 1), 'errors', errors));
      end if;
      -- A source no version used (nothing to do, or held) is not kept.
      delete from app_public.entity_def_sources s where s.id = src and not exists (select 1 from app_public.entity_defs x where x.source_id = src);
    end if;
  exception when others then
    get stacked diagnostics state = returned_sqlstate, hint = pg_exception_hint, detail = pg_exception_detail, msg = message_text;
    -- A deadlock or serialization failure says nothing about the submission: the job fails and is retried.
    if state in ('40P01', '40001', '55P03') then
      raise;
    end if;
    -- Every change above is undone; the submission stays, and the failure is recorded as Central does.
    problem := app_hidden.problem_parts(state, hint, msg, detail);
    perform app_hidden.log_audit('entity.error', f.actee_id, jsonb_build_object(
      'submissionId', sd.submission_id, 'submissionDefId', sd.id, 'errorMessage', msg, 'problem', problem));
  end;
  perform set_config('fieldbase.actor_id', coalesce(previous_actor, ''), true);
end
$$;
comment on function app_hidden.process_submission_entities(bigint, text, int, boolean) is
  'Creates/updates the entities a submission version declares (see the contract at the top of 52-entity-submissions.sql) under their locks; never raises but for deadlocks and serialization failures (the job retries), logs entity.error instead.';

create function app_hidden.queue_submission_entities(def_id bigint, event text, actor int default null) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform graphile_worker.add_job('submission__process_entities',
    json_build_object('submissionDefId', def_id, 'event', event, 'actorId', actor),
    job_key := 'submission-entities-' || def_id || '-' || event);
end
$$;
comment on function app_hidden.queue_submission_entities(bigint, text, int) is 'Queues process_submission_entities for a submission version (deduplicated per version and event).';

create function app_hidden.process_entity_backlog(force_all boolean default false, older_than interval default interval '5 days') returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  held app_private.entity_submission_backlog;
  n int := 0;
begin
  -- The entities first (in lock order), so that a held update released meanwhile is seen as gone.
  perform app_hidden.lock_entities(array(select b.entity_uuid from app_private.entity_submission_backlog b
                                         where force_all or b.logged_at < now() - older_than));
  -- Held updates whose predecessors never came are applied anyway, in branch order (Central: after 5 days).
  for held in select * from app_private.entity_submission_backlog
              where force_all or logged_at < now() - older_than order by branch_id, branch_base_version loop
    delete from app_private.entity_submission_backlog where submission_def_id = held.submission_def_id;
    continue when not found;
    perform set_config('fieldbase.actor_id', coalesce(held.actor_id::text, ''), true);
    perform app_hidden.log_audit('submission.backlog.force',
      (select f.actee_id from app_public.forms f join app_public.submission_defs sd on sd.form_id = f.id where sd.id = held.submission_def_id),
      jsonb_build_object('submissionId', held.submission_id, 'submissionDefId', held.submission_def_id));
    perform app_hidden.process_submission_entities(held.submission_def_id, held.event, held.actor_id, true);
    n := n + 1;
  end loop;
  return n;
end
$$;
comment on function app_hidden.process_entity_backlog(boolean, interval) is 'Force-processes held offline updates older than older_than (all of them with force_all); run hourly by the worker.';

/* Queueing: every stored version of a submission to a form that declares entities, and every approval. */
create function app_hidden.queue_entities_on_submission() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select 1 from app_public.form_defs fd where fd.id = new.form_def_id and fd.entities is not null)
     and not (select draft from app_public.submissions where id = new.submission_id) then
    perform app_hidden.queue_submission_entities(new.id,
      case when exists (select 1 from app_public.submission_defs x where x.submission_id = new.submission_id and x.id <> new.id)
           then 'submission.update.version' else 'submission.create' end,
      coalesce(app_hidden.current_actor_id(), new.submitter_id));
  end if;
  return null;
end
$$;
create trigger queue_entities_on_submission after insert on app_public.submission_defs
  for each row execute function app_hidden.queue_entities_on_submission();

create function app_hidden.queue_entities_on_approval() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  def_id bigint;
begin
  select sd.id into def_id from app_public.submission_defs sd join app_public.form_defs fd on fd.id = sd.form_def_id
  where sd.submission_id = new.id and sd.current and fd.entities is not null;
  if def_id is not null and not new.draft then
    perform app_hidden.queue_submission_entities(def_id, 'submission.update', app_hidden.current_actor_id());
  end if;
  return null;
end
$$;
create trigger queue_entities_on_approval after update of review_state on app_public.submissions
  for each row when (new.review_state = 'approved' and old.review_state is distinct from 'approved')
  execute function app_hidden.queue_entities_on_approval();

--! split: 53-entity-lists.sql
/*
 * Entity lists as clients download them: the rows of a dataset an actor may see through a linked form
 * attachment (filtered by ownerOnly / accessFilter for restricted actors), its hash for OpenRosa manifests,
 * and the OpenRosa integrity check (which requested entities are deleted). The form-attachment and
 * OpenRosa routes call these with a dataset id; they check access themselves.
 */
drop function if exists app_hidden.dataset_list_access(int) cascade;
drop function if exists app_public.entity_list_rows(int) cascade;
drop function if exists app_public.entity_list_md5(int) cascade;
drop function if exists app_public.dataset_integrity(int, text, text[]) cascade;
drop function if exists app_hidden.entity_actor_json(int) cascade;
drop function if exists app_public.entity_audits(int, text, text) cascade;
drop function if exists app_public.dataset_creators(int, text) cascade;

create function app_hidden.dataset_list_access(ds_id int) returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets;
begin
  -- 'all' with direct access (entity.list), 'filtered' through a readable form that links the dataset, else 403.1.
  select * into d from app_public.datasets where id = ds_id and deleted_at is null;
  if d is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  if app_hidden.actor_can('entity.list', d.actee_id) then
    return 'all';
  end if;
  if exists (
    select 1 from app_public.form_attachments a join app_public.form_defs fd on fd.id = a.form_def_id
    join app_public.forms f on f.id = fd.form_id
    where a.dataset_id = d.id and f.deleted_at is null and fd.id in (f.current_def_id, f.draft_def_id)
      and (app_hidden.draft_token_matches(fd.draft_token) and fd.id = f.draft_def_id)) then
    return 'all';  -- draft testing sees everything, as in Central
  end if;
  if exists (
    select 1 from app_public.form_attachments a join app_public.form_defs fd on fd.id = a.form_def_id
    join app_public.forms f on f.id = fd.form_id
    where a.dataset_id = d.id and f.deleted_at is null and fd.id = f.current_def_id and app_hidden.can_read_form(f)) then
    return 'filtered';
  end if;
  perform app_hidden.problem(403.1, 'The authentication you provided does not have rights to perform that action.');
end
$$;
comment on function app_hidden.dataset_list_access(int) is 'How much of a dataset the actor may download: all (entity.list or a draft token), filtered (via a linked form they can read), or 403.1.';

create function app_public.entity_list_rows(ds_id int)
returns table (uuid uuid, label text, version int, data jsonb, updated_at timestamptz)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  access text := app_hidden.dataset_list_access(ds_id);
  d app_public.datasets;
  me int := app_hidden.current_actor_id();
  filter jsonb;
begin
  select * into d from app_public.datasets where id = ds_id;
  filter := case when access = 'all' then null
                 when d.access_filter is not null then d.access_filter
                 when d.owner_only then '{"type":"ownerOnly"}'::jsonb end;
  return query
    select e.uuid, x.label, x.version, x.data, coalesce(e.updated_at, e.created_at)
    from app_public.entities e join app_public.entity_defs x on x.entity_id = e.id and x.current
    where e.dataset_id = d.id and e.deleted_at is null
      and (filter is null
           or (filter->>'type' = 'ownerOnly' and e.creator_id = me)
           or (filter->>'type' = 'property' and not exists (
                 select 1 from jsonb_array_elements(filter->'rules') r
                 where (x.data->>(r->>'datasetProperty')) is distinct from (
                   select v.value from app_public.actor_property_values v
                   join app_public.actor_properties p on p.id = v.actor_property_id
                   where v.actor_id = me and p.project_id = d.project_id and p.name = r->>'actorProperty'))))
    order by e.created_at, e.id;
end
$$;
comment on function app_public.entity_list_rows(int) is 'The live entities of a dataset the actor may download as a form attachment (name,label,__version + properties), oldest first.';

create function app_public.entity_list_md5(ds_id int) returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  -- Changes whenever the rows this actor would download change (an entity, its version or deletion, a property).
  select md5(concat_ws(':', d.id, app_hidden.iso(d.updated_at), app_hidden.iso(d.created_at),
                       (select count(*) from app_public.entity_list_rows(d.id)),
                       (select app_hidden.iso(max(r.updated_at)) from app_public.entity_list_rows(d.id) r),
                       (select max(x.id) from app_public.entities e join app_public.entity_defs x on x.entity_id = e.id where e.dataset_id = d.id)))
  from app_public.datasets d where d.id = ds_id
$$;
comment on function app_public.entity_list_md5(int) is 'The hash an OpenRosa manifest gives a dataset-backed attachment, for this actor.';

create function app_public.dataset_integrity(project int, ds_name text, ids text[] default null)
returns table (uuid uuid, deleted boolean)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets;
  wanted uuid[];
begin
  select * into d from app_public.datasets ds
  where ds.project_id = project and ds.name = ds_name and ds.deleted_at is null and ds.published_at is not null;
  if d is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  perform app_hidden.dataset_list_access(d.id);
  wanted := case when ids is null then null
                 else array(select lower(regexp_replace(trim(i), '^uuid:', ''))::uuid from unnest(ids) i
                            where trim(i) ~* '^(uuid:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') end;
  return query
    select e.uuid, e.deleted_at is not null from app_public.entities e
    where e.dataset_id = d.id and (wanted is null or e.uuid = any (wanted))
    union all
    select p.uuid, true from app_private.purged_entities p
    where p.dataset_id = d.id and wanted is not null and p.uuid = any (wanted);
end
$$;
comment on function app_public.dataset_integrity(int, text, text[]) is 'OpenRosa integrity: whether each requested entity (all when ids is null) is deleted (purged ones included).';

grant execute on function app_public.entity_list_rows(int), app_public.entity_list_md5(int),
  app_public.dataset_integrity(int, text, text[]) to fieldbase_request;

/* Who made entities, and what happened to one: readers of a dataset's entities see these even without
 * user.read or audit.read (as in Central). */
create function app_hidden.entity_actor_json(actor int) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$ select app_hidden.actor_json(a) from app_public.actors a where a.id = actor $$;
comment on function app_hidden.entity_actor_json(int) is 'An entity (version) creator in Central''s Actor shape, for those who may read the entity.';

create function app_public.dataset_creators(project int, ds_name text) returns setof jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.actor_json(a) from app_public.actors a
  where a.id in (select e.creator_id from app_public.entities e
                 where e.dataset_id = (app_hidden.dataset_for(project, ds_name, 'entity.list')).id and e.deleted_at is null)
  order by a.display_name, a.id
$$;
comment on function app_public.dataset_creators(int, text) is 'Every actor who created a live entity of the dataset, by display name (entity.list).';

create function app_public.entity_audits(project int, ds_name text, entity_ref text)
returns table (actor_id int, action text, actee_id text, details jsonb, notes text, logged_at timestamptz, actor jsonb)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'entity.read');
  e app_public.entities;
  root_source bigint;
  sub_ids int[];
begin
  select * into e from app_public.entities x where x.dataset_id = d.id and x.uuid::text = lower(regexp_replace(entity_ref, '^uuid:', ''));
  if e is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  select source_id into root_source from app_public.entity_defs where entity_id = e.id and root;
  select array_agg(distinct sd.submission_id) into sub_ids from app_public.entity_defs x
  join app_public.entity_def_sources s on s.id = x.source_id join app_public.submission_defs sd on sd.id = s.submission_def_id
  where x.entity_id = e.id;
  return query
    select a.actor_id, a.action, a.actee_id, a.details, a.notes, a.logged_at, app_hidden.actor_json(ac)
    from app_public.audits a left join app_public.actors ac on ac.id = a.actor_id
    where (a.actee_id = d.actee_id and (a.details->'entity'->>'uuid' = e.uuid::text
                                        or coalesce(a.details->'entity'->'uuids', '[]') ? e.uuid::text
                                        or (a.action = 'entity.bulk.create' and a.details->>'sourceId' = root_source::text)))
       or (a.action in ('submission.create', 'submission.update', 'submission.update.version')
           and (a.details->>'submissionId')::int = any (coalesce(sub_ids, '{}')))
    order by a.logged_at desc, a.id desc;
end
$$;
comment on function app_public.entity_audits(int, text, text) is 'An entity''s audit log, newest first (entity.read): its own events, bulk events naming it, and its source submissions'' events.';

grant execute on function app_hidden.entity_actor_json(int), app_public.dataset_creators(int, text),
  app_public.entity_audits(int, text, text) to fieldbase_request;

--! split: 54-entities-odata.sql
/*
 * The OData service of a dataset (…/datasets/:name.svc): which dataset, for whom, with which properties.
 * The data document itself is a plain select on entities and entity_defs under row-level security
 * (server/routes/odata-entities.ts builds it with the OData query options).
 */
drop function if exists app_public.odata_dataset(int, text) cascade;

create function app_public.odata_dataset(project int, ds_name text)
returns table (id int, name text, properties text[])
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  -- dataset_for: 404.1 for no such (live, published) dataset, 403.1 without entity.list (Central's rule for .svc).
  select d.id, d.name,
         array(select p.name from app_public.ds_properties p where p.dataset_id = d.id order by p.id)
  from app_hidden.dataset_for(project, ds_name, 'entity.list') d
$$;
comment on function app_public.odata_dataset(int, text) is 'The dataset an OData service is about and its properties in order (entity.list; 404.1 / 403.1).';

grant execute on function app_public.odata_dataset(int, text) to fieldbase_request;

--! split: 55-entity-list-files.sql
/*
 * Entity lists as the CSV file Collect downloads (a form attachment linked to a dataset): the file's lines are
 * produced here, so that the OpenRosa manifest's hash is the md5 of exactly the bytes the download serves (for
 * the calling actor: ownerOnly / accessFilter rows come from app_public.entity_list_rows in 53-entity-lists.sql).
 * Also linking and unlinking a draft's attachment to a dataset (PATCH …/draft/attachments/:name {dataset}).
 */
drop function if exists app_hidden.csv_cell(text) cascade;
drop function if exists app_public.entity_list_csv(int) cascade;
drop function if exists app_public.link_draft_attachment(int, text, text, boolean) cascade;
drop function if exists app_public.form_manifest_files(int) cascade;

create function app_hidden.csv_cell(value text) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select case when value is null then ''
              when value ~ '[",\r\n]' then '"' || replace(value, '"', '""') || '"'
              else value end
$$;
comment on function app_hidden.csv_cell(text) is 'One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; null is empty.';

create function app_public.entity_list_csv(ds_id int) returns setof text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  props text[];
begin
  -- entity_list_rows checks access (404.1 / 403.1) and filters for restricted actors.
  props := array(select p.name from app_public.ds_properties p where p.dataset_id = ds_id order by p.id);
  return query
    select (select string_agg(app_hidden.csv_cell(h), ',' order by o)
            from unnest(array['name', 'label', '__version'] || props) with ordinality u(h, o)) || E'\n';
  return query
    select app_hidden.csv_cell(r.uuid::text) || ',' || app_hidden.csv_cell(r.label) || ',' || r.version
           || coalesce((select string_agg(',' || app_hidden.csv_cell(r.data->>p), '' order by o)
                        from unnest(props) with ordinality u(p, o)), '') || E'\n'
    from app_public.entity_list_rows(ds_id) r;
end
$$;
comment on function app_public.entity_list_csv(int) is 'The lines (each ending in a newline) of a dataset''s entity-list attachment for the current actor: name,label,__version, then the properties.';

create or replace function app_public.entity_list_md5(ds_id int) returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select md5(string_agg(line, '' order by n)) from app_public.entity_list_csv(ds_id) with ordinality c(line, n)
$$;
comment on function app_public.entity_list_md5(int) is 'The md5 of the entity-list CSV the current actor downloads: the OpenRosa manifest hash and the download''s ETag.';

create function app_public.form_manifest_files(def int)
returns table (name text, md5 text, type text, dataset_name text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  -- Files the server holds for a form version the actor may read: uploads with their md5, dataset-linked files
  -- with the md5 of the entity list this actor downloads, typed for Collect's offline entities.
  select a.name, coalesce(b.md5, app_public.entity_list_md5(d.id)),
         case when d.id is null then null when d.approval_required then 'approvalEntityList' else 'entityList' end,
         d.name
  from app_public.form_attachments a
  left join app_public.blobs b on b.id = a.blob_id
  left join app_public.datasets d on d.id = a.dataset_id and d.deleted_at is null
  where a.form_def_id = def and app_hidden.can_read_form_def(def) and (b.id is not null or d.id is not null)
  order by a.name
$$;
comment on function app_public.form_manifest_files(int) is 'The OpenRosa manifest entries of a form version: name, md5, entityList/approvalEntityList type and dataset name for linked files.';

create function app_public.link_draft_attachment(project int, xml_form text, file_name text, link boolean) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form);
  a app_public.form_attachments;
  ds_id int;
begin
  perform app_hidden.assert_can('form.update', f.actee_id);
  select * into a from app_public.form_attachments where form_def_id = f.draft_def_id and name = file_name;
  if a is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  if link then
    -- The project's published dataset named like the file without its .csv extension.
    select d.id into ds_id from app_public.datasets d
    where d.project_id = f.project_id and d.name = regexp_replace(file_name, '\.csv$', '', 'i')
      and d.deleted_at is null and d.published_at is not null;
    if ds_id is null then
      perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
    end if;
    if a.type <> 'file' then
      perform app_hidden.problem(400.26, 'Dataset can only be linked to attachments with "Data File" type.');
    end if;
  end if;
  update app_public.form_attachments set blob_id = null, dataset_id = ds_id, updated_at = clock_timestamp()
  where form_def_id = a.form_def_id and name = a.name;
  perform app_hidden.log_audit('form.attachment.update', f.actee_id, jsonb_build_object('formDefId', a.form_def_id,
    'name', a.name, 'oldBlobId', a.blob_id, 'newBlobId', null, 'oldDatasetId', a.dataset_id, 'newDatasetId', ds_id));
end
$$;
comment on function app_public.link_draft_attachment(int, text, text, boolean) is 'PATCH …/draft/attachments/:name {dataset}: links the attachment to the dataset it names (removing any file), or unlinks it (form.update).';

grant execute on function app_public.entity_list_csv(int), app_public.entity_list_md5(int),
  app_public.form_manifest_files(int), app_public.link_draft_attachment(int, text, text, boolean) to fieldbase_request;

--! split: 56-dataset-convert.sql
/*
 * Turning approvalRequired off (PATCH …/datasets/:name?convert=true|false, as Central): submissions received
 * while approval was required and neither approved nor rejected would never make entities. Without ?convert the
 * change is refused while there are any (400.29); with convert=true they are processed now as if just received.
 */
drop function if exists app_hidden.dataset_pending_submissions(int) cascade;
drop function if exists app_public.dataset_pending_count(int, text) cascade;
drop function if exists app_public.convert_pending_submissions(int, text) cascade;

create function app_hidden.dataset_pending_submissions(ds_id int) returns table (submission_def_id int)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select sd.id from app_public.submissions s
  join app_public.submission_defs sd on sd.submission_id = s.id and sd.current
  join app_public.forms f on f.id = s.form_id
  join app_public.datasets d on d.id = ds_id
  where d.approval_required and not s.draft and s.deleted_at is null and f.deleted_at is null
    and coalesce(s.review_state, 'received') in ('received', 'hasIssues', 'edited')
    and exists (select 1 from app_public.dataset_form_defs x where x.dataset_id = ds_id and x.form_def_id = sd.form_def_id)
    and not exists (select 1 from app_public.submission_defs y join app_public.entity_def_sources src on src.submission_def_id = y.id
                    join app_public.entity_defs v on v.source_id = src.id where y.submission_id = s.id)
    and not exists (select 1 from app_private.entity_submission_backlog b where b.submission_id = s.id)
  order by s.created_at, s.id
$$;
comment on function app_hidden.dataset_pending_submissions(int) is 'Current versions of submissions to an approvalRequired dataset''s forms that await approval and made no entity yet.';

create function app_public.dataset_pending_count(project int, ds_name text) returns int
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select count(*)::int from app_hidden.dataset_pending_submissions((app_hidden.dataset_for(project, ds_name, 'dataset.update')).id)
$$;
comment on function app_public.dataset_pending_count(int, text) is 'How many submissions would never make entities if the dataset stopped requiring approval (dataset.update).';

create function app_public.convert_pending_submissions(project int, ds_name text) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'dataset.update');
  n int := 0;
  def_id int;
begin
  -- Called before approvalRequired is turned off; the queued jobs run after this transaction commits it.
  for def_id in select p.submission_def_id from app_hidden.dataset_pending_submissions(d.id) p loop
    perform app_hidden.queue_submission_entities(def_id, 'submission.create', app_hidden.current_actor_id());
    n := n + 1;
  end loop;
  return n;
end
$$;
comment on function app_public.convert_pending_submissions(int, text) is 'PATCH …?convert=true: queues entity processing for the dataset''s pending submissions, as if just received (dataset.update).';

grant execute on function app_public.dataset_pending_count(int, text), app_public.convert_pending_submissions(int, text)
  to fieldbase_request;

--! split: 57-analytics.sql
/*
 * The usage report preview (GET /v1/analytics/preview): Central's metrics template, every metric from real
 * data; it comes last because it reads every area's tables.
 *
 * Definitions follow Central's usage report query by query, including where it counts more than one might
 * expect: soft-deleted forms and submissions, draft (test) submissions and every form version are counted,
 * as Central's queries do not filter them out. "recent" is app_hidden.recent_cutoff() (45 days, 12-config.sql):
 * for a form it means "received a submission within the window", for a submission/entity/event "created or
 * logged within the window". Durations are seconds (Central's database driver turns intervals into seconds).
 */

/* The usage report preview (Central's metrics template), from real data. "recent" means the last 45 days. */

create or replace function app_hidden.recent_cutoff() returns timestamptz
language sql stable set search_path = pg_catalog, pg_temp
as $$ select (current_date - 45)::timestamptz $$;

create or replace function app_hidden.total_recent(total bigint, recent bigint) returns jsonb
language sql immutable set search_path = pg_catalog, pg_temp
as $$ select jsonb_build_object('recent', coalesce(recent, 0), 'total', coalesce(total, 0)) $$;

create or replace function app_hidden.actor_recently_active(actor int) returns boolean
language sql stable set search_path = pg_catalog, pg_temp
as $$
  select exists (select 1 from app_public.audits au where au.actor_id = actor and au.logged_at >= app_hidden.recent_cutoff())
$$;

drop function if exists app_hidden.analytics_form_flags(int) cascade;
drop function if exists app_hidden.analytics_project_users_extras(int) cascade;
drop function if exists app_hidden.analytics_project_forms(int) cascade;
drop function if exists app_hidden.analytics_project_submissions(int) cascade;
drop function if exists app_hidden.analytics_dataset(app_public.datasets) cascade;
drop function if exists app_hidden.analytics_project_datasets(int) cascade;
drop function if exists app_hidden.client_audit_attachments() cascade;
drop function if exists app_hidden.csv_data_rows(bytea) cascade;
drop function if exists app_hidden.seconds(interval) cascade;

create function app_hidden.seconds(duration interval) returns numeric
language sql immutable set search_path = pg_catalog, pg_temp
as $$ select extract(epoch from duration) $$;
comment on function app_hidden.seconds(interval) is 'An interval as a number of seconds (null stays null), as usage report durations are sent.';

/* Per form of a project: what its versions contain and whether it received a submission recently. */
create function app_hidden.analytics_form_flags(project int)
returns table (form_id int, state text, webforms_enabled boolean, recent boolean,
               has_repeat boolean, has_geo boolean, has_audit boolean, encrypted boolean)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select f.id, f.state, f.webforms_enabled,
    exists (select 1 from app_public.submissions s where s.form_id = f.id and s.created_at >= app_hidden.recent_cutoff()),
    -- Any version of the form (published, older or draft) counts, as Central's form_fields hold every version's.
    exists (select 1 from app_public.form_defs d join app_public.form_fields ff on ff.form_def_id = d.id
            where d.form_id = f.id and ff.type = 'repeat'),
    exists (select 1 from app_public.form_defs d join app_public.form_fields ff on ff.form_def_id = d.id
            where d.form_id = f.id and ff.type in ('geopoint', 'geotrace', 'geoshape')),
    exists (select 1 from app_public.form_defs d join app_public.form_fields ff on ff.form_def_id = d.id
            where d.form_id = f.id and ff.type = 'binary' and ff.name = 'audit'),
    exists (select 1 from app_public.form_defs d where d.form_id = f.id and d.key_id is not null)
  from app_public.forms f
  where f.project_id = project
$$;
comment on function app_hidden.analytics_form_flags(int) is 'Usage report: each form of a project (deleted ones too, as Central) with its repeat/geo/client-audit/encryption flags and recent activity.';

create function app_hidden.analytics_project_forms(project int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with flags as (select * from app_hidden.analytics_form_flags(project)),
  -- Central's per-project counts of live forms whose published version writes entities (from the root or a repeat).
  entity_forms as (
    select f.id, x.actions ? 'create' as creates, x.actions ? 'update' as updates,
      exists (select 1 from jsonb_array_elements(coalesce(fd.entities->'datasets', '[]')) b
              join app_public.form_fields r on r.form_def_id = fd.id and r.type = 'repeat'
              where lower(b->>'name') = lower(ds.name) and (b->>'path' = r.path or b->>'path' like r.path || '/%')) as in_repeat
    from app_public.forms f
    join app_public.form_defs fd on fd.id = f.current_def_id
    join app_public.dataset_form_defs x on x.form_def_id = fd.id
    join app_public.datasets ds on ds.id = x.dataset_id
    where f.project_id = project and f.deleted_at is null
  )
  select jsonb_build_object(
    'num_forms', app_hidden.total_recent(count(*), count(*) filter (where recent)),
    'num_forms_with_repeats', app_hidden.total_recent(count(*) filter (where has_repeat), count(*) filter (where has_repeat and recent)),
    'num_forms_with_geospatial', app_hidden.total_recent(count(*) filter (where has_geo), count(*) filter (where has_geo and recent)),
    'num_forms_with_encryption', app_hidden.total_recent(count(*) filter (where encrypted), count(*) filter (where encrypted and recent)),
    'num_forms_with_audits', app_hidden.total_recent(count(*) filter (where has_audit), count(*) filter (where has_audit and recent)),
    'num_forms_webforms_enabled', count(*) filter (where webforms_enabled),
    -- Live forms whose xmlFormId a form deleted (form.delete) from this project had before.
    'num_reused_form_ids', (select count(*) from app_public.forms live
                            where live.project_id = project and live.deleted_at is null
                              and exists (select 1 from app_public.forms gone
                                          join app_public.audits au on au.actee_id = gone.actee_id and au.action = 'form.delete'
                                          where gone.project_id = live.project_id and gone.xml_form_id = live.xml_form_id
                                            and gone.deleted_at is not null)),
    'num_open_forms', app_hidden.total_recent(count(*) filter (where state = 'open'), count(*) filter (where state = 'open' and recent)),
    'num_closing_forms', app_hidden.total_recent(count(*) filter (where state = 'closing'), count(*) filter (where state = 'closing' and recent)),
    'num_closed_forms', app_hidden.total_recent(count(*) filter (where state = 'closed'), count(*) filter (where state = 'closed' and recent))
  ) || (select jsonb_build_object(
    'num_entity_create_forms', count(distinct id) filter (where creates),
    'num_repeat_entity_create_forms', count(distinct id) filter (where creates and in_repeat),
    'num_entity_update_forms', count(distinct id) filter (where updates),
    'num_repeat_entity_update_forms', count(distinct id) filter (where updates and in_repeat),
    'num_entity_create_update_forms', count(distinct id) filter (where creates and updates))
    from entity_forms)
  from flags
$$;
comment on function app_hidden.analytics_project_forms(int) is 'Usage report: a project''s form metrics (counts, repeats, geo, encryption, client audits, states, webforms, reused ids, entity forms).';

create function app_hidden.analytics_project_submissions(project int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with subs as (
    select s.review_state, s.created_at >= app_hidden.recent_cutoff() as recent,
      v.versions, v.last_version_at,
      exists (select 1 from app_public.submission_comments c where c.submission_id = s.id) as commented,
      exists (select 1 from app_public.field_keys k where k.actor_id = s.submitter_id) as by_app_user,
      exists (select 1 from app_public.public_links l where l.actor_id = s.submitter_id) as by_public_link,
      exists (select 1 from app_public.users u where u.actor_id = s.submitter_id) as by_web_user
    from app_public.submissions s
    join app_public.forms f on f.id = s.form_id
    cross join lateral (select count(*) as versions, max(d.created_at) as last_version_at
                        from app_public.submission_defs d where d.submission_id = s.id) v
    where f.project_id = project
  )
  select jsonb_build_object(
    'num_submissions_received', app_hidden.total_recent(count(*), count(*) filter (where recent)),
    'num_submissions_approved', app_hidden.total_recent(count(*) filter (where review_state = 'approved'),
                                                        count(*) filter (where review_state = 'approved' and recent)),
    'num_submissions_has_issues', app_hidden.total_recent(count(*) filter (where review_state = 'hasIssues'),
                                                          count(*) filter (where review_state = 'hasIssues' and recent)),
    'num_submissions_rejected', app_hidden.total_recent(count(*) filter (where review_state = 'rejected'),
                                                        count(*) filter (where review_state = 'rejected' and recent)),
    'num_submissions_edited', app_hidden.total_recent(count(*) filter (where review_state = 'edited'),
                                                      count(*) filter (where review_state = 'edited' and recent)),
    -- More than one version; recent when the latest version is.
    'num_submissions_with_edits', app_hidden.total_recent(count(*) filter (where versions > 1),
                                                          count(*) filter (where versions > 1 and last_version_at >= app_hidden.recent_cutoff())),
    -- Recent by the submission's own date, as Central.
    'num_submissions_with_comments', app_hidden.total_recent(count(*) filter (where commented), count(*) filter (where commented and recent)),
    'num_submissions_from_app_users', app_hidden.total_recent(count(*) filter (where by_app_user), count(*) filter (where by_app_user and recent)),
    'num_submissions_from_public_links', app_hidden.total_recent(count(*) filter (where by_public_link), count(*) filter (where by_public_link and recent)),
    'num_submissions_from_web_users', app_hidden.total_recent(count(*) filter (where by_web_user), count(*) filter (where by_web_user and recent)))
  from subs
$$;
comment on function app_hidden.analytics_project_submissions(int) is 'Usage report: a project''s submission metrics (received, review states, edits, comments, by kind of submitter).';

create function app_hidden.analytics_project_users_extras(project int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    -- Distinct device ids seen on the project's submissions; recent when one of them was sent within the window.
    'num_device_ids', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                       from (select bool_or(s.created_at >= app_hidden.recent_cutoff()) as recent
                             from app_public.submissions s join app_public.forms f on f.id = s.form_id
                             where f.project_id = project and s.device_id is not null
                             group by s.device_id) d),
    -- Public Links of the project's forms; recent when the link submitted within the window.
    'num_public_access_links', (select app_hidden.total_recent(count(*), count(*) filter (where exists (
                                  select 1 from app_public.submissions s
                                  where s.submitter_id = l.actor_id and s.created_at >= app_hidden.recent_cutoff())))
                                from app_public.public_links l join app_public.forms f on f.id = l.form_id
                                where f.project_id = project))
$$;
comment on function app_hidden.analytics_project_users_extras(int) is 'Usage report: a project''s device ids and Public Links (the users part not about web users or App Users).';

create function app_hidden.analytics_dataset(ds app_public.datasets) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with cutoff as (select app_hidden.recent_cutoff() as at),
  -- Entity events logged on this dataset, with the entity they name (purged entities drop out, as in Central).
  entity_events as (
    select a.action, a.logged_at >= cutoff.at as recent, a.details->'submissionDefId' is not null as from_submission
    from app_public.audits a cross join cutoff
    join app_public.entities e on e.id = (a.details->>'entityId')::int and e.dataset_id = ds.id
    where a.actee_id = ds.actee_id and a.action in ('entity.create', 'entity.update.version')
  ),
  bulk_events as (
    select a.logged_at >= cutoff.at as recent, src.id as source_id, (src.details->>'count')::int as size
    from app_public.audits a cross join cutoff
    join app_public.entity_def_sources src on src.id = (a.details->>'sourceId')::bigint
    where a.actee_id = ds.actee_id and a.action = 'entity.bulk.create'
  )
  select jsonb_build_object(
    'id', ds.id,
    'num_properties', (select count(*) from app_public.ds_properties p where p.dataset_id = ds.id and p.published_at is not null),
    'num_entities_with_geometry', (select app_hidden.total_recent(count(*), count(*) filter (where e.created_at >= cutoff.at))
                                   from app_public.entities e cross join cutoff
                                   join app_public.entity_defs d on d.entity_id = e.id and d.current
                                   where e.dataset_id = ds.id and e.deleted_at is null and d.data ? 'geometry'),
    -- Form versions (every one, drafts included) that write to this dataset, as Central counts them.
    'num_creation_forms', (select count(*) from app_public.dataset_form_defs x where x.dataset_id = ds.id),
    -- Attachments (of any version) of published forms that this dataset is linked to.
    'num_followup_forms', (select count(*) from app_public.form_attachments a
                           join app_public.form_defs fd on fd.id = a.form_def_id
                           join app_public.forms f on f.id = fd.form_id
                           where a.dataset_id = ds.id and f.current_def_id is not null),
    -- Entities counted whatever their state (deleted ones too, as Central).
    'num_entities', (select app_hidden.total_recent(count(*), count(*) filter (where e.created_at >= cutoff.at))
                     from app_public.entities e cross join cutoff where e.dataset_id = ds.id),
    -- entity.error events of submissions whose current version's form writes to this dataset.
    'num_failed_entities', (select app_hidden.total_recent(count(*), count(*) filter (where a.logged_at >= cutoff.at))
                            from app_public.audits a cross join cutoff
                            join app_public.submission_defs sd on sd.submission_id = (a.details->>'submissionId')::int and sd.current
                            join app_public.dataset_form_defs x on x.form_def_id = sd.form_def_id and x.dataset_id = ds.id
                            where a.action = 'entity.error'),
    'num_entity_updates', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                           from entity_events where action = 'entity.update.version'),
    'num_entity_updates_sub', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                               from entity_events where action = 'entity.update.version' and from_submission),
    'num_entity_updates_api', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                               from entity_events where action = 'entity.update.version' and not from_submission),
    'num_entities_updated', (select app_hidden.total_recent(count(e.updated_at), count(*) filter (where e.updated_at >= cutoff.at))
                             from app_public.entities e cross join cutoff where e.dataset_id = ds.id),
    -- Entities that ever had a conflicting version, and those of them whose conflict is resolved now.
    'num_entity_conflicts', (select count(*) from app_public.entities e where e.dataset_id = ds.id
                               and exists (select 1 from app_public.entity_defs d where d.entity_id = e.id and d.conflicting_properties is not null)),
    'num_entity_conflicts_resolved', (select count(*) from app_public.entities e where e.dataset_id = ds.id and e.conflict is null
                                        and exists (select 1 from app_public.entity_defs d where d.entity_id = e.id and d.conflicting_properties is not null)),
    'num_bulk_create_events', (select app_hidden.total_recent(count(*), count(*) filter (where recent)) from bulk_events),
    'biggest_bulk_upload', (select coalesce(max(size), 0) from bulk_events),
    'num_entity_creates_sub', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                               from entity_events where action = 'entity.create' and from_submission),
    'num_entity_creates_api', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                               from entity_events where action = 'entity.create' and not from_submission),
    -- Entities a bulk upload created (their first version came from that upload).
    'num_entity_creates_bulk', (select app_hidden.total_recent(count(*), count(*) filter (where b.recent))
                                from bulk_events b
                                join app_public.entity_defs d on d.source_id = b.source_id and d.root
                                join app_public.entities e on e.id = d.entity_id and e.dataset_id = ds.id))
  from cutoff
$$;
comment on function app_hidden.analytics_dataset(app_public.datasets) is 'Usage report: one dataset''s metrics (properties, entities, creation/follow-up forms, failures, updates, conflicts, creates by source, bulk uploads).';

create function app_hidden.analytics_project_datasets(project int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  -- Published datasets (deleted ones too, as Central's query), most recently active first as Central orders them.
  select coalesce(jsonb_agg(m order by (m->'num_entities'->>'recent')::int desc, (m->>'id')::int), '[]')
  from (select app_hidden.analytics_dataset(ds) as m from app_public.datasets ds
        where ds.project_id = project and ds.published_at is not null) x
$$;
comment on function app_hidden.analytics_project_datasets(int) is 'Usage report: the metrics of each published dataset of a project.';

create or replace function app_hidden.analytics_project_extras(project_id int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'users', app_hidden.analytics_project_users_extras(project_id),
    'forms', app_hidden.analytics_project_forms(project_id),
    'submissions', app_hidden.analytics_project_submissions(project_id),
    'datasets', app_hidden.analytics_project_datasets(project_id))
$$;
comment on function app_hidden.analytics_project_extras(int) is 'Usage report project metrics about forms, submissions and datasets (users/forms/submissions/datasets parts), from real data.';

/* Client audits (Central's isClientAudit): the attachment a submission version names in /meta/audit, when its
 * form version binds that field as binary. */
create function app_hidden.client_audit_attachments()
returns setof app_public.submission_attachments
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select a.* from app_public.submission_attachments a
  join app_public.submission_defs sd on sd.id = a.submission_def_id
  where a.name = sd.data #>> '{meta,audit}'
    and exists (select 1 from app_public.form_fields ff
                where ff.form_def_id = sd.form_def_id and ff.path = '/meta/audit' and ff.type = 'binary')
$$;
comment on function app_hidden.client_audit_attachments() is 'Submission attachments that are client audit logs (the file named by a binary /meta/audit field).';

create function app_hidden.csv_data_rows(content bytea) returns int
language sql immutable set search_path = pg_catalog, pg_temp
as $$
  -- Non-empty lines after the header; the escape encoding keeps newlines and never fails on odd bytes.
  select greatest(count(*) - 1, 0)::int
  from regexp_split_to_table(encode(content, 'escape'), E'\r?\n') line
  where line <> ''
$$;
comment on function app_hidden.csv_data_rows(bytea) is 'How many data rows a CSV file has (non-empty lines after the header; a quoted newline counts as a row break).';

create or replace function app_hidden.analytics_system_extras() returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with backlog as (
    select count(*) filter (where action = 'submission.backlog.reprocess') as reprocessed,
           count(*) filter (where action = 'submission.backlog.force') as forced
    from app_public.audits where action in ('submission.backlog.reprocess', 'submission.backlog.force')
  ),
  -- How long after its submission arrived a version made from it was written (Fieldbase processes submissions
  -- in a job and does not mark the submission.create audit processed, so the entity version's time stands in
  -- for Central's audit "processed" time).
  submission_delays as (
    select ed.created_at - au.logged_at as delay
    from app_public.entity_defs ed
    join app_public.entity_def_sources src on src.id = ed.source_id and src.type = 'submission'
    join app_public.audits au on au.action = 'submission.create' and (au.details->>'submissionDefId')::int = src.submission_def_id
  ),
  -- Entity versions in order, with the branch of the version before (for interrupted offline branches).
  ordered_versions as (
    select entity_id, version, branch_id, lag(branch_id) over (partition by entity_id order by version) as previous_branch
    from app_public.entity_defs
  ),
  branch_runs as (
    select entity_id, branch_id from ordered_versions
    where branch_id is not null and (version = 1 or branch_id is distinct from previous_branch)
  ),
  client_audits as (select * from app_hidden.client_audit_attachments())
  select jsonb_build_object(
    -- Fields of the biggest form version, groups and repeats not counted (meta/instanceID is); null without forms.
    'num_questions_biggest_form', (select max(n) from (select count(*) as n from app_public.form_fields
                                                       where type not in ('structure', 'repeat') group by form_def_id) x),
    -- Central counts the rows of its GeoJSON extraction cache per form and geo field. Fieldbase has no cache
    -- (GeoJSON is computed on request), so this counts what that cache would hold once every form's GeoJSON was
    -- asked for: current versions of live submissions with a value in each geo field outside repeats.
    'max_geo_per_form', (select coalesce(max(n), 0) from (
                           select count(*) as n
                           from app_public.submission_defs sd
                           join app_public.submissions s on s.id = sd.submission_id and s.deleted_at is null
                           join app_public.form_fields ff on ff.form_def_id = sd.form_def_id
                             and ff.type in ('geopoint', 'geotrace', 'geoshape')
                           where sd.current
                             and not exists (select 1 from app_public.form_fields r where r.form_def_id = ff.form_def_id
                                               and r.type = 'repeat' and ff.path like r.path || '/%')
                             and nullif(trim(sd.data #>> string_to_array(substr(ff.path, 2), '/')), '') is not null
                           group by sd.form_id, ff.path) x),
    'num_client_audit_attachments', (select count(*) from client_audits where blob_id is not null),
    -- Client audit uploads whose processing failed five times. Fieldbase does not process submission.attachment.update
    -- audits in the background (client audit files are kept as uploaded), so none ever fail: 0 in practice.
    'num_client_audit_attachments_failures', (select count(*) from app_public.audits au
                                              where au.action = 'submission.attachment.update' and au.processed is null
                                                and au.failures >= 5
                                                and exists (select 1 from client_audits ca
                                                            where ca.submission_def_id = (au.details->>'submissionDefId')::int
                                                              and ca.name = au.details->>'name')),
    -- Central parses client audit CSVs into rows (once per file content); Fieldbase keeps the files, so this
    -- counts the data lines of each distinct client audit file.
    'num_client_audit_rows', (select coalesce(sum(app_hidden.csv_data_rows(b.content)), 0)
                              from app_public.blobs b
                              where b.id in (select blob_id from client_audits where blob_id is not null)),
    -- Offline branches with a real multi-step offline operation (a version based on more than the trunk).
    'num_offline_entity_branches', (select count(distinct branch_id) from app_public.entity_defs
                                    where branch_id is not null and (trunk_version is null or branch_base_version > trunk_version)),
    -- Branches another branch interrupted (e.g. versions from branches a, a, b, a).
    'num_offline_entity_interrupted_branches', (select count(*) from (select 1 from branch_runs
                                                                     group by entity_id, branch_id having count(*) > 1) x),
    'num_offline_entity_submissions_reprocessed', (select reprocessed from backlog),
    'num_offline_entity_submissions_force_processed', (select forced from backlog),
    -- Null without any entity made from a submission, as Central's max/avg over nothing.
    'max_entity_submission_delay', (select app_hidden.seconds(max(delay)) from submission_delays),
    'avg_entity_submission_delay', (select app_hidden.seconds(avg(delay)) from submission_delays),
    -- The longest time between the first and last version of one entity in one offline branch.
    'max_entity_branch_delay', (select coalesce(app_hidden.seconds(max(age(last_at, first_at))), 0)
                                from (select max(created_at) as last_at, min(created_at) as first_at from app_public.entity_defs
                                      where branch_id is not null group by branch_id, entity_id) x),
    'num_owner_only_datasets', (select count(*) from app_public.datasets where owner_only),
    -- Form versions uploaded as XForms (no XLSForm) and not encrypted ('[upgrade]' versions are Central's
    -- automatic entity-spec upgrades, which Fieldbase does not make; the filter is kept for the same meaning).
    'num_xml_only_form_defs', (select count(*) from app_public.form_defs
                               where xls_blob_id is null and key_id is null and version not like '%[upgrade]%'),
    'num_blob_files', (select count(*) from app_public.blobs),
    -- Fieldbase keeps every blob in PostgreSQL: it has no S3 blob store, so none is ever uploaded there.
    'num_blob_files_on_s3', 0,
    'num_datasets_with_geometry', (select count(distinct dataset_id) from app_public.ds_properties where name = 'geometry'))
$$;
comment on function app_hidden.analytics_system_extras() is 'Usage report system metrics about forms, submissions, client audits, offline entities, datasets and blobs, from real data.';

create or replace function app_hidden.analytics_role_users(project app_public.projects, role_system text) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.total_recent(count(*), count(*) filter (where app_hidden.actor_recently_active(u.actor_id)))
  from app_public.assignments s
  join app_public.roles r on r.id = s.role_id and r.system = role_system
  join app_public.users u on u.actor_id = s.actor_id
  where s.actee_id = project.actee_id
$$;

create or replace function app_hidden.analytics_project(project app_public.projects) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with extras as (select app_hidden.analytics_project_extras(project.id) as x)
  select jsonb_build_object(
    'id', project.id,
    'users', jsonb_build_object(
      'num_managers', app_hidden.analytics_role_users(project, 'manager'),
      'num_viewers', app_hidden.analytics_role_users(project, 'viewer'),
      'num_data_collectors', app_hidden.analytics_role_users(project, 'formfill'),
      -- An App User is recent when it submitted within the window.
      'num_app_users', (select app_hidden.total_recent(count(*), count(*) filter (where exists (
                           select 1 from app_public.audits au where au.actor_id = f.actor_id
                             and au.action = 'submission.create' and au.logged_at >= app_hidden.recent_cutoff())))
                        from app_public.field_keys f join app_public.actors a on a.id = f.actor_id
                        where f.project_id = project.id and a.deleted_at is null)
    ) || (x->'users'),
    'forms', x->'forms',
    'submissions', x->'submissions',
    'other', jsonb_build_object('description_length', coalesce(length(trim(project.description)), 0)),
    'datasets', x->'datasets')
  from extras
$$;

drop function if exists app_public.analytics_preview() cascade;
create function app_public.analytics_preview() returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  cutoff timestamptz := app_hidden.recent_cutoff();
  system jsonb;
begin
  perform app_hidden.assert_can('analytics.read', '*');
  select jsonb_build_object(
    'num_admins', (select app_hidden.total_recent(count(distinct u.actor_id),
                     count(distinct u.actor_id) filter (where app_hidden.actor_recently_active(u.actor_id)))
                   from app_public.users u join app_public.assignments s on s.actor_id = u.actor_id
                   where s.role_id = 1 and s.actee_id = '*' and not u.deleted),
    'num_projects_encryption', (select app_hidden.total_recent(count(key_id), 0) from app_public.projects where deleted_at is null),
    'num_audit_log_entries', (select app_hidden.total_recent(count(*), count(*) filter (where logged_at >= cutoff)) from app_public.audits),
    'num_archived_projects', (select count(*) from app_public.projects where archived and deleted_at is null),
    'num_unique_managers', (select count(distinct s.actor_id) from app_public.assignments s join app_public.roles r on r.id = s.role_id where r.system = 'manager'),
    'num_unique_viewers', (select count(distinct s.actor_id) from app_public.assignments s join app_public.roles r on r.id = s.role_id where r.system = 'viewer'),
    'num_unique_collectors', (select count(distinct s.actor_id) from app_public.assignments s join app_public.roles r on r.id = s.role_id where r.system = 'formfill'),
    'database_size', pg_database_size(current_database()),
    'uses_external_db', case when inet_server_addr() is null or host(inet_server_addr()) in ('127.0.0.1', '::1') then 0 else 1 end,
    'uses_external_blob_store', 0,
    'sso_enabled', 0,
    'num_audits_failed', (select count(*) from app_public.audits where failures > 0),
    'num_audits_failed5', (select count(*) from app_public.audits where processed is null and failures >= 5),
    -- Only actions the worker processes can be unprocessed.
    'num_audits_unprocessed', (select count(*) from app_public.audits where processed is null and failures < 5
                                 and logged_at < now() - interval '1 day'
                                 and action in ('submission.attachment.update', 'form.create', 'form.update.draft.set', 'form.update.publish')),
    'num_reset_failed_to_pending_count', (select count(*) from app_public.audits where action = 'blobs.s3.failed-to-pending'),
    'num_entity_bulk_deletes', (select app_hidden.total_recent(count(*), count(*) filter (where logged_at >= cutoff))
                                from app_public.audits where action = 'entity.bulk.delete')
  ) || app_hidden.analytics_system_extras() into system;
  return jsonb_build_object(
    'system', system,
    'projects', coalesce((select jsonb_agg(app_hidden.analytics_project(p) order by p.id)
                          from app_public.projects p where p.deleted_at is null), '[]'));
end
$$;
comment on function app_public.analytics_preview() is 'The usage report Central would send now: system-wide and per-project metrics (analytics.read).';

grant execute on function app_public.analytics_preview() to fieldbase_request;

--! split: 60-dba-views.sql
/*
 * SQL for people: every published form gets a typed view of its submissions in schema form_data
 * (and one per repeat), rebuilt when a new version is published. The views are security invoker,
 * so row-level security applies to whoever queries them: the request role with its actor, or a
 * DBA's login role mapped to an actor (app_public.grant_reader).
 */
drop schema if exists form_data cascade;
create schema form_data;
comment on schema form_data is 'One typed view per published form ("p<project>_<xmlFormId>") and per repeat ("…__<repeat path>"); rows follow the viewer''s rights.';

do $$
begin
  if not exists (select from pg_roles where rolname = 'fieldbase_reader') then
    create role fieldbase_reader nologin;
  end if;
end
$$;
comment on role fieldbase_reader is 'Read-only access to form_data views for DBA login roles mapped to an actor.';
grant usage on schema form_data, app_public, app_hidden to fieldbase_reader;
grant usage on schema form_data to fieldbase_request;

/* Which actor does a DBA's login act as? */
drop table if exists app_private.reader_roles cascade;
create table app_private.reader_roles (
  role_name name primary key,
  actor_id int not null references app_public.actors (id)
);
comment on table app_private.reader_roles is 'Database login roles (DBAs, BI tools) and the Fieldbase actor whose rights they read with.';

/*
 * The actor of this transaction: a mapped login role always acts as its actor (it cannot claim another
 * by setting fieldbase.actor_id); the server's authenticator (and the owner, for tools and tests) set it
 * per transaction; anyone else is nobody.
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
grant execute on function app_hidden.current_actor_id() to fieldbase_reader;
grant execute on function app_hidden.actor_can(text, text), app_hidden.can_on_actor(text, int) to fieldbase_reader;

drop function if exists app_public.grant_reader(name, text);
create function app_public.grant_reader(login_role name, user_email text) returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  target int;
begin
  select actor_id into target from app_public.users where email = user_email::public.citext and not deleted;
  if target is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  execute format('grant fieldbase_reader to %I', login_role);
  insert into app_private.reader_roles (role_name, actor_id) values (login_role, target)
    on conflict (role_name) do update set actor_id = excluded.actor_id;
end
$$;
comment on function app_public.grant_reader(name, text) is 'Owner-only: lets a database login role read form_data (and app_public) with the rights of the user with this email.';
revoke execute on function app_public.grant_reader(name, text) from public;

/* Typed readings of submission text: a value that does not fit its type reads as null, never an error. Whole
 * numbers, decimals, booleans and dateTimes read as in the OData feeds (app_hidden.odata_int, odata_decimal,
 * odata_boolean, odata_timestamptz in migrations/current/30-odata.sql); dates take the first yyyy-mm-dd. */
drop function if exists app_hidden.as_bigint(text) cascade;
drop function if exists app_hidden.as_numeric(text) cascade;
drop function if exists app_hidden.as_boolean(text) cascade;
drop function if exists app_hidden.as_timestamptz(text) cascade;

create or replace function app_hidden.as_date(v text) returns date
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
  return case when v ~ '^\s*\d{4}-\d\d-\d\d' then substring(v from '\d{4}-\d\d-\d\d')::date end;
exception when others then
  return null;
end
$$;

create or replace function app_hidden.as_geojson(v text, kind text) returns jsonb
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  -- ODK geo text: "lat lon [alt [accuracy]]" points, separated by ';' in traces and shapes.
  with points as (
    select ord, string_to_array(trim(p), ' ') as parts
    from unnest(string_to_array(trim(v), ';')) with ordinality as t(p, ord)
    where trim(p) <> ''
  ), coords as (
    select ord, jsonb_build_array(app_hidden.odata_decimal(parts[2]), app_hidden.odata_decimal(parts[1]))
             || case when app_hidden.odata_decimal(parts[3]) is not null
                     then jsonb_build_array(app_hidden.odata_decimal(parts[3])) else '[]'::jsonb end as xy,
           app_hidden.odata_decimal(parts[1]) is not null and app_hidden.odata_decimal(parts[2]) is not null as ok
    from points
  )
  select case
    when v is null or trim(v) = '' or exists (select 1 from coords where not ok) or not exists (select 1 from coords) then null
    when kind = 'geopoint' then jsonb_build_object('type', 'Point', 'coordinates', (select xy from coords order by ord limit 1))
    when kind = 'geotrace' then jsonb_build_object('type', 'LineString', 'coordinates', (select jsonb_agg(xy order by ord) from coords))
    else jsonb_build_object('type', 'Polygon', 'coordinates', jsonb_build_array((select jsonb_agg(xy order by ord) from coords)))
  end
$$;
comment on function app_hidden.as_geojson(text, text) is 'ODK geopoint/geotrace/geoshape text as GeoJSON (lon, lat[, alt]); null when malformed.';

grant execute on function app_hidden.as_date(text), app_hidden.as_geojson(text, text) to fieldbase_request, fieldbase_reader;

create or replace function app_hidden.typed_field_sql(source text, f app_public.form_fields) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  -- source is a jsonb expression of the element the field's path is relative to.
  select case
    when f.select_multiple then format('string_to_array(nullif(%s, ''''), '' '')', source)
    when f.type = 'int' then format('app_hidden.odata_int(%s)', source)
    when f.type = 'decimal' then format('app_hidden.odata_decimal(%s)', source)
    when f.type = 'boolean' then format('app_hidden.odata_boolean(%s)', source)
    when f.type = 'date' then format('app_hidden.as_date(%s)', source)
    when f.type = 'dateTime' then format('app_hidden.odata_timestamptz(%s)', source)
    when f.type in ('geopoint', 'geotrace', 'geoshape') then format('app_hidden.as_geojson(%s, %L)', source, f.type)
    else source
  end
$$;

drop table if exists app_private.form_views cascade;
create table app_private.form_views (
  form_id int not null,
  view_name name not null,
  primary key (form_id, view_name)
);
comment on table app_private.form_views is 'The form_data views each form currently has, so a new version can replace them.';

create or replace function app_hidden.view_name(base text, suffix text default null) returns name
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  -- PostgreSQL names are at most 63 bytes: long ones keep a readable prefix and a hash.
  select case when octet_length(n) <= 63 then n
              else left(n, 50) || '_' || left(md5(n), 12) end::name
  from (select base || coalesce('__' || suffix, '') as n) x
$$;

create or replace function app_hidden.drop_form_views(target int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v name;
begin
  for v in select view_name from app_private.form_views where form_id = target loop
    execute format('drop view if exists form_data.%I cascade', v);
  end loop;
  delete from app_private.form_views where form_id = target;
end
$$;

create or replace function app_hidden.refresh_form_views(target int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms;
  base text;
  rep record;
  fld app_public.form_fields;
  cols text;
  joins text;
  parent_key text;
  rel text;
  vname name;
  depth int;
  prefix text;
  levels text[];
  i int;
begin
  perform app_hidden.drop_form_views(target);
  select * into f from app_public.forms where id = target;
  if f is null or f.current_def_id is null or f.deleted_at is not null then
    return;
  end if;
  base := 'p' || f.project_id || '_' || f.xml_form_id;

  -- One view per table: the submission root ('' ) and each repeat, by path.
  for rep in
    select '' as path
    union all
    select path from app_public.form_fields where form_def_id = f.current_def_id and type = 'repeat'
    order by 1
  loop
    levels := array(
      select r.path from app_public.form_fields r
      where r.form_def_id = f.current_def_id and r.type = 'repeat'
        and (rep.path = r.path or rep.path like r.path || '/%')
      order by length(r.path));
    depth := coalesce(array_length(levels, 1), 0);
    joins := '';
    prefix := '';
    for i in 1 .. depth loop
      rel := substr(levels[i], length(prefix) + 2);
      joins := joins || format(' cross join lateral jsonb_array_elements(coalesce(%s #> %L, ''[]'')) with ordinality as r%s(value, n)',
        case when i = 1 then 'x.doc' else 'r' || (i - 1) || '.value' end,
        string_to_array(rel, '/')::text, i);
      prefix := levels[i];
    end loop;

    if depth = 0 then
      cols := 's.instance_id as "__id", s.created_at as "submission_date", d.created_at as "updated_at", '
           || 's.submitter_id as "submitter_id", s.review_state as "review_state", s.device_id as "device_id", '
           || 'fd.version as "form_version", d.instance_name as "instance_name"';
    else
      parent_key := case when depth = 1 then 's.instance_id'
                         else format('s.instance_id || %s', (select string_agg(format('''/'' || r%s.n', j), ' || ') from generate_series(1, depth - 1) j)) end;
      cols := format('s.instance_id || %s as "__id", %s as "__parent_id", s.instance_id as "__submission_id", r%s.n as "__position"',
        (select string_agg(format('''/'' || r%s.n', j), ' || ') from generate_series(1, depth) j), parent_key, depth);
    end if;

    -- Leaf fields that live in this table (not inside a deeper repeat).
    for fld in
      select * from app_public.form_fields x
      where x.form_def_id = f.current_def_id and x.type not in ('repeat', 'structure')
        and (depth = 0 or x.path like prefix || '/%')
        and not exists (
          select 1 from app_public.form_fields r where r.form_def_id = f.current_def_id and r.type = 'repeat'
            and x.path like r.path || '/%' and (depth = 0 or r.path like prefix || '/%'))
      order by x.ord
    loop
      rel := substr(fld.path, length(prefix) + 2);
      cols := cols || format(', %s as %I',
        app_hidden.typed_field_sql(format('(%s #>> %L)', case when depth = 0 then 'x.doc' else 'r' || depth || '.value' end,
                                          string_to_array(rel, '/')::text), fld),
        replace(rel, '/', '_'));
    end loop;

    vname := app_hidden.view_name(base, nullif(replace(substr(rep.path, 2), '/', '_'), ''));
    execute format(
      'create view form_data.%I with (security_invoker = true) as select %s from app_public.submissions s '
      || 'join app_public.submission_defs d on d.submission_id = s.id and d.current '
      || 'join app_public.form_defs fd on fd.id = d.form_def_id '
      -- The data is read once per row (offset 0 keeps the planner from substituting it back into every
      -- column): each separate reference to the stored jsonb would decompress it again.
      || 'cross join lateral (select d.data || ''{}''::jsonb as doc offset 0) x%s '
      || 'where s.form_id = %s and not s.draft and s.deleted_at is null',
      vname, cols, joins, f.id);
    execute format('comment on view form_data.%I is %L', vname,
      format('Submissions of form %s in project %s%s, one column per field (typed); follows the reader''s rights.',
             f.xml_form_id, f.project_id, coalesce(' — repeat ' || nullif(rep.path, ''), '')));
    execute format('grant select on form_data.%I to fieldbase_request, fieldbase_reader', vname);
    insert into app_private.form_views (form_id, view_name) values (f.id, vname);
  end loop;
end
$$;
comment on function app_hidden.refresh_form_views(int) is 'Rebuilds a form''s typed form_data views from its published version''s field schema.';

create or replace function app_hidden.refresh_form_views_on_publish() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.refresh_form_views(new.id);
  return null;
end
$$;

drop trigger if exists refresh_form_views on app_public.forms;
create trigger refresh_form_views
  after insert or update of current_def_id, deleted_at, project_id on app_public.forms
  for each row execute function app_hidden.refresh_form_views_on_publish();

-- Forms published before this migration get their views now.
select app_hidden.refresh_form_views(id) from app_public.forms where current_def_id is not null and deleted_at is null;

/*
 * Readers may select what the request role may select and call its read-only helpers (policies use
 * them), but none of the functions that change data.
 */
do $$
declare
  obj record;
begin
  for obj in
    select c.oid::regclass as rel from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'app_public' and c.relkind in ('r', 'v') and has_table_privilege('fieldbase_request', c.oid, 'select')
  loop
    execute format('grant select on %s to fieldbase_reader', obj.rel);
  end loop;
  for obj in
    select p.oid::regprocedure as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('app_hidden', 'app_public') and p.provolatile in ('s', 'i') and p.prokind = 'f'
      and has_function_privilege('fieldbase_request', p.oid, 'execute')
  loop
    execute format('grant execute on function %s to fieldbase_reader', obj.fn);
  end loop;
end
$$;

--! split: 62-authenticator-grants.sql
/*
 * Resolving credentials happens before any actor is known: the authenticator login may call just the two
 * security-definer functions that do it, in one round trip, without becoming the request role first.
 */
grant usage on schema app_hidden to fieldbase_authenticator;
grant execute on function app_hidden.session_by_token(text), app_hidden.authenticate_password(text, text)
  to fieldbase_authenticator;
