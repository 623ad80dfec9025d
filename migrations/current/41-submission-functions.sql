/*
 * Submission API functions (security definer, one call per request step): resolve the form version a
 * submission is for (so the server can structure the XML by its schema), ingest it with its
 * attachments in the same transaction (duplicates, resubmissions that add files, edits by deprecatedID),
 * review, delete/restore/purge, comments and attachment uploads, with Central's problems and audits.
 */

drop function if exists app_hidden.form_for_submissions(int, text, text) cascade;
create function app_hidden.form_for_submissions(project int, xml_form text, verb text) returns app_public.forms
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$ select app_hidden.form_for(project, xml_form, verb) $$;
comment on function app_hidden.form_for_submissions(int, text, text) is 'Another name of app_hidden.form_for(project, xml_form, verb), kept for the export routes that still call it.';

drop function if exists app_hidden.submission_form_def(int, text, text, boolean, text) cascade;
create function app_hidden.submission_form_def(project int, xml_form text, form_version text, is_draft boolean, token text)
returns app_public.form_defs
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms;
  d app_public.form_defs;
begin
  select fo.* into f from app_public.forms fo join app_public.projects p on p.id = fo.project_id
  where fo.project_id = project and fo.xml_form_id = xml_form and fo.deleted_at is null and p.deleted_at is null;
  if is_draft and token is not null then
    -- Draft testing: the draft token in the URL is the credential.
    select * into d from app_public.form_defs where id = f.draft_def_id and draft_token = token;
    if d.id is null then
      perform app_hidden.problem(404.4, 'You tried to access a draft testing endpoint, but it does not exist anymore or your access is no longer valid. If the form has been published and you would like to submit to it, you should configure your device with an App User token. If there is a new draft, you may have to reconfigure your device from the draft settings.');
    end if;
  else
    if f.id is null then
      perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
    end if;
    perform app_hidden.assert_can('submission.create', f.actee_id);
    if is_draft then
      select * into d from app_public.form_defs where id = f.draft_def_id;
      if d.id is null then
        perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
      end if;
    else
      if f.current_def_id is null then
        perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
      end if;
      if f.state = 'closed' then
        perform app_hidden.problem(409.2, 'This form is not currently accepting submissions. Please talk to your program staff if this is unexpected.');
      end if;
      select * into d from app_public.form_defs
      where form_id = f.id and published_at is not null and version = coalesce(form_version, '')
      order by id desc limit 1;
    end if;
  end if;
  if d.id is null or d.version <> coalesce(form_version, '') then
    perform app_hidden.problem(404.6, format('The form version specified in this submission ''%s'' does not exist.', coalesce(form_version, '')),
      jsonb_build_object('formVersion', coalesce(form_version, '')));
  end if;
  return d;
end
$$;
comment on function app_hidden.submission_form_def(int, text, text, boolean, text) is 'The form version a submission is for, after Central''s checks: 404.1 unknown form, 403.1, 409.2 closed, 404.6 unknown version, 404.4 bad draft token.';

drop function if exists app_public.submission_target(int, text, text, boolean, text) cascade;
create function app_public.submission_target(project int, xml_form text, form_version text, is_draft boolean default false, token text default null)
returns table (form_def_id int, fields jsonb)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  with d as (select * from app_hidden.submission_form_def(project, xml_form, form_version, is_draft, token))
  select d.id, coalesce((
    select jsonb_agg(jsonb_build_object('path', ff.path, 'type', ff.type, 'binary', ff.binary, 'selectMultiple', ff.select_multiple) order by ff.ord)
    from app_public.form_fields ff where ff.form_def_id = d.id), '[]')
  from d
$$;
comment on function app_public.submission_target(int, text, text, boolean, text) is 'Step 1 of ingestion: the form version and its field schema, so the server can structure the XML before create_submission.';

drop function if exists app_hidden.attach_files(int, text[], text[], bytea[], boolean) cascade;
create function app_hidden.attach_files(def_id int, names text[], types text[], contents bytea[], overwrite boolean) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  attached int := 0;
  blob int;
