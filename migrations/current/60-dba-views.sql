/*
 * SQL for people: every published form gets a typed view of its submissions in schema form_data
 * (and one per repeat), rebuilt when a new version is published. The views are security invoker,
 * so row-level security applies to whoever queries them: the request role with its actor, or a
 * DBA's login role mapped to an actor (app_public.grant_reader).
 */
drop schema if exists form_data cascade;
create schema form_data;
comment on schema form_data is 'One typed view per published form ("p<project>_<xmlFormId>") and per repeat ("…__<repeat path>"); rows follow the viewer''s rights.';

do $$
begin
  if not exists (select from pg_roles where rolname = 'fieldbase_reader') then
    create role fieldbase_reader nologin;
  end if;
end
$$;
comment on role fieldbase_reader is 'Read-only access to form_data views for DBA login roles mapped to an actor.';
grant usage on schema form_data, app_public, app_hidden to fieldbase_reader;
grant usage on schema form_data to fieldbase_request;

/* Which actor does a DBA's login act as? */
drop table if exists app_private.reader_roles cascade;
create table app_private.reader_roles (
  role_name name primary key,
  actor_id int not null references app_public.actors (id)
);
comment on table app_private.reader_roles is 'Database login roles (DBAs, BI tools) and the Fieldbase actor whose rights they read with.';

/*
 * The actor of this transaction: a mapped login role always acts as its actor (it cannot claim another
 * by setting fieldbase.actor_id); the server's authenticator (and the owner, for tools and tests) set it
 * per transaction; anyone else is nobody.
 */
create or replace function app_hidden.current_actor_id() returns int
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  mapped int;
begin
  -- Requests: the server's authenticator sets the actor per transaction.
  if session_user = 'fieldbase_authenticator' then
    return nullif(current_setting('fieldbase.actor_id', true), '')::int;
  end if;
  -- A DBA's login mapped to an actor always acts as that actor.
  select actor_id into mapped from app_private.reader_roles where role_name = session_user;
  if found then
    return mapped;
  end if;
  -- The owner (tools, tests) may set the actor; anyone else is nobody.
  if exists (select 1 from pg_roles r where r.rolname = session_user
             and (r.rolsuper or r.oid = (select datdba from pg_database where datname = current_database()))) then
    return nullif(current_setting('fieldbase.actor_id', true), '')::int;
  end if;
  return null;
end
$$;
grant execute on function app_hidden.current_actor_id() to fieldbase_reader;
grant execute on function app_hidden.actor_can(text, text), app_hidden.can_on_actor(text, int) to fieldbase_reader;

drop function if exists app_public.grant_reader(name, text);
create function app_public.grant_reader(login_role name, user_email text) returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  target int;
begin
  select actor_id into target from app_public.users where email = user_email::public.citext and not deleted;
  if target is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  execute format('grant fieldbase_reader to %I', login_role);
  insert into app_private.reader_roles (role_name, actor_id) values (login_role, target)
    on conflict (role_name) do update set actor_id = excluded.actor_id;
end
$$;
comment on function app_public.grant_reader(name, text) is 'Owner-only: lets a database login role read form_data (and app_public) with the rights of the user with this email.';
revoke execute on function app_public.grant_reader(name, text) from public;

/* Typed readings of submission text: a value that does not fit its type reads as null, never an error. Whole
 * numbers, decimals, booleans and dateTimes read as in the OData feeds (app_hidden.odata_int, odata_decimal,
 * odata_boolean, odata_timestamptz in migrations/current/30-odata.sql); dates take the first yyyy-mm-dd. */
drop function if exists app_hidden.as_bigint(text) cascade;
drop function if exists app_hidden.as_numeric(text) cascade;
drop function if exists app_hidden.as_boolean(text) cascade;
drop function if exists app_hidden.as_timestamptz(text) cascade;

create or replace function app_hidden.as_date(v text) returns date
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
begin
  return case when v ~ '^\s*\d{4}-\d\d-\d\d' then substring(v from '\d{4}-\d\d-\d\d')::date end;
exception when others then
  return null;
end
$$;

