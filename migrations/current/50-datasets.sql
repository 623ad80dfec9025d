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