begin
  for i in 1 .. coalesce(array_length(names, 1), 0) loop
    -- Only files the version expects are kept; on a plain resubmission, only the missing ones.
    if exists (select 1 from app_public.submission_attachments a where a.submission_def_id = def_id and a.name = names[i]
               and (overwrite or a.blob_id is null)) then
      blob := app_hidden.submission_blob(contents[i], types[i]);
      update app_public.submission_attachments set blob_id = blob where submission_def_id = def_id and name = names[i];
      attached := attached + 1;
    end if;
  end loop;
  return attached;
end
$$;

drop function if exists app_hidden.submission_blob(bytea, text) cascade;
create function app_hidden.submission_blob(content bytea, content_type text) returns int
language sql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
  insert into app_public.blobs (sha, md5, content_type, content)
  values (encode(digest(content, 'sha1'), 'hex'), md5(content), coalesce(content_type, 'application/octet-stream'), content)
  on conflict (sha) do update set sha = excluded.sha
  returning id
$$;
comment on function app_hidden.submission_blob(bytea, text) is 'Stores file content once by SHA-1 and returns its blob id.';

drop function if exists app_public.create_submission(int, boolean, text, text, text, text, text, jsonb, jsonb, text[], text, text, text[], text[], bytea[]) cascade;
create function app_public.create_submission(
  def_id int, is_draft boolean, token text, new_instance_id text, deprecated_id text, new_instance_name text,
  new_xml text, new_data jsonb, new_encryption jsonb, expected text[], new_device_id text, new_user_agent text,
  file_names text[], file_types text[], file_contents bytea[])
returns table (submission_id int, submission_def_id int, outcome text)
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.form_defs;
  f app_public.forms;
  s app_public.submissions;
  cur app_public.submission_defs;
  new_def int;
