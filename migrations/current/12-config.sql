/*
 * Server configuration (Central's configs: analytics, login-appearance, logo, hero-image) and the usage
 * report preview. JSON configs keep a sanitised value; image configs keep their bytes, content type and an
 * ETag. The report's form, submission and dataset metrics come from functions the later work redefines:
 *   app_hidden.analytics_system_extras(), app_hidden.analytics_project_extras(int).
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

/* Metrics needing forms, submissions, datasets: zero until that work redefines these two functions. */
create or replace function app_hidden.analytics_system_extras() returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'num_questions_biggest_form', null, 'max_geo_per_form', 0,
    'num_client_audit_attachments', 0, 'num_client_audit_attachments_failures', 0, 'num_client_audit_rows', 0,
    'num_offline_entity_branches', 0, 'num_offline_entity_interrupted_branches', 0,
    'num_offline_entity_submissions_reprocessed', 0, 'num_offline_entity_submissions_force_processed', 0,
    'max_entity_submission_delay', 0, 'avg_entity_submission_delay', 0, 'max_entity_branch_delay', 0,
    'num_owner_only_datasets', 0, 'num_xml_only_form_defs', 0, 'num_blob_files', 0, 'num_blob_files_on_s3', 0,
    'num_datasets_with_geometry', 0)
$$;
comment on function app_hidden.analytics_system_extras() is 'Usage report system metrics about forms, submissions and datasets; redefined as those exist.';

create or replace function app_hidden.analytics_project_extras(project_id int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'users', jsonb_build_object('num_device_ids', app_hidden.total_recent(0, 0),
                                'num_public_access_links', app_hidden.total_recent(0, 0)),
    'forms', jsonb_build_object(
      'num_forms', app_hidden.total_recent(0, 0), 'num_forms_with_repeats', app_hidden.total_recent(0, 0),
      'num_forms_with_geospatial', app_hidden.total_recent(0, 0), 'num_forms_with_encryption', app_hidden.total_recent(0, 0),
      'num_forms_with_audits', app_hidden.total_recent(0, 0), 'num_forms_webforms_enabled', 0, 'num_reused_form_ids', 0,
      'num_open_forms', app_hidden.total_recent(0, 0), 'num_closing_forms', app_hidden.total_recent(0, 0),
      'num_closed_forms', app_hidden.total_recent(0, 0)),
    'submissions', (select jsonb_object_agg(m, app_hidden.total_recent(0, 0)) from unnest(array[
      'num_submissions_received', 'num_submissions_approved', 'num_submissions_has_issues', 'num_submissions_rejected',
      'num_submissions_edited', 'num_submissions_with_edits', 'num_submissions_with_comments',
      'num_submissions_from_app_users', 'num_submissions_from_public_links', 'num_submissions_from_web_users']) m),
    'datasets', '[]'::jsonb)
$$;
comment on function app_hidden.analytics_project_extras(int) is 'Usage report project metrics about forms, submissions and datasets (users/forms/submissions/datasets parts); redefined as those exist.';

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

grant execute on function
  app_hidden.config_kind(text), app_hidden.config_is_public(text), app_public.set_config_value(text, jsonb),
  app_public.set_config_blob(text, bytea, text), app_public.unset_config(text), app_public.analytics_preview()
to fieldbase_request;
