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
