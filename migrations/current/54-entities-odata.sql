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
