/*
 * OData feeds: the form version a feed reads (with Central's checks), a change stamp for ETags, and the
 * small helpers the server's generated queries use to read typed values out of structured submission data
 * (safe casts that give null instead of failing on a malformed value) and repeat instances.
 */
drop function if exists app_public.odata_form(int, text, boolean) cascade;
drop function if exists app_hidden.odata_stamp(int, boolean) cascade;
drop function if exists app_hidden.odata_actor_name(int) cascade;
drop function if exists app_hidden.odata_instances(jsonb) cascade;
drop function if exists app_hidden.odata_int(text) cascade;
drop function if exists app_hidden.odata_decimal(text) cascade;
drop function if exists app_hidden.odata_boolean(text) cascade;
drop function if exists app_hidden.odata_date(text) cascade;
drop function if exists app_hidden.odata_timestamptz(text) cascade;

create function app_public.odata_form(project int, xml_form text, is_draft boolean default false)
returns table (form_id int, form_def_id int, xml_form_id text, fields jsonb)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'submission.read');
  def_id int := case when is_draft then f.draft_def_id else f.current_def_id end;
begin
  if def_id is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return query select f.id, def_id, f.xml_form_id, coalesce((
    select jsonb_agg(jsonb_build_object('path', ff.path, 'name', ff.name, 'type', ff.type, 'binary', ff.binary,
                                        'selectMultiple', ff.select_multiple) order by ff.ord)
    from app_public.form_fields ff where ff.form_def_id = def_id), '[]'::jsonb);
end
$$;
comment on function app_public.odata_form(int, text, boolean) is
  'The form version an OData service reads (published, or the draft): its id and field schema; 404.1 unknown form or version, 403.1 without submission.read.';

-- plpgsql (not sql) functions where they read tables created by later files (40-submissions.sql).
create function app_hidden.odata_stamp(form int, is_draft boolean) returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return concat_ws('/',
    (select concat_ws(',', count(*), max(s.id), max(s.created_at), max(s.updated_at), max(s.deleted_at), count(s.deleted_at),
                      count(s.review_state), string_agg(distinct s.review_state, ','))
       from app_public.submissions s where s.form_id = form and s.draft = is_draft),
    (select concat_ws(',', max(d.id), count(*)) from app_public.submission_defs d where d.form_id = form),
    (select count(a.blob_id) from app_public.submission_attachments a where a.form_id = form),
    (select max(a.updated_at) from app_public.actors a
      where a.id in (select s.submitter_id from app_public.submissions s where s.form_id = form)));
end
$$;
comment on function app_hidden.odata_stamp(int, boolean) is
  'Changes whenever anything an OData feed of the form shows changes (submissions, versions, reviews, attachments, submitter names): the ETag basis.';

create function app_hidden.odata_actor_name(actor int) returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return (select a.display_name from app_public.actors a where a.id = actor);
end
$$;
comment on function app_hidden.odata_actor_name(int) is 'A submitter''s display name for OData __system/submitterName (shown to whoever may read the submission).';

create function app_hidden.odata_instances(node jsonb) returns jsonb
language sql immutable parallel safe
as $$
  select case jsonb_typeof(node) when 'array' then node when 'object' then jsonb_build_array(node) else '[]'::jsonb end
$$;
comment on function app_hidden.odata_instances(jsonb) is 'A repeat''s instances as a json array, whatever shape the data has (none, one object, an array).';

create function app_hidden.odata_int(value text) returns bigint
language sql immutable parallel safe
as $$ select case when value ~ '^\s*[-+]?\d{1,18}\s*$' then value::bigint end $$;
comment on function app_hidden.odata_int(text) is 'An integer question''s text as bigint, null when it is not one.';

create function app_hidden.odata_decimal(value text) returns numeric
language sql immutable parallel safe
as $$ select case when value ~ '^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$' then value::numeric end $$;
comment on function app_hidden.odata_decimal(text) is 'A decimal question''s text as numeric, null when it is not a number.';

create function app_hidden.odata_boolean(value text) returns boolean
language sql immutable parallel safe
as $$ select case lower(trim(value)) when 'true' then true when '1' then true when 'false' then false when '0' then false end $$;
comment on function app_hidden.odata_boolean(text) is 'A boolean question''s text (true/false/1/0), null otherwise.';

create function app_hidden.odata_date(value text) returns date
language plpgsql immutable parallel safe
as $$
begin
  if value !~ '^\s*\d{4}-\d\d-\d\d' then return null; end if;
  return substring(trim(value) from 1 for 10)::date;
exception when others then
  return null;
end
$$;
comment on function app_hidden.odata_date(text) is 'A date question''s text as date, null when it is not a date.';

create function app_hidden.odata_timestamptz(value text) returns timestamptz
language plpgsql stable parallel safe
as $$
begin
  if value !~ '^\s*\d{4}-\d\d-\d\d' then return null; end if;
  return value::timestamptz;
exception when others then
  return null;
end
$$;
comment on function app_hidden.odata_timestamptz(text) is 'A dateTime question''s text as timestamptz, null when it is not one.';

grant execute on function
  app_public.odata_form(int, text, boolean),
  app_hidden.odata_stamp(int, boolean),
  app_hidden.odata_actor_name(int),
  app_hidden.odata_instances(jsonb),
  app_hidden.odata_int(text),
  app_hidden.odata_decimal(text),
  app_hidden.odata_boolean(text),
  app_hidden.odata_date(text),
  app_hidden.odata_timestamptz(text)
to fieldbase_request;
