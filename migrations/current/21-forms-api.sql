/*
 * Forms API: creating forms and versions from parsed XForms (the server parses the XML once, at upload,
 * and passes the result as jsonb), drafts, publishing, state changes, soft deletion, attachments.
 * Every mutation checks Central's verb on the form's actee and writes Central's audit action.
 * The parsed form (server/formats/xform.ts): {xmlFormId, version, title, base64RsaPublicKey, submissionUrl,
 * fields: [{name, path, type, binary, selectMultiple}], attachments: [{name, type}], entities}.
 */
drop function if exists app_hidden.form_for(int, text) cascade;
drop function if exists app_hidden.form_for(int, text, text) cascade;
drop function if exists app_hidden.insert_form_def(app_public.forms, text, jsonb, int) cascade;
drop function if exists app_hidden.form_warnings(app_public.forms, jsonb, boolean) cascade;
drop function if exists app_hidden.raise_warnings(jsonb) cascade;
drop function if exists app_hidden.raise_warnings(jsonb, jsonb) cascade;
drop function if exists app_hidden.def_publish_notes(text, int) cascade;
drop function if exists app_hidden.check_field_types(app_public.forms, jsonb) cascade;
drop function if exists app_hidden.publish_form(int, boolean) cascade;
drop function if exists app_hidden.drop_unused_def(int) cascade;
drop function if exists app_public.create_form(int, text, jsonb, boolean, boolean, int) cascade;
drop function if exists app_public.create_draft(int, text, text, jsonb, boolean, int, boolean) cascade;
drop function if exists app_public.publish_draft(int, text) cascade;
drop function if exists app_public.delete_draft(int, text) cascade;
drop function if exists app_public.update_form(int, text, text, boolean) cascade;
drop function if exists app_public.delete_form(int, text) cascade;
drop function if exists app_public.restore_form(int, int) cascade;
drop function if exists app_public.ensure_blob(bytea, text) cascade;
drop function if exists app_public.set_draft_attachment(int, text, text, int) cascade;
drop function if exists app_hidden.form_created_by(text) cascade;
drop function if exists app_hidden.def_published_by(text, int) cascade;
drop function if exists app_hidden.public_link_count(int) cascade;
drop function if exists app_public.create_public_link(int, text, text, boolean) cascade;
drop function if exists app_public.create_public_link(int, text, text, boolean, jsonb) cascade;
drop function if exists app_public.delete_public_link(int, text, int) cascade;
drop function if exists app_hidden.public_link_of(int, text, int, text) cascade;
drop function if exists app_hidden.public_link_token(int) cascade;

create function app_hidden.form_for(project int, xml_form text) returns app_public.forms
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms;
begin
  perform app_hidden.live_project(project);
  select * into f from app_public.forms where project_id = project and xml_form_id = xml_form and deleted_at is null;
  if f is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return f;
end
$$;
comment on function app_hidden.form_for(int, text) is 'The live form of a project by xmlFormId, or 404.1.';

create function app_hidden.form_for(project int, xml_form text, verb text) returns app_public.forms
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form);
begin
  perform app_hidden.assert_can(verb, f.actee_id);
  return f;
end
$$;
comment on function app_hidden.form_for(int, text, text) is 'The live form of a project by xmlFormId on which the actor holds verb: 404.1 when there is none, then 403.1.';

create function app_hidden.insert_form_def(f app_public.forms, xml text, parsed jsonb, xls_blob int) returns app_public.form_defs
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
declare
  key int;
  def app_public.form_defs;
  previous int := coalesce(f.draft_def_id, f.current_def_id);
