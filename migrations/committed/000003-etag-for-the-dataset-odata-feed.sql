--! Previous: sha1:73ab52264e7d8ef8f51ee0d89d083e19323fda9f
--! Hash: sha1:fc72a458fa91e32be43be53163cd4b197809055d
--! Message: ETag for the dataset OData feed

--! split: 1-current.sql
-- Enter migration here

--! split: 10-odata-entities-etag.sql
-- The ETag basis of a dataset's OData feed (…/datasets/<name>.svc/Entities), as odata_stamp is for a form's.
drop function if exists app_hidden.odata_dataset_stamp(int) cascade;

create function app_hidden.odata_dataset_stamp(dataset int) returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return concat_ws('/',
    (select concat_ws(',', count(*), max(e.id), max(e.created_at), max(e.updated_at), max(e.deleted_at), count(e.deleted_at),
                      count(*) filter (where e.conflict = 'soft'), count(*) filter (where e.conflict = 'hard'))
       from app_public.entities e where e.dataset_id = dataset),
    (select concat_ws(',', max(x.id), count(*))
       from app_public.entity_defs x join app_public.entities e on e.id = x.entity_id where e.dataset_id = dataset),
    (select string_agg(p.name, ',' order by p.id) from app_public.ds_properties p where p.dataset_id = dataset),
    (select max(a.updated_at) from app_public.actors a
      where a.id in (select e.creator_id from app_public.entities e where e.dataset_id = dataset)));
end
$$;
comment on function app_hidden.odata_dataset_stamp(int) is
  'Changes whenever anything the OData Entities feed of the dataset shows changes (entities, versions, deletions, conflicts, properties, creator names): the ETag basis.';

grant execute on function app_hidden.odata_dataset_stamp(int) to fieldbase_request;
