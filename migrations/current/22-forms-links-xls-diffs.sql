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
