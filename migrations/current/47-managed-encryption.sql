/*
 * Project managed encryption (POST /v1/projects/:id/key): the server generates an RSA key pair, seals the
 * private key under the caller's passphrase (server/formats/decrypt.ts) and hands both here; the project
 * gets the key, and every form of the project without a self-supplied key gets a new published version
 * (and a new draft) whose XML carries the public key. The sealed private key is only ever read back by the
 * CSV export, which opens it with the passphrase given for that one request.
 */
drop function if exists app_public.enable_managed_encryption(int, text, jsonb, text) cascade;
drop function if exists app_public.set_form_managed_key(int, text, text, jsonb, text, jsonb) cascade;
drop function if exists app_hidden.managed_private_keys(int[]) cascade;

create function app_public.enable_managed_encryption(project int, public_key text, sealed jsonb, passphrase_hint text)
returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  p app_public.projects := app_hidden.live_project(project, 'project.update');
  new_key int;
begin
  -- Serialise with concurrent enabling of the same project.
  select * into p from app_public.projects where id = p.id for update;
  if p.key_id is not null then
    perform app_hidden.problem(409.4, 'Could not activate feature (managed encryption) as it was already activated',
      jsonb_build_object('feature', 'managed encryption'));
  end if;
  insert into app_public.keys (public, private, managed, hint)
  values (public_key, sealed, true, passphrase_hint)
  returning id into new_key;
  update app_public.projects set key_id = new_key, updated_at = clock_timestamp() where id = p.id;
  perform app_hidden.log_audit('project.update', p.actee_id, jsonb_build_object('encrypted', true));
  return new_key;
end
$$;
comment on function app_public.enable_managed_encryption(int, text, jsonb, text) is
  'POST /projects/:id/key: stores the managed key pair (private half sealed under the passphrase) and sets it on the project; 409.4 when already enabled.';

create function app_public.set_form_managed_key(project int, xml_form text, published_xml text, published_parsed jsonb,
                                                draft_xml text, draft_parsed jsonb)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  f app_public.forms := app_hidden.form_for(project, xml_form);
  p app_public.projects := app_hidden.live_project(project, 'project.update');
  base app_public.forms;
  def app_public.form_defs;
  old_draft app_public.form_defs;
begin
  if p.key_id is null or (published_xml is null and draft_xml is null) then
    return;
  end if;
  if published_xml is not null and f.current_def_id is not null then
    -- A new published version carrying the key; attachments carry over from the published version.
    base := f;
    base.draft_def_id := null;
    def := app_hidden.insert_form_def(base, published_xml, published_parsed, (select xls_blob_id from app_public.form_defs where id = f.current_def_id));
    update app_public.form_defs set published_at = clock_timestamp() where id = def.id;
    update app_public.forms set current_def_id = def.id, updated_at = clock_timestamp() where id = f.id;
    perform app_hidden.log_audit('form.update.publish', f.actee_id, jsonb_build_object('oldDefId', f.current_def_id, 'newDefId', def.id));
  end if;
  if draft_xml is not null and f.draft_def_id is not null then
    select * into old_draft from app_public.form_defs where id = f.draft_def_id;
    def := app_hidden.insert_form_def(f, draft_xml, draft_parsed, old_draft.xls_blob_id);
    update app_public.form_defs set draft_token = null where id = old_draft.id;
    update app_public.form_defs set draft_token = old_draft.draft_token, enketo_id = old_draft.enketo_id where id = def.id;
    update app_public.forms set draft_def_id = def.id where id = f.id;
    perform app_hidden.drop_unused_def(old_draft.id);
  end if;
end
$$;
comment on function app_public.set_form_managed_key(int, text, text, jsonb, text, jsonb) is
  'Managed encryption: re-publishes a form (and replaces its draft) with the XML carrying the project''s public key.';

create function app_hidden.managed_private_keys(ids int[]) returns table (id int, private jsonb)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select k.id, k.private from app_public.keys k
  where k.id = any (ids) and k.managed
    and exists (select 1 from app_public.form_defs fd join app_public.forms f on f.id = fd.form_id
                where fd.key_id = k.id and app_hidden.actor_can('submission.read', f.actee_id))
$$;
comment on function app_hidden.managed_private_keys(int[]) is 'Sealed private halves of managed keys (useless without their passphrase) of forms whose submissions the actor may read, for decrypting exports.';

grant execute on function
  app_public.enable_managed_encryption(int, text, jsonb, text),
  app_public.set_form_managed_key(int, text, text, jsonb, text, jsonb),
  app_hidden.managed_private_keys(int[])
to fieldbase_request;

-- The sealed private key stays out of reach of plain selects: readers see keys without it.
revoke select on app_public.keys from fieldbase_request;
grant select (id, public, managed, hint, created_at) on app_public.keys to fieldbase_request;
