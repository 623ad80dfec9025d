/*
 * Enketo: the audit actions after which Central asks Enketo for survey ids (form.create, form.update.draft.set,
 * form.update.publish) queue the enketo__create job (workers/tasks/enketo.ts, a no-op without Enketo), and
 * forms are found by Enketo id for GET /v1/form-links/:enketoId/form.
 * Submissions: clearing an attachment of an older version (DELETE …/versions/:versionId/attachments/:name),
 * and comments audited as comment.create.
 */
drop trigger if exists queue_enketo_survey on app_public.audits;
drop function if exists app_hidden.queue_enketo_survey() cascade;
drop function if exists app_hidden.form_by_enketo_id(text) cascade;
drop function if exists app_public.clear_submission_version_attachment(int, text, text, text, text) cascade;
drop trigger if exists audit_submission_comment on app_public.submission_comments;
drop function if exists app_hidden.audit_submission_comment() cascade;

create function app_hidden.queue_enketo_survey() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.enqueue('enketo__create', jsonb_build_object('formActeeId', new.actee_id));
  return null;
end
$$;
comment on function app_hidden.queue_enketo_survey() is 'Queues enketo__create for the form an audited form action was about.';
create trigger queue_enketo_survey after insert on app_public.audits
  for each row when (new.action in ('form.create', 'form.update.draft.set', 'form.update.publish') and new.actee_id is not null)
  execute function app_hidden.queue_enketo_survey();

create function app_hidden.form_by_enketo_id(enketo text) returns table (project_id int, xml_form_id text, draft boolean)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select f.project_id, f.xml_form_id, false from app_public.forms f
    where (f.enketo_id = enketo or f.enketo_once_id = enketo) and f.deleted_at is null and f.current_def_id is not null
    union all
    select f.project_id, f.xml_form_id, true from app_public.forms f join app_public.form_defs d on d.id = f.draft_def_id
    where d.enketo_id = enketo and f.deleted_at is null
    limit 1;
  if not found then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
end
$$;
comment on function app_hidden.form_by_enketo_id(text) is 'Which form (and whether its draft) an Enketo id belongs to; 404.1 when none. Callers then read the form under its own rights.';

create function app_public.clear_submission_version_attachment(project int, xml_form text, instance text, version_instance text, file_name text)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, false, 'submission.update');
  def_id int;
  old_blob int;
begin
  select d.id into def_id from app_public.submission_defs d where d.submission_id = s.id and d.instance_id = version_instance;
  old_blob := app_hidden.replace_attachment_blob(def_id, file_name, null);
  perform app_hidden.log_audit('submission.attachment.update', (select actee_id from app_public.forms where id = s.form_id),
    jsonb_build_object('submissionId', s.id, 'instanceId', s.instance_id, 'submissionDefId', def_id, 'name', file_name, 'oldBlobId', old_blob, 'newBlobId', null));
end
$$;
comment on function app_public.clear_submission_version_attachment(int, text, text, text, text) is
  'DELETE …/versions/:versionId/attachments/:name: clears the file of one version''s expected attachment; audited as submission.attachment.update.';

create function app_hidden.audit_submission_comment() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_hidden.log_audit('comment.create', (select actee_id from app_public.forms where id = new.form_id),
    jsonb_build_object('submissionId', new.submission_id,
      'instanceId', (select instance_id from app_public.submissions where id = new.submission_id), 'commentId', new.id));
  return null;
end
$$;
comment on function app_hidden.audit_submission_comment() is 'Audits every new submission comment as comment.create (on the form, with the submission).';
create trigger audit_submission_comment after insert on app_public.submission_comments
  for each row execute function app_hidden.audit_submission_comment();

grant execute on function app_hidden.form_by_enketo_id(text),
  app_public.clear_submission_version_attachment(int, text, text, text, text) to fieldbase_request;
