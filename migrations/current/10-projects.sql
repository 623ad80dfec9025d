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
