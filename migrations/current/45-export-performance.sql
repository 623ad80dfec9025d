/*
 * Set-based helpers for exports and OData feeds: the display names of a form's submitters, read once per
 * statement (a materialized CTE joined by id) instead of one security-definer function call per row.
 */
drop function if exists app_hidden.form_submitter_names(int) cascade;
create function app_hidden.form_submitter_names(form int) returns table (id int, display_name text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select a.id, a.display_name from app_public.actors a
  where a.id in (select s.submitter_id from app_public.submissions s where s.form_id = form)
    and app_hidden.actor_can('submission.read', (select f.actee_id from app_public.forms f where f.id = form))
$$;
comment on function app_hidden.form_submitter_names(int) is
  'Id and display name of everyone who submitted to a form, for readers of its submissions (submission.read), else nothing: exports and OData join it once per query.';
grant execute on function app_hidden.form_submitter_names(int) to fieldbase_request;
