/*
 * Submission geodata as GeoJSON (…/submissions.geojson, …/submissions/:instanceId.geojson and per version),
 * computed from the structured data stored at ingestion: ODK's geopoint ("lat lon [alt [acc]]"), geotrace
 * (points joined by ';') and geoshape (a closed trace) become Point, LineString and Polygon with [lon, lat(, alt)]
 * coordinates; values that are not valid coordinates give no geometry. The field is the one asked for, or the
 * form version's first geo field outside any repeat.
 */
drop function if exists app_hidden.odk_geometry(text, text) cascade;
drop function if exists app_hidden.odk_coordinates(text) cascade;
drop function if exists app_hidden.submission_geometry(int, jsonb, text) cascade;

create function app_hidden.odk_coordinates(point text) returns jsonb
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  parts text[] := regexp_split_to_array(trim(point), '\s+');
  lat numeric;
  lon numeric;
begin
  if array_length(parts, 1) not between 2 and 4
     or exists (select 1 from unnest(parts) p where p !~ '^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$') then
    return null;
  end if;
  lat := parts[1]::numeric;
  lon := parts[2]::numeric;
  if lat not between -90 and 90 or lon not between -180 and 180 then
    return null;
  end if;
  return case when array_length(parts, 1) >= 3 then jsonb_build_array(lon, lat, parts[3]::numeric) else jsonb_build_array(lon, lat) end;
end
$$;
comment on function app_hidden.odk_coordinates(text) is 'One ODK point ("lat lon [alt [acc]]") as GeoJSON coordinates [lon, lat(, alt)], or null when not valid.';

create function app_hidden.odk_geometry(kind text, value text) returns jsonb
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  points jsonb;
  invalid boolean;
begin
  if value is null or trim(value) = '' then
    return null;
  end if;
  if kind = 'geopoint' then
    points := app_hidden.odk_coordinates(value);
    return case when points is null then null else jsonb_build_object('type', 'Point', 'coordinates', points) end;
  end if;
  select jsonb_agg(app_hidden.odk_coordinates(p) order by n), bool_or(app_hidden.odk_coordinates(p) is null)
  into points, invalid
  from unnest(regexp_split_to_array(trim(both ';' from trim(value)), '\s*;\s*')) with ordinality as t(p, n);
  if invalid or points is null then
    return null;
  end if;
  if kind = 'geotrace' then
    return case when jsonb_array_length(points) >= 2 then jsonb_build_object('type', 'LineString', 'coordinates', points) end;
  elsif kind = 'geoshape' then
    if points->0 is distinct from points->-1 then
      points := points || jsonb_build_array(points->0);
    end if;
    return case when jsonb_array_length(points) >= 4 then jsonb_build_object('type', 'Polygon', 'coordinates', jsonb_build_array(points)) end;
  end if;
  return null;
end
$$;
comment on function app_hidden.odk_geometry(text, text) is 'An ODK geopoint/geotrace/geoshape value as a GeoJSON geometry (Point/LineString/Polygon), or null when not valid.';

create function app_hidden.submission_geometry(def_id int, data jsonb, wanted_path text)
returns table (path text, geometry jsonb)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select f.path, app_hidden.odk_geometry(f.type, data #>> string_to_array(substr(f.path, 2), '/'))
  from app_public.form_fields f
  where f.form_def_id = def_id and f.type in ('geopoint', 'geotrace', 'geoshape')
    and (wanted_path is null or f.path = wanted_path)
    and not exists (select 1 from app_public.form_fields r
                    where r.form_def_id = def_id and r.type = 'repeat' and f.path like r.path || '/%')
  order by f.ord
  limit 1
$$;
comment on function app_hidden.submission_geometry(int, jsonb, text) is
  'The geometry of one submission version: of the field at wanted_path, or of its form version''s first geo field outside repeats.';

grant execute on function app_hidden.odk_coordinates(text), app_hidden.odk_geometry(text, text),
  app_hidden.submission_geometry(int, jsonb, text) to fieldbase_request;
