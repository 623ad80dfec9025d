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
