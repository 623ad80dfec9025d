/*
 * Entities from submissions. Contract for the submissions work:
 *
 *   app_hidden.process_submission_entities(submission_def_id bigint, event text default 'submission.create',
 *                                          actor int default null, force boolean default false)
 *
 * Inputs: the submission version (its XML as received, in submission_defs.xml: entity blocks carry their
 * dataset, id, create/update, baseVersion, trunkVersion and branchId as XML attributes, which the structured
 * jsonb data does not keep) and the form version's entity declarations (form_defs.entities: datasets[{name,
 * actions, path}] and properties[{path, property}], recorded per dataset at publish in dataset_form_defs and
 * ds_property_fields). event is Central's triggering action: 'submission.create', 'submission.update.version'
 * (an edit), 'submission.update' (a review; only approvals create entities, and only in approvalRequired
 * datasets) or 'submission.backlog.reprocess'. actor is whom the audit rows name (the submitter by default).
 * Effects: creates or updates the entities the submission's blocks ask for (entity.create /
 * entity.update.version audits naming submissionId and submissionDefId), holds offline updates that arrive
 * before their predecessors (submission.backlog.hold; they run when the predecessor arrives, or are forced
 * after 5 days by app_hidden.process_entity_backlog), or, when anything fails, changes nothing and logs
 * entity.error with Central's problem. It never raises, so the submission is never lost. A submission that
 * already produced an entity version, or is held, is skipped, so running it twice is harmless.
 *
 * The triggers below queue it (graphile-worker task submission__process_entities, one job per submission
 * version by job_key) when a submission version is stored or a submission is approved.
 */
drop table if exists app_private.entity_submission_backlog cascade;
drop function if exists app_hidden.submission_entities_done(int) cascade;
drop function if exists app_hidden.entity_xpath(text) cascade;
drop function if exists app_hidden.xml_string(text, xml) cascade;
drop function if exists app_hidden.submission_entity_blocks(bigint) cascade;
drop function if exists app_hidden.problem_parts(text, text, text, text) cascade;
drop function if exists app_hidden.create_entity_from_submission(app_public.datasets, jsonb, bigint, app_public.submission_defs, text, boolean) cascade;
drop function if exists app_hidden.update_entity_from_submission(app_public.datasets, jsonb, bigint, app_public.submission_defs, text, boolean, boolean) cascade;
drop function if exists app_hidden.process_entity_block(jsonb, bigint, app_public.submission_defs, app_public.forms, text, boolean) cascade;
drop function if exists app_hidden.process_submission_entities(bigint, text, int, boolean) cascade;
drop function if exists app_hidden.process_entity_backlog(boolean, interval) cascade;
drop function if exists app_hidden.queue_submission_entities(bigint, text, int) cascade;
drop function if exists app_hidden.queue_entities_on_submission() cascade;
drop function if exists app_hidden.queue_entities_on_approval() cascade;

create table app_private.entity_submission_backlog (
  submission_def_id int primary key references app_public.submission_defs (id) on delete cascade,
  submission_id int not null,
  entity_uuid uuid not null,
  branch_id uuid not null,
  branch_base_version int not null,
  event text not null,
  actor_id int,
  logged_at timestamptz(3) not null default clock_timestamp()
);
comment on table app_private.entity_submission_backlog is 'Offline entity updates held until the update before them in their branch arrives (or 5 days pass).';
create index entity_submission_backlog_branch_idx on app_private.entity_submission_backlog (branch_id, branch_base_version);
create index entity_submission_backlog_entity_idx on app_private.entity_submission_backlog (entity_uuid, branch_base_version);