begin
  select * into d from app_public.form_defs where id = def_id;
  select * into f from app_public.forms where id = d.form_id;
  -- Re-check everything submission_target checked: this is the call that writes.
  perform app_hidden.submission_form_def(f.project_id, f.xml_form_id, d.version, is_draft, token);

  if deprecated_id is null then
    insert into app_public.submissions (form_id, instance_id, draft, submitter_id, device_id, user_agent)
    values (f.id, new_instance_id, is_draft, app_hidden.current_actor_id(), new_device_id, new_user_agent)
    on conflict (form_id, draft, instance_id) do nothing
    returning * into s;
    if s.id is null then
      -- Already known (possibly just committed by a concurrent request): a resubmission adding attachments.
      select * into s from app_public.submissions x where x.form_id = f.id and x.draft = is_draft and x.instance_id = new_instance_id for update;
      if s.deleted_at is not null then
        perform app_hidden.problem(409.18, 'This submission has been deleted. You may not resubmit it.');
      end if;
      select * into cur from app_public.submission_defs x where x.submission_id = s.id and x.current;
      if cur.xml is distinct from new_xml then
        perform app_hidden.problem(409.1, 'A submission already exists with this ID, but with different XML. Resubmissions to attach additional multimedia must resubmit an identical xml_submission_file.');
      end if;
      perform app_hidden.attach_files(cur.id, file_names, file_types, file_contents, false);
      return query select s.id, cur.id, 'resubmitted'::text;
      return;
    end if;
    insert into app_public.submission_defs (submission_id, form_id, form_def_id, instance_id, instance_name, xml, data, encryption,
                                            submitter_id, device_id, user_agent, current)
    values (s.id, f.id, d.id, new_instance_id, new_instance_name, new_xml, coalesce(new_data, '{}'), new_encryption,
            app_hidden.current_actor_id(), new_device_id, new_user_agent, true)
    returning id into new_def;
    insert into app_public.submission_attachments (submission_def_id, form_id, name, ord)
    select new_def, f.id, e.name, e.ord - 1 from unnest(expected) with ordinality e(name, ord) on conflict do nothing;
    perform app_hidden.attach_files(new_def, file_names, file_types, file_contents, true);
    if not is_draft then
      perform app_hidden.log_audit('submission.create', f.actee_id,
        jsonb_build_object('submissionId', s.id, 'instanceId', new_instance_id, 'submissionDefId', new_def));
    end if;
    return query select s.id, new_def, 'created'::text;
    return;
  end if;

  -- An edit: deprecatedID names the version being replaced, which must be the current one.
  select x.* into cur from app_public.submission_defs x join app_public.submissions sx on sx.id = x.submission_id
  where x.form_id = f.id and sx.draft = is_draft and x.instance_id = new_instance_id;
  if cur.id is not null then
    if cur.xml is distinct from new_xml then
      perform app_hidden.problem(409.1, 'A submission already exists with this ID, but with different XML. Resubmissions to attach additional multimedia must resubmit an identical xml_submission_file.');
    end if;
    perform app_hidden.attach_files(cur.id, file_names, file_types, file_contents, false);
    return query select cur.submission_id, cur.id, 'resubmitted'::text;
    return;
  end if;
  select x.* into cur from app_public.submission_defs x join app_public.submissions sx on sx.id = x.submission_id
  where x.form_id = f.id and sx.draft = is_draft and x.instance_id = deprecated_id
  order by x.current desc limit 1;
  if cur.id is null then
    perform app_hidden.problem(404.5, format('You tried to update an existing submission, but we can''t find that submission to update (%s)', deprecated_id),
      jsonb_build_object('deprecatedId', deprecated_id));
  end if;
  select * into s from app_public.submissions x where x.id = cur.submission_id for update;
  if s.deleted_at is not null then
    perform app_hidden.problem(409.18, 'This submission has been deleted. You may not resubmit it.');
  end if;
  if not cur.current then
    perform app_hidden.problem(409.9, format('You tried to update a submission, but the copy you were editing (%s) is now out of date. Please get the new version that has been submitted, and make your edits again.', deprecated_id),
      jsonb_build_object('deprecatedId', deprecated_id));
  end if;
  update app_public.submission_defs set current = false where id = cur.id;
  insert into app_public.submission_defs (submission_id, form_id, form_def_id, instance_id, instance_name, xml, data, encryption,
                                          submitter_id, device_id, user_agent, current)
  values (s.id, f.id, d.id, new_instance_id, new_instance_name, new_xml, coalesce(new_data, '{}'), new_encryption,
          app_hidden.current_actor_id(), new_device_id, new_user_agent, true)
  returning id into new_def;
  -- Files still referred to carry over from the replaced version; files sent now overwrite them.
  insert into app_public.submission_attachments (submission_def_id, form_id, name, ord, blob_id)
  select new_def, f.id, e.name, e.ord - 1,
         (select a.blob_id from app_public.submission_attachments a where a.submission_def_id = cur.id and a.name = e.name)
  from unnest(expected) with ordinality e(name, ord) on conflict do nothing;
  perform app_hidden.attach_files(new_def, file_names, file_types, file_contents, true);
  update app_public.submissions set review_state = 'edited', updated_at = clock_timestamp() where id = s.id;
  if not is_draft then
    perform app_hidden.log_audit('submission.update.version', f.actee_id,
      jsonb_build_object('submissionId', s.id, 'instanceId', s.instance_id, 'submissionDefId', new_def));
  end if;
  return query select s.id, new_def, 'edited'::text;
end
$$;
comment on function app_public.create_submission(int, boolean, text, text, text, text, text, jsonb, jsonb, text[], text, text, text[], text[], bytea[]) is
  'Step 2 of ingestion: stores a submission (or a new version when deprecated_id is given, or missing attachments of an identical resubmission) with its structured data and files; 409.1, 409.9, 409.18, 404.5 as Central.';

/* A submission of a form by its instanceID, for the REST routes, with the actor's rights checked. */
drop function if exists app_hidden.submission_for(int, text, text, boolean, text, boolean) cascade;
create function app_hidden.submission_for(project int, xml_form text, instance text, is_draft boolean, verb text, include_deleted boolean default false)
returns app_public.submissions
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, verb);
  s app_public.submissions;
begin
  select * into s from app_public.submissions x
  where x.form_id = f.id and x.draft = is_draft and x.instance_id = instance and (include_deleted or x.deleted_at is null);
  if s.id is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return s;
end
$$;
comment on function app_hidden.submission_for(int, text, text, boolean, text, boolean) is 'A submission by form and instanceID on which the actor holds verb (via its form); 404.1/403.1 otherwise.';