begin
  if nullif(parsed->>'base64RsaPublicKey', '') is not null then
    insert into app_public.keys (public) values (parsed->>'base64RsaPublicKey')
    on conflict (public) do update set public = excluded.public
    returning id into key;
  end if;
  insert into app_public.form_defs (form_id, xml, name, version, hash, sha, sha256, key_id, submission_url, entities, xls_blob_id)
  values (f.id, xml, parsed->>'title', coalesce(parsed->>'version', ''), md5(xml),
          encode(digest(convert_to(xml, 'UTF8'), 'sha1'), 'hex'), encode(digest(convert_to(xml, 'UTF8'), 'sha256'), 'hex'),
          key, parsed->>'submissionUrl', nullif(parsed->'entities', 'null'::jsonb), xls_blob)
  returning * into def;
  insert into app_public.form_fields (form_def_id, ord, path, name, type, "binary", select_multiple)
  select def.id, (e.ord - 1)::int, e.field->>'path', e.field->>'name', e.field->>'type',
         coalesce((e.field->>'binary')::boolean, false), coalesce((e.field->>'selectMultiple')::boolean, false)
  from jsonb_array_elements(coalesce(parsed->'fields', '[]')) with ordinality as e(field, ord);
  -- Files already uploaded for the same name and type carry over to the new version.
  insert into app_public.form_attachments (form_def_id, name, type, blob_id, dataset_id, updated_at)
  select distinct on (a->>'name') def.id, a->>'name', a->>'type', old.blob_id, old.dataset_id, old.updated_at
  from jsonb_array_elements(coalesce(parsed->'attachments', '[]')) with ordinality as e(a, ord)
  left join app_public.form_attachments old
    on old.form_def_id = previous and old.name = a->>'name' and old.type = a->>'type'
  order by a->>'name', e.ord;
  return def;
end
$$;
comment on function app_hidden.insert_form_def(app_public.forms, text, jsonb, int) is 'Stores a parsed form version: the def with hashes and key, its fields and expected attachments.';

create function app_hidden.form_warnings(f app_public.forms, parsed jsonb, check_structure boolean) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  -- Central's workflow warnings: a deleted form with this id, old entity spec versions, removed fields.
  select coalesce(jsonb_agg(w), '[]'::jsonb) from (
    select jsonb_build_object('type', 'deletedFormExists', 'details', jsonb_build_object('xmlFormId', parsed->>'xmlFormId')) as w
    where f.id is null and exists (select 1 from app_public.forms d
      where d.project_id = f.project_id and d.xml_form_id = parsed->>'xmlFormId' and d.deleted_at is not null)
    union all
    select w from jsonb_array_elements(coalesce(parsed->'entities'->'warnings', '[]')) w
    union all
    select jsonb_build_object('type', 'structureChanged', 'details', jsonb_agg(old.name order by old.ord))
    from app_public.form_fields old
    where check_structure and old.form_def_id = f.current_def_id
      and not exists (select 1 from jsonb_array_elements(parsed->'fields') n where n->>'path' = old.path)
    having count(*) > 0
  ) warnings
$$;

create function app_hidden.raise_warnings(warnings jsonb, xls_warnings jsonb default null) returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  xls jsonb := case when jsonb_typeof(xls_warnings) = 'array' and jsonb_array_length(xls_warnings) > 0 then xls_warnings end;
  workflow jsonb := case when jsonb_array_length(warnings) > 0 then warnings end;
begin
  -- The XLSForm converter's warnings (parsed->'xlsFormWarnings') and the workflow warnings come back together.
  if xls is not null or workflow is not null then
    perform app_hidden.problem(400.16, 'The Form is valid, but with warnings. Please check the warnings and if they are acceptable resubmit with ?ignoreWarnings=true',
      jsonb_build_object('warnings', jsonb_strip_nulls(jsonb_build_object('xlsFormWarnings', xls, 'workflowWarnings', workflow))));
  end if;
end
$$;

create function app_hidden.check_field_types(f app_public.forms, parsed jsonb) returns void
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  clash record;
begin
  -- A field may become a string, but may not otherwise change type, and groups/repeats may not become strings.
  select old.path, old.type into clash
  from jsonb_array_elements(parsed->'fields') n
  join app_public.form_fields old on old.path = n->>'path'
  join app_public.form_defs d on d.id = old.form_def_id and d.form_id = f.id and d.published_at is not null
  where (n->>'type' <> 'string' and n->>'type' <> old.type)
     or (n->>'type' = 'string' and old.type in ('structure', 'repeat'))
  limit 1;
  if clash.path is not null then
    perform app_hidden.problem(400.17, format('The form you have uploaded attempts to change the type of the field at %s. In a previous version, it had the type %s. Please either return that field to its previous type, or rename the field so it lives at a new path.', clash.path, clash.type),
      jsonb_build_object('path', clash.path, 'type', clash.type));
  end if;
end
$$;

