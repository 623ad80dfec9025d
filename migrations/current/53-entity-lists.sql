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
