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