drop function if exists app_public.review_submission(int, text, text, text) cascade;
create function app_public.review_submission(project int, xml_form text, instance text, new_state text) returns app_public.submissions
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, false, 'submission.update');
begin
  if new_state is null or new_state not in ('hasIssues', 'edited', 'approved', 'rejected') then
    perform app_hidden.problem(400.8, format('Unexpected reviewState value %s; not a valid review state.', coalesce(new_state, 'null')),
      jsonb_build_object('field', 'reviewState', 'value', new_state, 'reason', 'not a valid review state.'));
  end if;
  update app_public.submissions set review_state = new_state, updated_at = clock_timestamp() where id = s.id returning * into s;
  perform app_hidden.log_audit('submission.update', (select actee_id from app_public.forms where id = s.form_id),
    jsonb_build_object('submissionId', s.id, 'instanceId', s.instance_id, 'reviewState', new_state,
      'submissionDefId', (select id from app_public.submission_defs where submission_id = s.id and current)));
  return s;
end
$$;
comment on function app_public.review_submission(int, text, text, text) is 'Sets a submission''s reviewState (submission.update); audited as submission.update.';

drop function if exists app_public.delete_submission(int, text, text) cascade;
create function app_public.delete_submission(project int, xml_form text, instance text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, false, 'submission.delete');
begin
  update app_public.submissions set deleted_at = clock_timestamp() where id = s.id;
  perform app_hidden.log_audit('submission.delete', (select actee_id from app_public.forms where id = s.form_id),
    jsonb_build_object('submissionId', s.id, 'instanceId', s.instance_id));
end
$$;
comment on function app_public.delete_submission(int, text, text) is 'Soft-deletes a submission (purged after 30 days); audited as submission.delete.';

drop function if exists app_public.restore_submission(int, text, text) cascade;
create function app_public.restore_submission(project int, xml_form text, instance text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, false, 'submission.restore', true);
begin
  if s.deleted_at is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  update app_public.submissions set deleted_at = null where id = s.id;
  perform app_hidden.log_audit('submission.restore', (select actee_id from app_public.forms where id = s.form_id),
    jsonb_build_object('submissionId', s.id, 'instanceId', s.instance_id));
end
$$;
comment on function app_public.restore_submission(int, text, text) is 'Undeletes a soft-deleted submission; audited as submission.restore.';

drop function if exists app_hidden.purge_submissions(interval) cascade;
create function app_hidden.purge_submissions(older_than interval default interval '30 days') returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  purged int;
begin
  with gone as (
    delete from app_public.submissions where deleted_at is not null and deleted_at < now() - older_than returning id, instance_id, form_id
  )
  select count(*) into purged from gone;
  if purged > 0 then
    perform app_hidden.log_audit('submission.purge', null, jsonb_build_object('submissionsDeleted', purged));
  end if;
  return purged;
end
$$;
comment on function app_hidden.purge_submissions(interval) is 'Permanently removes submissions deleted longer ago than older_than (the scheduled purge); audited as submission.purge.';

drop function if exists app_public.add_submission_comment(int, text, text, text) cascade;
create function app_public.add_submission_comment(project int, xml_form text, instance text, comment_body text) returns app_public.submission_comments
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, false, 'submission.update');
  c app_public.submission_comments;
begin
  if comment_body is null or comment_body = '' then
    perform app_hidden.problem(400.2, 'Required parameter body missing.', '{"field":"body"}');
  end if;
  insert into app_public.submission_comments (submission_id, form_id, actor_id, body)
  values (s.id, s.form_id, app_hidden.current_actor_id(), comment_body) returning * into c;
  return c;
end
$$;
comment on function app_public.add_submission_comment(int, text, text, text) is 'Adds a reviewer''s comment to a submission (submission.update).';

drop function if exists app_hidden.replace_attachment_blob(int, text, int) cascade;
create function app_hidden.replace_attachment_blob(def_id int, file_name text, new_blob int) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  old_blob int;
begin
  select blob_id into old_blob from app_public.submission_attachments where submission_def_id = def_id and name = file_name;
  if not found then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  update app_public.submission_attachments set blob_id = new_blob where submission_def_id = def_id and name = file_name;
  return old_blob;
end
$$;
comment on function app_hidden.replace_attachment_blob(int, text, int) is 'Sets (or clears, with null) the file of an expected attachment of one submission version and returns the old blob id; 404.1 when the version expects no such file. Callers check rights and audit.';