create function app_hidden.drop_unused_def(def_id int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A replaced draft goes away unless something (e.g. draft submissions) still refers to it.
  delete from app_public.form_defs where id = def_id and published_at is null;
exception when foreign_key_violation then
  null;
end
$$;

create function app_hidden.publish_form(target int, with_create boolean) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms;
  def app_public.form_defs;
begin
  select * into f from app_public.forms where id = target for update;
  select * into def from app_public.form_defs where id = f.draft_def_id;
  if def is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  begin
    update app_public.form_defs
    set published_at = case when with_create then f.created_at else clock_timestamp() end, draft_token = null, enketo_id = null
    where id = def.id;
  exception when unique_violation then
    perform app_hidden.problem(409.6, format('You tried to publish the form ''%s'' with version ''%s'', but a published form has already existed in this project with those identifiers.', f.xml_form_id, def.version),
      jsonb_build_object('xmlFormId', f.xml_form_id, 'version', def.version));
  end;
  update app_public.forms
  set current_def_id = def.id, draft_def_id = null, updated_at = case when with_create then null else clock_timestamp() end
  where id = f.id;
  perform app_hidden.log_audit('form.update.publish', f.actee_id, jsonb_build_object('oldDefId', f.current_def_id, 'newDefId', def.id));
end
$$;

create function app_public.create_form(project int, xml text, parsed jsonb, publish boolean default false,
                                       ignore_warnings boolean default false, xls_blob int default null)
returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p app_public.projects := app_hidden.live_project(project, 'form.create');
  f app_public.forms;
  def app_public.form_defs;
  xml_form text := parsed->>'xmlFormId';
begin
  if not ignore_warnings then
    f.project_id := p.id;
    perform app_hidden.raise_warnings(app_hidden.form_warnings(f, parsed, false), parsed->'xlsFormWarnings');
  end if;
  if exists (select 1 from app_public.forms where project_id = p.id and xml_form_id = xml_form and deleted_at is null) then
    perform app_hidden.problem(409.3, format('A resource already exists with projectId,xmlFormId value(s) of %s,%s.', p.id, xml_form),
      jsonb_build_object('fields', jsonb_build_array('projectId', 'xmlFormId'), 'values', jsonb_build_array(p.id, xml_form)));
  end if;
  insert into app_public.forms (project_id, xml_form_id, actee_id, created_at)
  values (p.id, xml_form, app_hidden.new_actee('form', p.actee_id), clock_timestamp())
  returning * into f;
  def := app_hidden.insert_form_def(f, xml, parsed, xls_blob);
  update app_public.form_defs set draft_token = app_hidden.new_token(), created_at = f.created_at where id = def.id;
  update app_public.forms set draft_def_id = def.id where id = f.id;
  perform app_hidden.log_audit('form.create', f.actee_id, null);
  if publish then
    perform app_hidden.publish_form(f.id, true);
  end if;
  return f.id;
end
$$;
comment on function app_public.create_form(int, text, jsonb, boolean, boolean, int) is 'POST /projects/:id/forms: a new form with the upload as its draft (published at once with publish).';

create function app_public.create_draft(project int, xml_form text, xml text, parsed jsonb, ignore_warnings boolean default false,
                                        xls_blob int default null, duplicating boolean default false)
returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
  old_draft app_public.form_defs;
  def app_public.form_defs;
begin
  if parsed->>'xmlFormId' is distinct from f.xml_form_id then
    perform app_hidden.problem(400.8, format('Unexpected xmlFormId value %s; does not match the form you are updating', parsed->>'xmlFormId'),
      jsonb_build_object('field', 'xmlFormId', 'value', parsed->>'xmlFormId', 'reason', 'does not match the form you are updating'));
  end if;
  perform app_hidden.check_field_types(f, parsed);
  if not ignore_warnings and not duplicating then
    perform app_hidden.raise_warnings(app_hidden.form_warnings(f, parsed, true), parsed->'xlsFormWarnings');
  end if;
  select * into old_draft from app_public.form_defs where id = f.draft_def_id;
  def := app_hidden.insert_form_def(f, xml, parsed, xls_blob);
  -- A replaced draft hands its testing token (and Enketo id) on to the new one.
  if old_draft.id is not null then
    update app_public.form_defs set draft_token = null where id = old_draft.id;
  end if;
  update app_public.form_defs
  set draft_token = coalesce(old_draft.draft_token, app_hidden.new_token()), enketo_id = old_draft.enketo_id
  where id = def.id;
  update app_public.forms set draft_def_id = def.id, updated_at = clock_timestamp() where id = f.id;
  if old_draft.id is not null then
    perform app_hidden.drop_unused_def(old_draft.id);
  end if;
  perform app_hidden.log_audit('form.update.draft.set', f.actee_id,
    jsonb_build_object('oldDraftDefId', old_draft.id, 'newDraftDefId', def.id));
  return def.id;
end
$$;
comment on function app_public.create_draft(int, text, text, jsonb, boolean, int, boolean) is 'POST /forms/:id/draft: a new draft version (replacing any draft; attachments carry over by name and type).';

create function app_public.publish_draft(project int, xml_form text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
begin
  perform app_hidden.publish_form(f.id, false);
end
$$;
comment on function app_public.publish_draft(int, text) is 'POST /forms/:id/draft/publish: the draft becomes the published version (409.6 when its version was published before).';

create function app_public.delete_draft(project int, xml_form text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
begin
  if f.current_def_id is null then
    perform app_hidden.problem(409.7, 'Could not delete draft, because the form has not been published. Either delete the whole form, or replace the draft.');
  end if;
  if f.draft_def_id is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  update app_public.forms set draft_def_id = null where id = f.id;
  perform app_hidden.drop_unused_def(f.draft_def_id);
  perform app_hidden.log_audit('form.update.draft.delete', f.actee_id, jsonb_build_object('oldDraftDefId', f.draft_def_id));
end
$$;
comment on function app_public.delete_draft(int, text) is 'DELETE /forms/:id/draft (409.7 for a form never published).';

create function app_public.update_form(project int, xml_form text, new_state text, webforms boolean default null) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
  data jsonb := '{}';
begin
  if new_state is not null and new_state not in ('open', 'closing', 'closed') then
    perform app_hidden.problem(400.8, format('Unexpected state value %s; not a recognized form state.', new_state),
      jsonb_build_object('field', 'state', 'value', new_state, 'reason', 'not a recognized form state.'));
  end if;
  if new_state is not null then data := data || jsonb_build_object('state', new_state); end if;
  if webforms is not null then data := data || jsonb_build_object('webformsEnabled', webforms); end if;
  update app_public.forms
  set state = coalesce(new_state, state), webforms_enabled = coalesce(webforms, webforms_enabled), updated_at = clock_timestamp()
  where id = f.id;
  perform app_hidden.log_audit('form.update', f.actee_id, jsonb_build_object('data', data));
end
$$;
comment on function app_public.update_form(int, text, text, boolean) is 'PATCH /forms/:id: state (open/closing/closed) and webformsEnabled.';

create function app_public.delete_form(project int, xml_form text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.delete');
begin
  update app_public.forms set deleted_at = clock_timestamp() where id = f.id;
  perform app_hidden.log_audit('form.delete', f.actee_id, null);
end
$$;
comment on function app_public.delete_form(int, text) is 'DELETE /forms/:id: moves the form to the trash (restorable by numeric id).';

create function app_public.restore_form(project int, form int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms;
begin
  perform app_hidden.live_project(project);
  select * into f from app_public.forms where id = form and project_id = project and deleted_at is not null;
  if f is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  perform app_hidden.assert_can('form.restore', f.actee_id);
  if exists (select 1 from app_public.forms where project_id = project and xml_form_id = f.xml_form_id and deleted_at is null) then
    perform app_hidden.problem(409.3, format('A resource already exists with projectId,xmlFormId value(s) of %s,%s.', project, f.xml_form_id),
      jsonb_build_object('fields', jsonb_build_array('projectId', 'xmlFormId'), 'values', jsonb_build_array(project, f.xml_form_id)));
  end if;
  update app_public.forms set deleted_at = null where id = f.id;
  perform app_hidden.log_audit('form.restore', f.actee_id, null);
end
$$;
comment on function app_public.restore_form(int, int) is 'POST /forms/:numericId/restore: brings a deleted form back (409.3 if its xmlFormId is taken again).';

create function app_public.ensure_blob(content bytea, content_type text) returns int
language sql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
  insert into app_public.blobs (sha, md5, content_type, content)
  values (encode(digest(content, 'sha1'), 'hex'), md5(content), content_type, content)
  on conflict (sha) do update set sha = excluded.sha
  returning id
$$;
comment on function app_public.ensure_blob(bytea, text) is 'Stores file contents once (by SHA-1) and returns the blob id.';

create function app_public.set_draft_attachment(project int, xml_form text, file_name text, blob int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'form.update');
  a app_public.form_attachments;
begin
  select * into a from app_public.form_attachments where form_def_id = f.draft_def_id and name = file_name;
  if a is null or (blob is null and a.blob_id is null and a.dataset_id is null) then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  update app_public.form_attachments set blob_id = blob, dataset_id = null, updated_at = clock_timestamp()
  where form_def_id = a.form_def_id and name = a.name;
  perform app_hidden.log_audit('form.attachment.update', f.actee_id, jsonb_build_object('formDefId', a.form_def_id,
    'name', a.name, 'oldBlobId', a.blob_id, 'newBlobId', blob, 'oldDatasetId', a.dataset_id, 'newDatasetId', null));
end
$$;
comment on function app_public.set_draft_attachment(int, text, text, int) is 'POST/DELETE /forms/:id/draft/attachments/:name: sets or clears the file of an expected attachment.';

/* Extended metadata that reads across audits and sessions, which the caller may not see directly. */
create function app_hidden.form_created_by(actee text) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.actor_json(a) from app_public.audits au join app_public.actors a on a.id = au.actor_id
  where au.actee_id = actee and au.action = 'form.create' order by au.id limit 1
$$;

create function app_hidden.def_published_by(actee text, def_id int) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.actor_json(a) from app_public.audits au join app_public.actors a on a.id = au.actor_id
  where au.actee_id = actee and au.action = 'form.update.publish' and au.details->'newDefId' = to_jsonb(def_id)
  order by au.id desc limit 1
$$;

create function app_hidden.def_publish_notes(actee text, def_id int) returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select au.notes from app_public.audits au
  where au.actee_id = actee and au.action = 'form.update.publish' and au.details->'newDefId' = to_jsonb(def_id)
    and app_hidden.actor_can('form.update', actee)
  order by au.id desc limit 1
$$;

create function app_hidden.public_link_count(form int) returns int
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select count(*)::int from app_public.public_links l join app_public.actors a on a.id = l.actor_id
  where l.form_id = form and a.deleted_at is null
    and exists (select 1 from app_private.sessions s where s.actor_id = a.id and s.expires_at > now())
$$;

/* Public Links: an actor of type public_link with a long-lived session, granted pub-link on one form. */
create function app_public.create_public_link(project int, xml_form text, display text, single boolean default false,
                                              properties jsonb default null) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, 'public_link.create');
  link app_public.actors;
begin
  if display is null or display = '' then
    perform app_hidden.problem(400.2, 'Required parameter displayName missing.', jsonb_build_object('field', 'displayName'));
  end if;
  insert into app_public.actors (type, actee_id, display_name)
  values ('public_link', app_hidden.new_actee('public_link', f.actee_id), display)
  returning * into link;
  insert into app_public.public_links (actor_id, form_id, once, created_by) values (link.id, f.id, coalesce(single, false), app_hidden.current_actor_id());
  insert into app_public.assignments (actor_id, role_id, actee_id)
  select link.id, r.id, f.actee_id from app_public.roles r where r.system = 'pub-link';
  perform app_hidden.start_session(link.id, interval '100 years');
  perform app_hidden.log_audit('public_link.create', link.actee_id, null);
  perform app_hidden.set_actor_properties(link, f.project_id, properties);
  return link.id;
end
$$;
comment on function app_public.create_public_link(int, text, text, boolean, jsonb) is 'POST /forms/:id/public-links: a Public Link actor with a session token and the pub-link role on the form, optionally with actor property values.';

create function app_hidden.public_link_of(project int, xml_form text, link int, verb text) returns app_public.actors
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form, verb);
  a app_public.actors;
begin
  select ac.* into a from app_public.actors ac join app_public.public_links l on l.actor_id = ac.id
  where ac.id = link and l.form_id = f.id and ac.deleted_at is null;
  if a is null then
    perform app_hidden.problem(404.1, 'Could not find the resource you were looking for.');
  end if;
  return a;
end
$$;
comment on function app_hidden.public_link_of(int, text, int, text) is 'A live Public Link of a form, after checking verb on the form: 404.1 (form or link), 403.1.';

create function app_public.delete_public_link(project int, xml_form text, link int) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  a app_public.actors := app_hidden.public_link_of(project, xml_form, link, 'public_link.delete');
begin
  delete from app_private.sessions where actor_id = a.id;
  delete from app_public.assignments where actor_id = a.id;
  update app_public.actors set deleted_at = clock_timestamp() where id = a.id;
  perform app_hidden.log_audit('public_link.delete', a.actee_id, null);
end
$$;
comment on function app_public.delete_public_link(int, text, int) is 'DELETE /forms/:id/public-links/:linkId: revokes and deletes a Public Link.';

create function app_hidden.public_link_token(link int) returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.token from app_private.sessions s join app_public.public_links l on l.actor_id = s.actor_id
  join app_public.forms f on f.id = l.form_id
  where s.actor_id = link and s.expires_at > now() and app_hidden.actor_can('public_link.read', f.actee_id)
  order by s.created_at desc limit 1
$$;
comment on function app_hidden.public_link_token(int) is 'The live session token of a Public Link (null once revoked), for those with public_link.read.';

grant execute on function
  app_hidden.form_for(int, text), app_hidden.form_for(int, text, text),
  app_public.create_form(int, text, jsonb, boolean, boolean, int),
  app_public.create_draft(int, text, text, jsonb, boolean, int, boolean),
  app_public.publish_draft(int, text), app_public.delete_draft(int, text),
  app_public.update_form(int, text, text, boolean), app_public.delete_form(int, text), app_public.restore_form(int, int),
  app_public.ensure_blob(bytea, text), app_public.set_draft_attachment(int, text, text, int),
  app_hidden.form_created_by(text), app_hidden.def_published_by(text, int), app_hidden.def_publish_notes(text, int),
  app_hidden.public_link_count(int), app_public.create_public_link(int, text, text, boolean, jsonb),
  app_hidden.public_link_of(int, text, int, text), app_public.delete_public_link(int, text, int),
  app_hidden.public_link_token(int)
to fieldbase_request;

/* Project extended metadata and the deep PUT of a project's forms (10-projects.sql calls them), and extension
 * points of the foundation, now that forms exist. */
create or replace function app_hidden.project_form_count(project_id int) returns int
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select count(*)::int from app_public.forms f where f.project_id = project_form_count.project_id and f.deleted_at is null $$;
comment on function app_hidden.project_form_count(int) is 'Live forms in a project (extended metadata).';
grant execute on function app_hidden.project_form_count(int) to fieldbase_request;

create or replace function app_hidden.form_json(f app_public.forms) returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('projectId', f.project_id, 'xmlFormId', f.xml_form_id, 'state', f.state,
    'name', d.name, 'version', d.version, 'hash', d.hash, 'publishedAt', app_hidden.iso(d.published_at),
    'createdAt', app_hidden.iso(f.created_at), 'updatedAt', app_hidden.iso(f.updated_at), 'deletedAt', app_hidden.iso(f.deleted_at))
  from (select 1) one left join app_public.form_defs d on d.id = coalesce(f.current_def_id, f.draft_def_id)
$$;
comment on function app_hidden.form_json(app_public.forms) is 'A form in Central''s JSON shape (for audit extended metadata and assignments).';

create or replace function app_hidden.actee_json(actee text) returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(
    (select app_hidden.actor_json(a) from app_public.actors a where a.actee_id = actee),
    (select jsonb_build_object('id', p.id, 'name', p.name, 'description', p.description, 'archived', p.archived,
              'keyId', p.key_id, 'createdAt', app_hidden.iso(p.created_at), 'updatedAt', app_hidden.iso(p.updated_at),
              'deletedAt', app_hidden.iso(p.deleted_at))
     from app_public.projects p where p.actee_id = actee),
    (select app_hidden.form_json(f) from app_public.forms f where f.actee_id = actee))
$$;
comment on function app_hidden.actee_json(text) is 'Whatever an actee id names (actor, project, form), in Central''s JSON shape.';

create or replace function app_hidden.deep_update_forms(project app_public.projects, forms jsonb) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  item jsonb;
  f app_public.forms;
  g jsonb;
  seen text[] := '{}';
  unlisted record;
begin
  if forms is null or jsonb_typeof(forms) = 'null' then
    return;
  end if;
  if jsonb_typeof(forms) <> 'array' then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (forms) to be (array)',
      jsonb_build_object('field', 'forms', 'value', forms, 'expected', 'array'));
  end if;
  -- First check the whole request, as Central does: the list names exactly the project's live forms, each once,
  -- and every assignment names an actor and an existing role.
  if (select count(*) from app_public.forms x where x.project_id = project.id and x.deleted_at is null) <> jsonb_array_length(forms) then
    perform app_hidden.problem(501.2, 'This endpoint does not allow creation or deletion of forms. Please check that you have sent the correct detail for all forms in this project.');
  end if;
  for item in select * from jsonb_array_elements(forms) loop
    if jsonb_typeof(item) = 'object' and (item->>'xmlFormId') = any (seen) then
      perform app_hidden.problem(400.8, format('Unexpected xmlFormId value %s; duplicate value', item->>'xmlFormId'),
        jsonb_build_object('field', 'xmlFormId', 'value', item->'xmlFormId', 'reason', 'duplicate value'));
    end if;
    if jsonb_typeof(item) <> 'object' or not exists (select 1 from app_public.forms x
        where x.project_id = project.id and x.deleted_at is null and x.xml_form_id = item->>'xmlFormId') then
      perform app_hidden.problem(501.2, 'This endpoint does not allow creation or deletion of forms. Please check that you have sent the correct detail for all forms in this project.');
    end if;
    seen := seen || (item->>'xmlFormId');
    continue when jsonb_typeof(item->'assignments') is distinct from 'array';
    for g in select * from jsonb_array_elements(item->'assignments') loop
      if jsonb_typeof(g->'actorId') is distinct from 'number' and jsonb_typeof(g->'actorId') is distinct from 'string' then
        perform app_hidden.problem(400.2, 'Required parameter assignment actorId missing.', '{"field":"assignment actorId"}');
      end if;
      if jsonb_typeof(g->'roleId') is distinct from 'number' and jsonb_typeof(g->'roleId') is distinct from 'string' then
        perform app_hidden.problem(400.2, 'Required parameter assignment roleId missing.', '{"field":"assignment roleId"}');
      end if;
      if not exists (select 1 from app_public.roles r where r.id::text = g->>'roleId') then
        perform app_hidden.problem(400.14, format('The given roleId %s for roles does not exist.', g->>'roleId'),
          jsonb_build_object('field', 'roleId', 'value', g->'roleId', 'table', 'roles'));
      end if;
      if not exists (select 1 from app_public.actors a where a.id::text = g->>'actorId' and a.deleted_at is null) then
        perform app_hidden.problem(400.14, format('The given actorId %s for actors does not exist.', g->>'actorId'),
          jsonb_build_object('field', 'actorId', 'value', g->'actorId', 'table', 'actors'));
      end if;
    end loop;
  end loop;

  -- Then apply it: a bad state (400.8) or a role the caller may not hand out (403.1) rolls the whole PUT back.
  for item in select * from jsonb_array_elements(forms) loop
    f := app_hidden.form_for(project.id, item->>'xmlFormId');
    if item ? 'state' and jsonb_typeof(item->'state') <> 'null' then
      if jsonb_typeof(item->'state') <> 'string' then
        perform app_hidden.problem(400.8, format('Unexpected state value %s; not a recognized form state.', item->'state'),
          jsonb_build_object('field', 'state', 'value', item->'state', 'reason', 'not a recognized form state.'));
      end if;
      perform app_public.update_form(project.id, f.xml_form_id, item->>'state', null);
    end if;
    continue when jsonb_typeof(item->'assignments') is distinct from 'array';
    -- Omitted assignments are revoked, except Form Viewer and Public Link grants (Enketo previews, Public Links).
    for unlisted in
      select a.role_id, a.actor_id from app_public.assignments a join app_public.roles r on r.id = a.role_id
      where a.actee_id = f.actee_id and coalesce(r.system, '') not in ('formview', 'pub-link')
        and not exists (select 1 from jsonb_array_elements(item->'assignments') listed
                        where listed->>'roleId' = a.role_id::text and listed->>'actorId' = a.actor_id::text)
      order by a.role_id, a.actor_id
    loop
      perform app_public.unassign_role(unlisted.role_id::text, unlisted.actor_id, f.actee_id);
    end loop;
    for g in select * from jsonb_array_elements(item->'assignments') loop
      if not exists (select 1 from app_public.assignments a where a.actee_id = f.actee_id
                     and a.role_id::text = g->>'roleId' and a.actor_id::text = g->>'actorId') then
        perform app_public.assign_role(g->>'roleId', (g->>'actorId')::int, f.actee_id);
      end if;
    end loop;
  end loop;
end
$$;
comment on function app_hidden.deep_update_forms(app_public.projects, jsonb) is 'Deep PUT of a project''s forms: each form''s state and its role assignments; 501.2 unless the list names exactly the live forms.';
grant execute on function app_hidden.form_json(app_public.forms) to fieldbase_request;