create or replace function app_hidden.as_geojson(v text, kind text) returns jsonb
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  -- ODK geo text: "lat lon [alt [accuracy]]" points, separated by ';' in traces and shapes.
  with points as (
    select ord, string_to_array(trim(p), ' ') as parts
    from unnest(string_to_array(trim(v), ';')) with ordinality as t(p, ord)
    where trim(p) <> ''
  ), coords as (
    select ord, jsonb_build_array(app_hidden.odata_decimal(parts[2]), app_hidden.odata_decimal(parts[1]))
             || case when app_hidden.odata_decimal(parts[3]) is not null
                     then jsonb_build_array(app_hidden.odata_decimal(parts[3])) else '[]'::jsonb end as xy,
           app_hidden.odata_decimal(parts[1]) is not null and app_hidden.odata_decimal(parts[2]) is not null as ok
    from points
  )
  select case
    when v is null or trim(v) = '' or exists (select 1 from coords where not ok) or not exists (select 1 from coords) then null
    when kind = 'geopoint' then jsonb_build_object('type', 'Point', 'coordinates', (select xy from coords order by ord limit 1))
    when kind = 'geotrace' then jsonb_build_object('type', 'LineString', 'coordinates', (select jsonb_agg(xy order by ord) from coords))
    else jsonb_build_object('type', 'Polygon', 'coordinates', jsonb_build_array((select jsonb_agg(xy order by ord) from coords)))
  end
$$;
comment on function app_hidden.as_geojson(text, text) is 'ODK geopoint/geotrace/geoshape text as GeoJSON (lon, lat[, alt]); null when malformed.';

grant execute on function app_hidden.as_date(text), app_hidden.as_geojson(text, text) to fieldbase_request, fieldbase_reader;