drop function if exists app_public.set_submission_attachment(int, text, text, boolean, text, text, bytea) cascade;
create function app_public.set_submission_attachment(project int, xml_form text, instance text, is_draft boolean, file_name text,
                                                     content_type text, content bytea)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  s app_public.submissions := app_hidden.submission_for(project, xml_form, instance, is_draft, 'submission.update');
  cur app_public.submission_defs;
  old_blob int;
  new_blob int;
begin
  select * into cur from app_public.submission_defs where submission_id = s.id and current;
  new_blob := case when content is null then null else app_hidden.submission_blob(content, content_type) end;
  old_blob := app_hidden.replace_attachment_blob(cur.id, file_name, new_blob);
  perform app_hidden.log_audit('submission.attachment.update', (select actee_id from app_public.forms where id = s.form_id),
    jsonb_build_object('instanceId', s.instance_id, 'submissionDefId', cur.id, 'name', file_name, 'oldBlobId', old_blob, 'newBlobId', new_blob));
end
$$;
comment on function app_public.set_submission_attachment(int, text, text, boolean, text, text, bytea) is 'Uploads (or clears, with null content) an expected attachment of a submission''s current version; audited as submission.attachment.update.';

drop function if exists app_public.submission_audits(int, text, text) cascade;
create function app_public.submission_audits(project int, xml_form text, instance text)
returns setof app_public.audits
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select a.* from app_public.audits a
  where a.actee_id = (select f.actee_id from app_public.forms f where f.id = (app_hidden.submission_for(project, xml_form, instance, false, 'submission.read')).form_id)
    and a.details->>'submissionId' = (app_hidden.submission_for(project, xml_form, instance, false, 'submission.read')).id::text
  order by a.logged_at desc, a.id desc
$$;
comment on function app_public.submission_audits(int, text, text) is 'A submission''s audit log (submission.read on its form), newest first.';

drop function if exists app_public.form_submitters(int, text, boolean) cascade;
create function app_public.form_submitters(project int, xml_form text, is_draft boolean default false)
returns setof app_public.actors
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select a.* from app_public.actors a
  where a.id in (select s.submitter_id from app_public.submissions s
                 where s.form_id = (app_hidden.form_for(project, xml_form, 'submission.read')).id
                   and s.draft = is_draft and s.deleted_at is null)
  order by a.display_name, a.id
$$;
comment on function app_public.form_submitters(int, text, boolean) is 'Every actor who has submitted to a form (submission.read).';

/* Draft submissions are test data: they go when the draft is published, replaced or deleted. */
drop function if exists app_hidden.drop_draft_submissions() cascade;
create function app_hidden.drop_draft_submissions() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  delete from app_public.submissions where form_id = new.id and draft;
  return null;
end
$$;
create trigger drop_draft_submissions after update of draft_def_id on app_public.forms
  for each row when (old.draft_def_id is distinct from new.draft_def_id)
  execute function app_hidden.drop_draft_submissions();

grant execute on function
  app_hidden.form_for_submissions(int, text, text),
  app_hidden.submission_for(int, text, text, boolean, text, boolean),
  app_public.submission_target(int, text, text, boolean, text),
  app_public.create_submission(int, boolean, text, text, text, text, text, jsonb, jsonb, text[], text, text, text[], text[], bytea[]),
  app_public.review_submission(int, text, text, text),
  app_public.delete_submission(int, text, text),
  app_public.restore_submission(int, text, text),
  app_public.add_submission_comment(int, text, text, text),
  app_public.set_submission_attachment(int, text, text, boolean, text, text, bytea),
  app_public.submission_audits(int, text, text),
  app_public.form_submitters(int, text, boolean)
to fieldbase_request;

drop function if exists app_hidden.submission_actor_json(int) cascade;
create function app_hidden.submission_actor_json(actor int) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.actor_json(a) from app_public.actors a where a.id = actor
$$;
comment on function app_hidden.submission_actor_json(int) is 'The submitter of a submission a reader may see (App Users and Public Links included), in Central''s Actor shape.';
grant execute on function app_hidden.submission_actor_json(int) to fieldbase_request;