create function app_hidden.entity_xpath(path text) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  -- '/household_member/meta' → /*/*[local-name()='household_member']/*[local-name()='meta'] (namespace-blind).
  select '/*' || coalesce(string_agg(format('/*[local-name()=''%s'']', seg), '' order by n), '')
  from unnest(string_to_array(trim(both '/' from path), '/')) with ordinality s(seg, n) where seg <> ''
$$;

create function app_hidden.xml_string(expr text, doc xml) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$ select (xpath('string(' || expr || ')', doc))[1]::text $$;

create function app_hidden.submission_entity_blocks(def_id bigint) returns setof jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sd app_public.submission_defs;
  decl jsonb;
  doc xml;
  block jsonb;
  ctx text;
  n int;
  i int;
  entity text;
  prop jsonb;
  owner_path text;
  rel text;
  data jsonb;
  attr text;
  sys jsonb;
begin
  select * into sd from app_public.submission_defs where id = def_id;
  select entities into decl from app_public.form_defs where id = sd.form_def_id;
  if decl is null then
    return;
  end if;
  doc := xmlparse(document sd.xml);
  for block in select distinct on (b->>'path') b from jsonb_array_elements(decl->'datasets') b loop
    ctx := app_hidden.entity_xpath(block->>'path');
    n := (xpath('count(' || ctx || ')', doc))[1]::text::numeric::int;
    for i in 1 .. n loop
      entity := format('(%s)[%s]/*[local-name()=''meta'']/*[local-name()=''entity'']', ctx, i);
      continue when (xpath('count(' || entity || ')', doc))[1]::text::numeric = 0;
      sys := '{}';
      foreach attr in array array['dataset', 'id', 'create', 'update', 'baseVersion', 'trunkVersion', 'branchId'] loop
        if (xpath(format('count(%s/@*[local-name()=''%s''])', entity, attr), doc))[1]::text::numeric > 0 then
          sys := sys || jsonb_build_object(attr, app_hidden.xml_string(format('%s/@*[local-name()=''%s'']', entity, attr), doc));
        end if;
      end loop;
      if (xpath(format('count(%s/*[local-name()=''label''])', entity), doc))[1]::text::numeric > 0 then
        sys := sys || jsonb_build_object('label', app_hidden.xml_string(entity || '/*[local-name()=''label'']', doc));
      end if;
      data := '{}';
      for prop in select x from jsonb_array_elements(coalesce(decl->'properties', '[]')) x loop
        select b->>'path' into owner_path from jsonb_array_elements(decl->'datasets') b
        where prop->>'path' like case when b->>'path' = '/' then '/%' else (b->>'path') || '/%' end
        order by length(b->>'path') desc limit 1;
        continue when owner_path is distinct from block->>'path';
        rel := substr(prop->>'path', case when owner_path = '/' then 1 else length(owner_path) + 1 end);
        if (xpath(format('count((%s)[%s]%s)', ctx, i, substr(app_hidden.entity_xpath(rel), 3)), doc))[1]::text::numeric > 0 then
          data := data || jsonb_build_object(prop->>'property',
            app_hidden.xml_string(format('(%s)[%s]%s', ctx, i, substr(app_hidden.entity_xpath(rel), 3)), doc));
        end if;
      end loop;
      return next jsonb_build_object('system', sys, 'data', data);
    end loop;
  end loop;
end
$$;
comment on function app_hidden.submission_entity_blocks(bigint) is 'The entity blocks of a submission version, in declaration and document order: {system: {dataset, id, create, update, baseVersion, trunkVersion, branchId, label}, data: {property: value}}.';

create function app_hidden.problem_parts(state text, hint text, message text, detail text) returns jsonb
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  -- A raised problem as Central serializes it in entity.error audits.
  if state like 'FB%' and hint is not null then
    return jsonb_build_object('problemCode', hint::numeric, 'problemDetails', nullif(coalesce(detail, '{}')::jsonb, '{}'::jsonb));
  end if;
  return null;
end
$$;

create function app_hidden.create_entity_from_submission(d app_public.datasets, block jsonb, source bigint,
                                                         sd app_public.submission_defs, event text, force boolean)
returns app_public.entities
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sys jsonb := block->'system';
  c app_hidden.client_entity;
  e app_public.entities;
begin
  -- approvalRequired datasets create on approval only; others on receipt only.
  if (d.approval_required and event <> 'submission.update') or (not d.approval_required and event = 'submission.update') then
    return null;
  end if;
  c.uuid := app_hidden.normalize_uuid(sys->>'id');
  c.label := sys->>'label';
  if force and coalesce(trim(c.label), '') = '' then
    c.label := 'auto generated';
  end if;
  if coalesce(trim(c.label), '') = '' then
    perform app_hidden.problem(400.2, 'Required parameter label missing.', '{"field":"label"}');
  end if;
  c.data := block->'data';
  if exists (select 1 from app_public.entities x where x.uuid = c.uuid and x.deleted_at is null) then
    perform app_hidden.problem(409.3, format('A resource already exists with uuid value(s) of %s.', c.uuid),
      jsonb_build_object('fields', jsonb_build_array('uuid'), 'values', jsonb_build_array(c.uuid)));
  end if;
  perform app_hidden.assert_uuids_unused(array[c.uuid]);
  if force then
    c.branch_id := nullif(sys->>'branchId', '')::uuid;
    c.trunk_version := nullif(sys->>'trunkVersion', '')::int;
  end if;
  e := app_hidden.insert_entity(d, c, source, sd.submitter_id, sd.user_agent, null,
                                case when force then nullif(sys->>'baseVersion', '')::int end);
  perform app_hidden.audit_entity('entity.create', d, e,
    jsonb_build_object('submissionId', sd.submission_id, 'submissionDefId', sd.id));
  return e;
end
$$;

create function app_hidden.update_entity_from_submission(d app_public.datasets, block jsonb, source bigint,
                                                         sd app_public.submission_defs, event text, force boolean,
                                                         create_as_update boolean default false)
returns app_public.entities
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sys jsonb := block->'system';
  c app_hidden.client_entity;
  e app_public.entities;
  cur app_public.entity_defs;
  base int;
  held boolean := false;
begin
  if event not in ('submission.create', 'submission.update.version', 'submission.backlog.reprocess') then
    return null;
  end if;
  c.uuid := app_hidden.normalize_uuid(sys->>'id');
  c.label := nullif(trim(coalesce(sys->>'label', '')), '');
  c.label := case when c.label is null then null else sys->>'label' end;
  if create_as_update and c.label is null then
    perform app_hidden.problem(400.2, 'Required parameter label missing.', '{"field":"label"}');
  end if;
  c.data := block->'data';
  if coalesce(trim(sys->>'baseVersion'), '') = '' then
    if not create_as_update then
      perform app_hidden.problem(400.2, 'Required parameter baseVersion missing.', '{"field":"baseVersion"}');
    end if;
  elsif sys->>'baseVersion' !~ '^\d{1,9}$' then
    perform app_hidden.problem(400.11, 'Invalid input data type: expected (baseVersion) to be (integer)',
      jsonb_build_object('field', 'baseVersion', 'expected', 'integer'));
  else
    c.base_version := (sys->>'baseVersion')::int;
  end if;
  if coalesce(sys->>'branchId', '') <> '' then
    c.branch_id := app_hidden.normalize_uuid(sys->>'branchId', 'branchId');
  end if;
  if coalesce(sys->>'trunkVersion', '') <> '' then
    if c.branch_id is null then
      perform app_hidden.problem(400.2, 'Required parameter branchId missing.', '{"field":"branchId"}');
    elsif sys->>'trunkVersion' !~ '^\d{1,9}$' then
      perform app_hidden.problem(400.11, 'Invalid input data type: expected (trunkVersion) to be (integer)',
        jsonb_build_object('field', 'trunkVersion', 'expected', 'integer'));
    end if;
    c.trunk_version := (sys->>'trunkVersion')::int;
  end if;
  if create_as_update then
    c.branch_id := null; c.trunk_version := null;
  end if;

  select * into e from app_public.entities where dataset_id = d.id and uuid = c.uuid and deleted_at is null;
  -- Which server version was this update based on?
  if create_as_update then
    base := (select version from app_public.entity_defs where entity_id = e.id and current);
  elsif c.branch_id is null then
    base := (select version from app_public.entity_defs where entity_id = e.id and version = c.base_version);
    if base is null and e.id is not null then
      perform app_hidden.problem(404.9, format('Base version (%s) does not exist for entity UUID (%s) in dataset (%s).', c.base_version, c.uuid, d.name),
        jsonb_build_object('baseVersion', c.base_version, 'entityUuid', c.uuid, 'datasetName', d.name));
    end if;
  else
    base := (select x.version from app_public.entity_defs x where x.entity_id = e.id and
      case when c.base_version = 1 then x.version = 1
           when c.base_version = c.trunk_version then x.version = c.base_version
           else x.branch_id = c.branch_id and x.branch_base_version = c.base_version - 1 end);
    if base is null and force then
      base := (select version from app_public.entity_defs where entity_id = e.id and current);
    elsif base is null then
      -- Its predecessor in the branch has not arrived: hold it.
      insert into app_private.entity_submission_backlog (submission_def_id, submission_id, entity_uuid, branch_id,
                                                         branch_base_version, event, actor_id)
      values (sd.id, sd.submission_id, c.uuid, c.branch_id, c.base_version, event, app_hidden.current_actor_id());
      perform app_hidden.log_audit('submission.backlog.hold', (select actee_id from app_public.forms where id = sd.form_id),
        jsonb_build_object('submissionId', sd.submission_id, 'submissionDefId', sd.id));
      held := true;
    end if;
  end if;
  if held then
    return null;
  end if;
  if e.id is null then
    if exists (select 1 from app_public.entities where dataset_id = d.id and uuid = c.uuid) then
      perform app_hidden.problem(404.11, format('The entity with UUID (%s) has been deleted.', c.uuid), jsonb_build_object('entityUuid', c.uuid));
    end if;
    perform app_hidden.problem(404.8, format('The entity with UUID (%s) specified in the submission does not exist in the dataset (%s).', c.uuid, d.name),
      jsonb_build_object('entityUuid', c.uuid, 'datasetName', d.name));
  end if;
  select * into cur from app_public.entity_defs where entity_id = e.id and current;
  if c.trunk_version is not null and c.trunk_version > cur.version then
    perform app_hidden.problem(404.9, format('Base version (trunkVersion=%s) does not exist for entity UUID (%s) in dataset (%s).', c.trunk_version, c.uuid, d.name),
      jsonb_build_object('baseVersion', 'trunkVersion=' || c.trunk_version, 'entityUuid', c.uuid, 'datasetName', d.name));
  end if;
  e := app_hidden.insert_entity_version(d, e, c, base, source, sd.submitter_id, sd.user_agent, create_as_update);
  if create_as_update then
    update app_public.entity_def_sources set details = coalesce(details, '{}') || '{"action":"create"}' where id = source;
  end if;
  perform app_hidden.audit_entity('entity.update.version', d, e,
    jsonb_build_object('submissionId', sd.submission_id, 'submissionDefId', sd.id));
  return e;
end
$$;

create function app_hidden.process_entity_block(block jsonb, source bigint, sd app_public.submission_defs,
                                                f app_public.forms, event text, force boolean)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sys jsonb := block->'system';
  d app_public.datasets;
  permitted jsonb;
  action text;
  e app_public.entities;
  cur app_public.entity_defs;
  next_held app_private.entity_submission_backlog;
  wants_create boolean := coalesce(sys->>'create', '') in ('1', 'true');
  wants_update boolean := coalesce(sys->>'update', '') in ('1', 'true');
  state text; hint text; detail text; msg text;
  retry_as_create boolean;
begin
  if coalesce(trim(sys->>'dataset'), '') = '' then
    perform app_hidden.problem(400.2, 'Required parameter dataset missing.', '{"field":"dataset"}');
  end if;
  select * into d from app_public.datasets
  where project_id = f.project_id and name = sys->>'dataset' and deleted_at is null and published_at is not null;
  if d is null then
    perform app_hidden.problem(404.7, format('The dataset (%s) specified in the submission does not exist.', sys->>'dataset'),
      jsonb_build_object('datasetName', sys->>'dataset'));
  end if;
  permitted := coalesce((select actions from app_public.dataset_form_defs where dataset_id = d.id and form_def_id = sd.form_def_id), '[]');
  foreach action in array array['create', 'update'] loop
    if coalesce(sys->>action, '') in ('1', 'true') and not permitted ? action then
      perform app_hidden.problem(403.2, format('The submission attempts an entity %s, but the form does not permit that action. The form permits the following actions: %s.',
        action, (select string_agg(a, ', ') from jsonb_array_elements_text(permitted) a)),
        jsonb_build_object('action', action, 'permitted', permitted));
    end if;
  end loop;
  perform app_hidden.lock_entity(app_hidden.normalize_uuid(sys->>'id'));

  if wants_update then
    begin
      e := app_hidden.update_entity_from_submission(d, block, source, sd, event, force);
    exception when others then
      get stacked diagnostics state = returned_sqlstate, hint = pg_exception_hint, detail = pg_exception_detail, msg = message_text;
      retry_as_create := (wants_create or force) and case when hint = '404.8' then true
                                                          when hint = '400.2' then detail::jsonb->>'field' = 'baseVersion'
                                                          else false end;
      if retry_as_create then
        e := app_hidden.create_entity_from_submission(d, block, source, sd, event, force);
      else
        raise exception using errcode = state, message = msg, hint = hint, detail = detail;
      end if;
    end;
  elsif wants_create then
    begin
      e := app_hidden.create_entity_from_submission(d, block, source, sd, event, force);
    exception when others then
      get stacked diagnostics state = returned_sqlstate, hint = pg_exception_hint, detail = pg_exception_detail, msg = message_text;
      -- A create arriving after a forced update-as-create made the entity is applied as an update.
      if hint = '409.3' and exists (
        select 1 from app_public.entities x join app_public.entity_defs r on r.entity_id = x.id and r.root
        join app_public.entity_def_sources s on s.id = r.source_id
        where x.uuid = app_hidden.normalize_uuid(sys->>'id') and x.dataset_id = d.id and s.force_processed) then
        e := app_hidden.update_entity_from_submission(d, block, source, sd, event, force, true);
      else
        raise exception using errcode = state, message = msg, hint = hint, detail = detail;
      end if;
    end;
  end if;

  -- Release the next held update of this branch, if it is waiting for this one.
  if e.id is not null and not force then
    select * into cur from app_public.entity_defs where entity_id = e.id and current;
    if cur.branch_id is null then
      select * into next_held from app_private.entity_submission_backlog
      where entity_uuid = e.uuid and branch_base_version = 1 limit 1;
    else
      select * into next_held from app_private.entity_submission_backlog
      where branch_id = cur.branch_id and branch_base_version = coalesce(cur.branch_base_version, 0) + 1 limit 1;
    end if;
    if next_held.submission_def_id is not null then
      delete from app_private.entity_submission_backlog where submission_def_id = next_held.submission_def_id;
      perform app_hidden.log_audit('submission.backlog.reprocess', f.actee_id,
        jsonb_build_object('submissionId', next_held.submission_id, 'submissionDefId', next_held.submission_def_id));
      perform app_hidden.queue_submission_entities(next_held.submission_def_id, 'submission.backlog.reprocess', next_held.actor_id);
    end if;
  end if;
end
$$;

create function app_hidden.submission_entities_done(submission int) returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select exists (select 1 from app_public.entity_defs x join app_public.entity_def_sources s on s.id = x.source_id
                 join app_public.submission_defs y on y.id = s.submission_def_id where y.submission_id = submission)
      or exists (select 1 from app_private.entity_submission_backlog b where b.submission_id = submission)
$$;
comment on function app_hidden.submission_entities_done(int) is 'Whether a submission already made an entity version or is held in the offline backlog (then it is not processed again).';

create function app_hidden.process_submission_entities(submission_def_id bigint, event text default 'submission.create',
                                                                  actor int default null, force boolean default false)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  sd app_public.submission_defs;
  sub app_public.submissions;
  f app_public.forms;
  previous_actor text := current_setting('fieldbase.actor_id', true);
  blocks jsonb[];
  src bigint;
  errors jsonb := '[]';
  i int;
  state text; hint text; detail text; msg text;
  problem jsonb;
begin
  select * into sd from app_public.submission_defs x where x.id = process_submission_entities.submission_def_id;
  select * into sub from app_public.submissions where id = sd.submission_id;
  select * into f from app_public.forms where id = sd.form_id;
  if sd.id is null or sub.deleted_at is not null or sub.draft or f.deleted_at is not null
     or (select entities from app_public.form_defs where id = sd.form_def_id) is null then
    return;
  end if;
  -- Once a submission made an entity version, or while it is held, it is not processed again.
  if app_hidden.submission_entities_done(sub.id) then
    return;
  end if;
  perform set_config('fieldbase.actor_id', coalesce(actor, sd.submitter_id)::text, true);
  begin
    blocks := array(select app_hidden.submission_entity_blocks(sd.id));
    -- Every entity the submission names is locked before anything is written (see the top of this file).
    perform app_hidden.lock_entities(array(select app_hidden.uuid_or_null(b->'system'->>'id') from unnest(blocks) b));
    -- Checked again under the locks: a concurrent run for the same submission has committed by now.
    if not app_hidden.submission_entities_done(sub.id) then
      src := app_hidden.new_entity_source('submission', sd.id, jsonb_build_object('submission', jsonb_build_object('instanceId', sd.instance_id)), force);
      for i in 1 .. coalesce(array_length(blocks, 1), 0) loop
        begin
          perform app_hidden.process_entity_block(blocks[i], src, sd, f, event, force);
        exception when others then
          get stacked diagnostics state = returned_sqlstate, hint = pg_exception_hint, detail = pg_exception_detail, msg = message_text;
          if array_length(blocks, 1) = 1 or state in ('40P01', '40001', '55P03') then
            raise exception using errcode = state, message = msg, hint = hint, detail = detail;
          end if;
          errors := errors || jsonb_build_object('index', i - 1, 'errorMessage', msg,
                                                 'problem', app_hidden.problem_parts(state, hint, msg, detail));
        end;
      end loop;
      if jsonb_array_length(errors) > 0 then
        perform app_hidden.problem(400.43, format('Failed to process %s of %s entities in submission: %s', jsonb_array_length(errors),
          array_length(blocks, 1), (select string_agg(format('(Entity %s) %s', (x->>'index')::int + 1, x->>'errorMessage'), ' ')
                                    from jsonb_array_elements(errors) x)),
          jsonb_build_object('count', jsonb_array_length(errors), 'total', array_length(blocks, 1), 'errors', errors));
      end if;
      -- A source no version used (nothing to do, or held) is not kept.
      delete from app_public.entity_def_sources s where s.id = src and not exists (select 1 from app_public.entity_defs x where x.source_id = src);
    end if;
  exception when others then
    get stacked diagnostics state = returned_sqlstate, hint = pg_exception_hint, detail = pg_exception_detail, msg = message_text;
    -- A deadlock or serialization failure says nothing about the submission: the job fails and is retried.
    if state in ('40P01', '40001', '55P03') then
      raise;
    end if;
    -- Every change above is undone; the submission stays, and the failure is recorded as Central does.
    problem := app_hidden.problem_parts(state, hint, msg, detail);
    perform app_hidden.log_audit('entity.error', f.actee_id, jsonb_build_object(
      'submissionId', sd.submission_id, 'submissionDefId', sd.id, 'errorMessage', msg, 'problem', problem));
  end;
  perform set_config('fieldbase.actor_id', coalesce(previous_actor, ''), true);
end
$$;
comment on function app_hidden.process_submission_entities(bigint, text, int, boolean) is
  'Creates/updates the entities a submission version declares (see the contract at the top of 52-entity-submissions.sql) under their locks; never raises but for deadlocks and serialization failures (the job retries), logs entity.error instead.';

create function app_hidden.queue_submission_entities(def_id bigint, event text, actor int default null) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, public, pg_temp
as $$
begin
  perform graphile_worker.add_job('submission__process_entities',
    json_build_object('submissionDefId', def_id, 'event', event, 'actorId', actor),
    job_key := 'submission-entities-' || def_id || '-' || event);
end
$$;
comment on function app_hidden.queue_submission_entities(bigint, text, int) is 'Queues process_submission_entities for a submission version (deduplicated per version and event).';

create function app_hidden.process_entity_backlog(force_all boolean default false, older_than interval default interval '5 days') returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  held app_private.entity_submission_backlog;
  n int := 0;
begin
  -- The entities first (in lock order), so that a held update released meanwhile is seen as gone.
  perform app_hidden.lock_entities(array(select b.entity_uuid from app_private.entity_submission_backlog b
                                         where force_all or b.logged_at < now() - older_than));
  -- Held updates whose predecessors never came are applied anyway, in branch order (Central: after 5 days).
  for held in select * from app_private.entity_submission_backlog
              where force_all or logged_at < now() - older_than order by branch_id, branch_base_version loop
    delete from app_private.entity_submission_backlog where submission_def_id = held.submission_def_id;
    continue when not found;
    perform set_config('fieldbase.actor_id', coalesce(held.actor_id::text, ''), true);
    perform app_hidden.log_audit('submission.backlog.force',
      (select f.actee_id from app_public.forms f join app_public.submission_defs sd on sd.form_id = f.id where sd.id = held.submission_def_id),
      jsonb_build_object('submissionId', held.submission_id, 'submissionDefId', held.submission_def_id));
    perform app_hidden.process_submission_entities(held.submission_def_id, held.event, held.actor_id, true);
    n := n + 1;
  end loop;
  return n;
end
$$;
comment on function app_hidden.process_entity_backlog(boolean, interval) is 'Force-processes held offline updates older than older_than (all of them with force_all); run hourly by the worker.';

/* Queueing: every stored version of a submission to a form that declares entities, and every approval. */
create function app_hidden.queue_entities_on_submission() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select 1 from app_public.form_defs fd where fd.id = new.form_def_id and fd.entities is not null)
     and not (select draft from app_public.submissions where id = new.submission_id) then
    perform app_hidden.queue_submission_entities(new.id,
      case when exists (select 1 from app_public.submission_defs x where x.submission_id = new.submission_id and x.id <> new.id)
           then 'submission.update.version' else 'submission.create' end,
      coalesce(app_hidden.current_actor_id(), new.submitter_id));
  end if;
  return null;
end
$$;
create trigger queue_entities_on_submission after insert on app_public.submission_defs
  for each row execute function app_hidden.queue_entities_on_submission();

create function app_hidden.queue_entities_on_approval() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  def_id bigint;
begin
  select sd.id into def_id from app_public.submission_defs sd join app_public.form_defs fd on fd.id = sd.form_def_id
  where sd.submission_id = new.id and sd.current and fd.entities is not null;
  if def_id is not null and not new.draft then
    perform app_hidden.queue_submission_entities(def_id, 'submission.update', app_hidden.current_actor_id());
  end if;
  return null;
end
$$;
create trigger queue_entities_on_approval after update of review_state on app_public.submissions
  for each row when (new.review_state = 'approved' and old.review_state is distinct from 'approved')
  execute function app_hidden.queue_entities_on_approval();