create or replace function app_hidden.typed_field_sql(source text, f app_public.form_fields) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  -- source is a jsonb expression of the element the field's path is relative to.
  select case
    when f.select_multiple then format('string_to_array(nullif(%s, ''''), '' '')', source)
    when f.type = 'int' then format('app_hidden.odata_int(%s)', source)
    when f.type = 'decimal' then format('app_hidden.odata_decimal(%s)', source)
    when f.type = 'boolean' then format('app_hidden.odata_boolean(%s)', source)
    when f.type = 'date' then format('app_hidden.as_date(%s)', source)
    when f.type = 'dateTime' then format('app_hidden.odata_timestamptz(%s)', source)
    when f.type in ('geopoint', 'geotrace', 'geoshape') then format('app_hidden.as_geojson(%s, %L)', source, f.type)
    else source
  end
$$;

drop table if exists app_private.form_views cascade;
create table app_private.form_views (
  form_id int not null,
  view_name name not null,
  primary key (form_id, view_name)
);
comment on table app_private.form_views is 'The form_data views each form currently has, so a new version can replace them.';

create or replace function app_hidden.view_name(base text, suffix text default null) returns name
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  -- PostgreSQL names are at most 63 bytes: long ones keep a readable prefix and a hash.
  select case when octet_length(n) <= 63 then n
              else left(n, 50) || '_' || left(md5(n), 12) end::name
  from (select base || coalesce('__' || suffix, '') as n) x
$$;

create or replace function app_hidden.drop_form_views(target int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v name;
begin
  for v in select view_name from app_private.form_views where form_id = target loop
    execute format('drop view if exists form_data.%I cascade', v);
  end loop;
  delete from app_private.form_views where form_id = target;
end
$$;

create or replace function app_hidden.refresh_form_views(target int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms;
  base text;
  rep record;
  fld app_public.form_fields;
  cols text;
  joins text;
  parent_key text;
  rel text;
  vname name;
  depth int;
  prefix text;
  levels text[];
  i int;
begin
  perform app_hidden.drop_form_views(target);
  select * into f from app_public.forms where id = target;
  if f is null or f.current_def_id is null or f.deleted_at is not null then
    return;
  end if;
  base := 'p' || f.project_id || '_' || f.xml_form_id;

  -- One view per table: the submission root ('' ) and each repeat, by path.
  for rep in
    select '' as path
    union all
    select path from app_public.form_fields where form_def_id = f.current_def_id and type = 'repeat'
    order by 1
  loop
    levels := array(
      select r.path from app_public.form_fields r
      where r.form_def_id = f.current_def_id and r.type = 'repeat'
        and (rep.path = r.path or rep.path like r.path || '/%')
      order by length(r.path));
    depth := coalesce(array_length(levels, 1), 0);
    joins := '';
    prefix := '';
    for i in 1 .. depth loop
      rel := substr(levels[i], length(prefix) + 2);
      joins := joins || format(' cross join lateral jsonb_array_elements(coalesce(%s #> %L, ''[]'')) with ordinality as r%s(value, n)',
        case when i = 1 then 'x.doc' else 'r' || (i - 1) || '.value' end,
        string_to_array(rel, '/')::text, i);
      prefix := levels[i];
    end loop;

    if depth = 0 then
      cols := 's.instance_id as "__id", s.created_at as "submission_date", d.created_at as "updated_at", '
           || 's.submitter_id as "submitter_id", s.review_state as "review_state", s.device_id as "device_id", '
           || 'fd.version as "form_version", d.instance_name as "instance_name"';
    else
      parent_key := case when depth = 1 then 's.instance_id'
                         else format('s.instance_id || %s', (select string_agg(format('''/'' || r%s.n', j), ' || ') from generate_series(1, depth - 1) j)) end;
      cols := format('s.instance_id || %s as "__id", %s as "__parent_id", s.instance_id as "__submission_id", r%s.n as "__position"',
        (select string_agg(format('''/'' || r%s.n', j), ' || ') from generate_series(1, depth) j), parent_key, depth);
    end if;

    -- Leaf fields that live in this table (not inside a deeper repeat).
    for fld in
      select * from app_public.form_fields x
      where x.form_def_id = f.current_def_id and x.type not in ('repeat', 'structure')
        and (depth = 0 or x.path like prefix || '/%')
        and not exists (
          select 1 from app_public.form_fields r where r.form_def_id = f.current_def_id and r.type = 'repeat'
            and x.path like r.path || '/%' and (depth = 0 or r.path like prefix || '/%'))
      order by x.ord
    loop
      rel := substr(fld.path, length(prefix) + 2);
      cols := cols || format(', %s as %I',
        app_hidden.typed_field_sql(format('(%s #>> %L)', case when depth = 0 then 'x.doc' else 'r' || depth || '.value' end,
                                          string_to_array(rel, '/')::text), fld),
        replace(rel, '/', '_'));
    end loop;

    vname := app_hidden.view_name(base, nullif(replace(substr(rep.path, 2), '/', '_'), ''));
    execute format(
      'create view form_data.%I with (security_invoker = true) as select %s from app_public.submissions s '
      || 'join app_public.submission_defs d on d.submission_id = s.id and d.current '
      || 'join app_public.form_defs fd on fd.id = d.form_def_id '
      -- The data is read once per row (offset 0 keeps the planner from substituting it back into every
      -- column): each separate reference to the stored jsonb would decompress it again.
      || 'cross join lateral (select d.data || ''{}''::jsonb as doc offset 0) x%s '
      || 'where s.form_id = %s and not s.draft and s.deleted_at is null',
      vname, cols, joins, f.id);
    execute format('comment on view form_data.%I is %L', vname,
      format('Submissions of form %s in project %s%s, one column per field (typed); follows the reader''s rights.',
             f.xml_form_id, f.project_id, coalesce(' — repeat ' || nullif(rep.path, ''), '')));
    execute format('grant select on form_data.%I to fieldbase_request, fieldbase_reader', vname);
    insert into app_private.form_views (form_id, view_name) values (f.id, vname);
  end loop;
end
$$;
comment on function app_hidden.refresh_form_views(int) is 'Rebuilds a form''s typed form_data views from its published version''s field schema.';

create or replace function app_hidden.refresh_form_views_on_publish() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.refresh_form_views(new.id);
  return null;
end
$$;

drop trigger if exists refresh_form_views on app_public.forms;
create trigger refresh_form_views
  after insert or update of current_def_id, deleted_at, project_id on app_public.forms
  for each row execute function app_hidden.refresh_form_views_on_publish();

-- Forms published before this migration get their views now.
select app_hidden.refresh_form_views(id) from app_public.forms where current_def_id is not null and deleted_at is null;

/*
 * Readers may select what the request role may select and call its read-only helpers (policies use
 * them), but none of the functions that change data.
 */
do $$
declare
  obj record;
begin
  for obj in
    select c.oid::regclass as rel from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'app_public' and c.relkind in ('r', 'v') and has_table_privilege('fieldbase_request', c.oid, 'select')
  loop
    execute format('grant select on %s to fieldbase_reader', obj.rel);
  end loop;
  for obj in
    select p.oid::regprocedure as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('app_hidden', 'app_public') and p.provolatile in ('s', 'i') and p.prokind = 'f'
      and has_function_privilege('fieldbase_request', p.oid, 'execute')
  loop
    execute format('grant execute on function %s to fieldbase_reader', obj.fn);
  end loop;
end
$$;
