/*
 * Foundation fixes: grants for the lookup helpers routes call, and a user search that returns
 * the actor columns too (so an exact-email match is visible to those who cannot read users).
 */
grant execute on function app_hidden.live_user(int), app_hidden.actee_of(int) to fieldbase_request;

drop function if exists app_public.search_users(text);
create function app_public.search_users(q text)
returns table (id int, type text, display_name text, created_at timestamptz, updated_at timestamptz,
               deleted_at timestamptz, email text, last_login_at timestamptz)
language plpgsql stable security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  -- Anyone signed in may find a user by exact email (to assign them); only user.list may search or list.
  if app_hidden.actor_can('user.list', '*') then
    return query
      select a.id, a.type, a.display_name, a.created_at, a.updated_at, a.deleted_at, u.email::text, u.last_login_at
      from app_public.users u join app_public.actors a on a.id = u.actor_id
      where not u.deleted and (coalesce(q, '') = '' or u.email = q::citext or u.email::text % q or a.display_name % q
                               or u.email::text ilike '%' || q || '%' or a.display_name ilike '%' || q || '%')
      order by case when coalesce(q, '') = '' then 0
                    else -greatest(similarity(u.email::text, q), similarity(a.display_name, q)) end,
               a.display_name, a.id;
  elsif app_hidden.current_actor_id() is not null and q is not null then
    return query
      select a.id, a.type, a.display_name, a.created_at, a.updated_at, a.deleted_at, u.email::text, u.last_login_at
      from app_public.users u join app_public.actors a on a.id = u.actor_id
      where u.email = q::citext and not u.deleted;
  end if;
end
$$;
comment on function app_public.search_users(text) is 'Lists users (user.list), by trigram similarity when q is given; exact-email lookups for everyone signed in.';
grant execute on function app_public.search_users(text) to fieldbase_request;

create or replace function app_hidden.role_by_ref(ref text) returns app_public.roles
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  r app_public.roles;
begin
  -- The cast sits inside a case: SQL does not promise to evaluate `and` left to right.
  select * into r from app_public.roles
  where id = case when ref ~ '^\d{1,9}$' then ref::int end or system = ref;
  if r is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return r;
end
$$;
