/*
 * Ingestion without rebuilding the form's schema per request: step 1 of ingestion resolves the form version
 * (with every check of app_public.submission_target) and returns only its id and content hash. A stored form
 * version's fields never change, so the server keeps them per version in memory and asks
 * app_public.submission_target for them only when it has not seen that version yet.
 */
drop function if exists app_public.submission_target_def(int, text, text, boolean, text) cascade;
create function app_public.submission_target_def(project int, xml_form text, form_version text,
                                                 is_draft boolean default false, token text default null)
returns table (form_def_id int, form_def_sha256 text)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.form_defs := app_hidden.submission_form_def(project, xml_form, form_version, is_draft, token);
begin
  return query select d.id, d.sha256;
end
$$;
comment on function app_public.submission_target_def(int, text, text, boolean, text) is
  'Step 1 of ingestion without the schema: the form version a submission is for (id and SHA-256 of its XML, which identify its fields), after the checks of app_public.submission_target.';
grant execute on function app_public.submission_target_def(int, text, text, boolean, text) to fieldbase_request;

