/*
 * The usage report preview (GET /v1/analytics/preview): Central's metrics template, every metric from real
 * data; it comes last because it reads every area's tables.
 *
 * Definitions follow Central's usage report query by query, including where it counts more than one might
 * expect: soft-deleted forms and submissions, draft (test) submissions and every form version are counted,
 * as Central's queries do not filter them out. "recent" is app_hidden.recent_cutoff() (45 days, 12-config.sql):
 * for a form it means "received a submission within the window", for a submission/entity/event "created or
 * logged within the window". Durations are seconds (Central's database driver turns intervals into seconds).
 */

/* The usage report preview (Central's metrics template), from real data. "recent" means the last 45 days. */

create or replace function app_hidden.recent_cutoff() returns timestamptz
language sql stable set search_path = pg_catalog, pg_temp
as $$ select (current_date - 45)::timestamptz $$;

create or replace function app_hidden.total_recent(total bigint, recent bigint) returns jsonb
language sql immutable set search_path = pg_catalog, pg_temp
as $$ select jsonb_build_object('recent', coalesce(recent, 0), 'total', coalesce(total, 0)) $$;

create or replace function app_hidden.actor_recently_active(actor int) returns boolean
language sql stable set search_path = pg_catalog, pg_temp
as $$
  select exists (select 1 from app_public.audits au where au.actor_id = actor and au.logged_at >= app_hidden.recent_cutoff())
$$;

drop function if exists app_hidden.analytics_form_flags(int) cascade;
drop function if exists app_hidden.analytics_project_users_extras(int) cascade;
drop function if exists app_hidden.analytics_project_forms(int) cascade;
drop function if exists app_hidden.analytics_project_submissions(int) cascade;
drop function if exists app_hidden.analytics_dataset(app_public.datasets) cascade;
drop function if exists app_hidden.analytics_project_datasets(int) cascade;
drop function if exists app_hidden.client_audit_attachments() cascade;
drop function if exists app_hidden.csv_data_rows(bytea) cascade;
drop function if exists app_hidden.seconds(interval) cascade;

create function app_hidden.seconds(duration interval) returns numeric
language sql immutable set search_path = pg_catalog, pg_temp
as $$ select extract(epoch from duration) $$;
comment on function app_hidden.seconds(interval) is 'An interval as a number of seconds (null stays null), as usage report durations are sent.';

/* Per form of a project: what its versions contain and whether it received a submission recently. */
create function app_hidden.analytics_form_flags(project int)
returns table (form_id int, state text, webforms_enabled boolean, recent boolean,
               has_repeat boolean, has_geo boolean, has_audit boolean, encrypted boolean)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select f.id, f.state, f.webforms_enabled,
    exists (select 1 from app_public.submissions s where s.form_id = f.id and s.created_at >= app_hidden.recent_cutoff()),
    -- Any version of the form (published, older or draft) counts, as Central's form_fields hold every version's.
    exists (select 1 from app_public.form_defs d join app_public.form_fields ff on ff.form_def_id = d.id
            where d.form_id = f.id and ff.type = 'repeat'),
    exists (select 1 from app_public.form_defs d join app_public.form_fields ff on ff.form_def_id = d.id
            where d.form_id = f.id and ff.type in ('geopoint', 'geotrace', 'geoshape')),
    exists (select 1 from app_public.form_defs d join app_public.form_fields ff on ff.form_def_id = d.id
            where d.form_id = f.id and ff.type = 'binary' and ff.name = 'audit'),
    exists (select 1 from app_public.form_defs d where d.form_id = f.id and d.key_id is not null)
  from app_public.forms f
  where f.project_id = project
$$;
comment on function app_hidden.analytics_form_flags(int) is 'Usage report: each form of a project (deleted ones too, as Central) with its repeat/geo/client-audit/encryption flags and recent activity.';

create function app_hidden.analytics_project_forms(project int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with flags as (select * from app_hidden.analytics_form_flags(project)),
  -- Central's per-project counts of live forms whose published version writes entities (from the root or a repeat).
  entity_forms as (
    select f.id, x.actions ? 'create' as creates, x.actions ? 'update' as updates,
      exists (select 1 from jsonb_array_elements(coalesce(fd.entities->'datasets', '[]')) b
              join app_public.form_fields r on r.form_def_id = fd.id and r.type = 'repeat'
              where lower(b->>'name') = lower(ds.name) and (b->>'path' = r.path or b->>'path' like r.path || '/%')) as in_repeat
    from app_public.forms f
    join app_public.form_defs fd on fd.id = f.current_def_id
    join app_public.dataset_form_defs x on x.form_def_id = fd.id
    join app_public.datasets ds on ds.id = x.dataset_id
    where f.project_id = project and f.deleted_at is null
  )
  select jsonb_build_object(
    'num_forms', app_hidden.total_recent(count(*), count(*) filter (where recent)),
    'num_forms_with_repeats', app_hidden.total_recent(count(*) filter (where has_repeat), count(*) filter (where has_repeat and recent)),
    'num_forms_with_geospatial', app_hidden.total_recent(count(*) filter (where has_geo), count(*) filter (where has_geo and recent)),
    'num_forms_with_encryption', app_hidden.total_recent(count(*) filter (where encrypted), count(*) filter (where encrypted and recent)),
    'num_forms_with_audits', app_hidden.total_recent(count(*) filter (where has_audit), count(*) filter (where has_audit and recent)),
    'num_forms_webforms_enabled', count(*) filter (where webforms_enabled),
    -- Live forms whose xmlFormId a form deleted (form.delete) from this project had before.
    'num_reused_form_ids', (select count(*) from app_public.forms live
                            where live.project_id = project and live.deleted_at is null
                              and exists (select 1 from app_public.forms gone
                                          join app_public.audits au on au.actee_id = gone.actee_id and au.action = 'form.delete'
                                          where gone.project_id = live.project_id and gone.xml_form_id = live.xml_form_id
                                            and gone.deleted_at is not null)),
    'num_open_forms', app_hidden.total_recent(count(*) filter (where state = 'open'), count(*) filter (where state = 'open' and recent)),
    'num_closing_forms', app_hidden.total_recent(count(*) filter (where state = 'closing'), count(*) filter (where state = 'closing' and recent)),
    'num_closed_forms', app_hidden.total_recent(count(*) filter (where state = 'closed'), count(*) filter (where state = 'closed' and recent))
  ) || (select jsonb_build_object(
    'num_entity_create_forms', count(distinct id) filter (where creates),
    'num_repeat_entity_create_forms', count(distinct id) filter (where creates and in_repeat),
    'num_entity_update_forms', count(distinct id) filter (where updates),
    'num_repeat_entity_update_forms', count(distinct id) filter (where updates and in_repeat),
    'num_entity_create_update_forms', count(distinct id) filter (where creates and updates))
    from entity_forms)
  from flags
$$;
comment on function app_hidden.analytics_project_forms(int) is 'Usage report: a project''s form metrics (counts, repeats, geo, encryption, client audits, states, webforms, reused ids, entity forms).';

create function app_hidden.analytics_project_submissions(project int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with subs as (
    select s.review_state, s.created_at >= app_hidden.recent_cutoff() as recent,
      v.versions, v.last_version_at,
      exists (select 1 from app_public.submission_comments c where c.submission_id = s.id) as commented,
      exists (select 1 from app_public.field_keys k where k.actor_id = s.submitter_id) as by_app_user,
      exists (select 1 from app_public.public_links l where l.actor_id = s.submitter_id) as by_public_link,
      exists (select 1 from app_public.users u where u.actor_id = s.submitter_id) as by_web_user
    from app_public.submissions s
    join app_public.forms f on f.id = s.form_id
    cross join lateral (select count(*) as versions, max(d.created_at) as last_version_at
                        from app_public.submission_defs d where d.submission_id = s.id) v
    where f.project_id = project
  )
  select jsonb_build_object(
    'num_submissions_received', app_hidden.total_recent(count(*), count(*) filter (where recent)),
    'num_submissions_approved', app_hidden.total_recent(count(*) filter (where review_state = 'approved'),
                                                        count(*) filter (where review_state = 'approved' and recent)),
    'num_submissions_has_issues', app_hidden.total_recent(count(*) filter (where review_state = 'hasIssues'),
                                                          count(*) filter (where review_state = 'hasIssues' and recent)),
    'num_submissions_rejected', app_hidden.total_recent(count(*) filter (where review_state = 'rejected'),
                                                        count(*) filter (where review_state = 'rejected' and recent)),
    'num_submissions_edited', app_hidden.total_recent(count(*) filter (where review_state = 'edited'),
                                                      count(*) filter (where review_state = 'edited' and recent)),
    -- More than one version; recent when the latest version is.
    'num_submissions_with_edits', app_hidden.total_recent(count(*) filter (where versions > 1),
                                                          count(*) filter (where versions > 1 and last_version_at >= app_hidden.recent_cutoff())),
    -- Recent by the submission's own date, as Central.
    'num_submissions_with_comments', app_hidden.total_recent(count(*) filter (where commented), count(*) filter (where commented and recent)),
    'num_submissions_from_app_users', app_hidden.total_recent(count(*) filter (where by_app_user), count(*) filter (where by_app_user and recent)),
    'num_submissions_from_public_links', app_hidden.total_recent(count(*) filter (where by_public_link), count(*) filter (where by_public_link and recent)),
    'num_submissions_from_web_users', app_hidden.total_recent(count(*) filter (where by_web_user), count(*) filter (where by_web_user and recent)))
  from subs
$$;
comment on function app_hidden.analytics_project_submissions(int) is 'Usage report: a project''s submission metrics (received, review states, edits, comments, by kind of submitter).';

create function app_hidden.analytics_project_users_extras(project int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    -- Distinct device ids seen on the project's submissions; recent when one of them was sent within the window.
    'num_device_ids', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                       from (select bool_or(s.created_at >= app_hidden.recent_cutoff()) as recent
                             from app_public.submissions s join app_public.forms f on f.id = s.form_id
                             where f.project_id = project and s.device_id is not null
                             group by s.device_id) d),
    -- Public Links of the project's forms; recent when the link submitted within the window.
    'num_public_access_links', (select app_hidden.total_recent(count(*), count(*) filter (where exists (
                                  select 1 from app_public.submissions s
                                  where s.submitter_id = l.actor_id and s.created_at >= app_hidden.recent_cutoff())))
                                from app_public.public_links l join app_public.forms f on f.id = l.form_id
                                where f.project_id = project))
$$;
comment on function app_hidden.analytics_project_users_extras(int) is 'Usage report: a project''s device ids and Public Links (the users part not about web users or App Users).';

create function app_hidden.analytics_dataset(ds app_public.datasets) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with cutoff as (select app_hidden.recent_cutoff() as at),
  -- Entity events logged on this dataset, with the entity they name (purged entities drop out, as in Central).
  entity_events as (
    select a.action, a.logged_at >= cutoff.at as recent, a.details->'submissionDefId' is not null as from_submission
    from app_public.audits a cross join cutoff
    join app_public.entities e on e.id = (a.details->>'entityId')::int and e.dataset_id = ds.id
    where a.actee_id = ds.actee_id and a.action in ('entity.create', 'entity.update.version')
  ),
  bulk_events as (
    select a.logged_at >= cutoff.at as recent, src.id as source_id, (src.details->>'count')::int as size
    from app_public.audits a cross join cutoff
    join app_public.entity_def_sources src on src.id = (a.details->>'sourceId')::bigint
    where a.actee_id = ds.actee_id and a.action = 'entity.bulk.create'
  )
  select jsonb_build_object(
    'id', ds.id,
    'num_properties', (select count(*) from app_public.ds_properties p where p.dataset_id = ds.id and p.published_at is not null),
    'num_entities_with_geometry', (select app_hidden.total_recent(count(*), count(*) filter (where e.created_at >= cutoff.at))
                                   from app_public.entities e cross join cutoff
                                   join app_public.entity_defs d on d.entity_id = e.id and d.current
                                   where e.dataset_id = ds.id and e.deleted_at is null and d.data ? 'geometry'),
    -- Form versions (every one, drafts included) that write to this dataset, as Central counts them.
    'num_creation_forms', (select count(*) from app_public.dataset_form_defs x where x.dataset_id = ds.id),
    -- Attachments (of any version) of published forms that this dataset is linked to.
    'num_followup_forms', (select count(*) from app_public.form_attachments a
                           join app_public.form_defs fd on fd.id = a.form_def_id
                           join app_public.forms f on f.id = fd.form_id
                           where a.dataset_id = ds.id and f.current_def_id is not null),
    -- Entities counted whatever their state (deleted ones too, as Central).
    'num_entities', (select app_hidden.total_recent(count(*), count(*) filter (where e.created_at >= cutoff.at))
                     from app_public.entities e cross join cutoff where e.dataset_id = ds.id),
    -- entity.error events of submissions whose current version's form writes to this dataset.
    'num_failed_entities', (select app_hidden.total_recent(count(*), count(*) filter (where a.logged_at >= cutoff.at))
                            from app_public.audits a cross join cutoff
                            join app_public.submission_defs sd on sd.submission_id = (a.details->>'submissionId')::int and sd.current
                            join app_public.dataset_form_defs x on x.form_def_id = sd.form_def_id and x.dataset_id = ds.id
                            where a.action = 'entity.error'),
    'num_entity_updates', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                           from entity_events where action = 'entity.update.version'),
    'num_entity_updates_sub', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                               from entity_events where action = 'entity.update.version' and from_submission),
    'num_entity_updates_api', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                               from entity_events where action = 'entity.update.version' and not from_submission),
    'num_entities_updated', (select app_hidden.total_recent(count(e.updated_at), count(*) filter (where e.updated_at >= cutoff.at))
                             from app_public.entities e cross join cutoff where e.dataset_id = ds.id),
    -- Entities that ever had a conflicting version, and those of them whose conflict is resolved now.
    'num_entity_conflicts', (select count(*) from app_public.entities e where e.dataset_id = ds.id
                               and exists (select 1 from app_public.entity_defs d where d.entity_id = e.id and d.conflicting_properties is not null)),
    'num_entity_conflicts_resolved', (select count(*) from app_public.entities e where e.dataset_id = ds.id and e.conflict is null
                                        and exists (select 1 from app_public.entity_defs d where d.entity_id = e.id and d.conflicting_properties is not null)),
    'num_bulk_create_events', (select app_hidden.total_recent(count(*), count(*) filter (where recent)) from bulk_events),
    'biggest_bulk_upload', (select coalesce(max(size), 0) from bulk_events),
    'num_entity_creates_sub', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                               from entity_events where action = 'entity.create' and from_submission),
    'num_entity_creates_api', (select app_hidden.total_recent(count(*), count(*) filter (where recent))
                               from entity_events where action = 'entity.create' and not from_submission),
    -- Entities a bulk upload created (their first version came from that upload).
    'num_entity_creates_bulk', (select app_hidden.total_recent(count(*), count(*) filter (where b.recent))
                                from bulk_events b
                                join app_public.entity_defs d on d.source_id = b.source_id and d.root
                                join app_public.entities e on e.id = d.entity_id and e.dataset_id = ds.id))
  from cutoff
$$;
comment on function app_hidden.analytics_dataset(app_public.datasets) is 'Usage report: one dataset''s metrics (properties, entities, creation/follow-up forms, failures, updates, conflicts, creates by source, bulk uploads).';

create function app_hidden.analytics_project_datasets(project int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  -- Published datasets (deleted ones too, as Central's query), most recently active first as Central orders them.
  select coalesce(jsonb_agg(m order by (m->'num_entities'->>'recent')::int desc, (m->>'id')::int), '[]')
  from (select app_hidden.analytics_dataset(ds) as m from app_public.datasets ds
        where ds.project_id = project and ds.published_at is not null) x
$$;
comment on function app_hidden.analytics_project_datasets(int) is 'Usage report: the metrics of each published dataset of a project.';

create or replace function app_hidden.analytics_project_extras(project_id int) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'users', app_hidden.analytics_project_users_extras(project_id),
    'forms', app_hidden.analytics_project_forms(project_id),
    'submissions', app_hidden.analytics_project_submissions(project_id),
    'datasets', app_hidden.analytics_project_datasets(project_id))
$$;
comment on function app_hidden.analytics_project_extras(int) is 'Usage report project metrics about forms, submissions and datasets (users/forms/submissions/datasets parts), from real data.';

/* Client audits (Central's isClientAudit): the attachment a submission version names in /meta/audit, when its
 * form version binds that field as binary. */
create function app_hidden.client_audit_attachments()
returns setof app_public.submission_attachments
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select a.* from app_public.submission_attachments a
  join app_public.submission_defs sd on sd.id = a.submission_def_id
  where a.name = sd.data #>> '{meta,audit}'
    and exists (select 1 from app_public.form_fields ff
                where ff.form_def_id = sd.form_def_id and ff.path = '/meta/audit' and ff.type = 'binary')
$$;
comment on function app_hidden.client_audit_attachments() is 'Submission attachments that are client audit logs (the file named by a binary /meta/audit field).';

create function app_hidden.csv_data_rows(content bytea) returns int
language sql immutable set search_path = pg_catalog, pg_temp
as $$
  -- Non-empty lines after the header; the escape encoding keeps newlines and never fails on odd bytes.
  select greatest(count(*) - 1, 0)::int
  from regexp_split_to_table(encode(content, 'escape'), E'\r?\n') line
  where line <> ''
$$;
comment on function app_hidden.csv_data_rows(bytea) is 'How many data rows a CSV file has (non-empty lines after the header; a quoted newline counts as a row break).';

create or replace function app_hidden.analytics_system_extras() returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with backlog as (
    select count(*) filter (where action = 'submission.backlog.reprocess') as reprocessed,
           count(*) filter (where action = 'submission.backlog.force') as forced
    from app_public.audits where action in ('submission.backlog.reprocess', 'submission.backlog.force')
  ),
  -- How long after its submission arrived a version made from it was written (Fieldbase processes submissions
  -- in a job and does not mark the submission.create audit processed, so the entity version's time stands in
  -- for Central's audit "processed" time).
  submission_delays as (
    select ed.created_at - au.logged_at as delay
    from app_public.entity_defs ed
    join app_public.entity_def_sources src on src.id = ed.source_id and src.type = 'submission'
    join app_public.audits au on au.action = 'submission.create' and (au.details->>'submissionDefId')::int = src.submission_def_id
  ),
  -- Entity versions in order, with the branch of the version before (for interrupted offline branches).
  ordered_versions as (
    select entity_id, version, branch_id, lag(branch_id) over (partition by entity_id order by version) as previous_branch
    from app_public.entity_defs
  ),
  branch_runs as (
    select entity_id, branch_id from ordered_versions
    where branch_id is not null and (version = 1 or branch_id is distinct from previous_branch)
  ),
  client_audits as (select * from app_hidden.client_audit_attachments())
  select jsonb_build_object(
    -- Fields of the biggest form version, groups and repeats not counted (meta/instanceID is); null without forms.
    'num_questions_biggest_form', (select max(n) from (select count(*) as n from app_public.form_fields
                                                       where type not in ('structure', 'repeat') group by form_def_id) x),
    -- Central counts the rows of its GeoJSON extraction cache per form and geo field. Fieldbase has no cache
    -- (GeoJSON is computed on request), so this counts what that cache would hold once every form's GeoJSON was
    -- asked for: current versions of live submissions with a value in each geo field outside repeats.
    'max_geo_per_form', (select coalesce(max(n), 0) from (
                           select count(*) as n
                           from app_public.submission_defs sd
                           join app_public.submissions s on s.id = sd.submission_id and s.deleted_at is null
                           join app_public.form_fields ff on ff.form_def_id = sd.form_def_id
                             and ff.type in ('geopoint', 'geotrace', 'geoshape')
                           where sd.current
                             and not exists (select 1 from app_public.form_fields r where r.form_def_id = ff.form_def_id
                                               and r.type = 'repeat' and ff.path like r.path || '/%')
                             and nullif(trim(sd.data #>> string_to_array(substr(ff.path, 2), '/')), '') is not null
                           group by sd.form_id, ff.path) x),
    'num_client_audit_attachments', (select count(*) from client_audits where blob_id is not null),
    -- Client audit uploads whose processing failed five times. Fieldbase does not process submission.attachment.update
    -- audits in the background (client audit files are kept as uploaded), so none ever fail: 0 in practice.
    'num_client_audit_attachments_failures', (select count(*) from app_public.audits au
                                              where au.action = 'submission.attachment.update' and au.processed is null
                                                and au.failures >= 5
                                                and exists (select 1 from client_audits ca
                                                            where ca.submission_def_id = (au.details->>'submissionDefId')::int
                                                              and ca.name = au.details->>'name')),
    -- Central parses client audit CSVs into rows (once per file content); Fieldbase keeps the files, so this
    -- counts the data lines of each distinct client audit file.
    'num_client_audit_rows', (select coalesce(sum(app_hidden.csv_data_rows(b.content)), 0)
                              from app_public.blobs b
                              where b.id in (select blob_id from client_audits where blob_id is not null)),
    -- Offline branches with a real multi-step offline operation (a version based on more than the trunk).
    'num_offline_entity_branches', (select count(distinct branch_id) from app_public.entity_defs
                                    where branch_id is not null and (trunk_version is null or branch_base_version > trunk_version)),
    -- Branches another branch interrupted (e.g. versions from branches a, a, b, a).
    'num_offline_entity_interrupted_branches', (select count(*) from (select 1 from branch_runs
                                                                     group by entity_id, branch_id having count(*) > 1) x),
    'num_offline_entity_submissions_reprocessed', (select reprocessed from backlog),
    'num_offline_entity_submissions_force_processed', (select forced from backlog),
    -- Null without any entity made from a submission, as Central's max/avg over nothing.
    'max_entity_submission_delay', (select app_hidden.seconds(max(delay)) from submission_delays),
    'avg_entity_submission_delay', (select app_hidden.seconds(avg(delay)) from submission_delays),
    -- The longest time between the first and last version of one entity in one offline branch.
    'max_entity_branch_delay', (select coalesce(app_hidden.seconds(max(age(last_at, first_at))), 0)
                                from (select max(created_at) as last_at, min(created_at) as first_at from app_public.entity_defs
                                      where branch_id is not null group by branch_id, entity_id) x),
    'num_owner_only_datasets', (select count(*) from app_public.datasets where owner_only),
    -- Form versions uploaded as XForms (no XLSForm) and not encrypted ('[upgrade]' versions are Central's
    -- automatic entity-spec upgrades, which Fieldbase does not make; the filter is kept for the same meaning).
    'num_xml_only_form_defs', (select count(*) from app_public.form_defs
                               where xls_blob_id is null and key_id is null and version not like '%[upgrade]%'),
    'num_blob_files', (select count(*) from app_public.blobs),
    -- Fieldbase keeps every blob in PostgreSQL: it has no S3 blob store, so none is ever uploaded there.
    'num_blob_files_on_s3', 0,
    'num_datasets_with_geometry', (select count(distinct dataset_id) from app_public.ds_properties where name = 'geometry'))
$$;
comment on function app_hidden.analytics_system_extras() is 'Usage report system metrics about forms, submissions, client audits, offline entities, datasets and blobs, from real data.';

create or replace function app_hidden.analytics_role_users(project app_public.projects, role_system text) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select app_hidden.total_recent(count(*), count(*) filter (where app_hidden.actor_recently_active(u.actor_id)))
  from app_public.assignments s
  join app_public.roles r on r.id = s.role_id and r.system = role_system
  join app_public.users u on u.actor_id = s.actor_id
  where s.actee_id = project.actee_id
$$;

create or replace function app_hidden.analytics_project(project app_public.projects) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with extras as (select app_hidden.analytics_project_extras(project.id) as x)
  select jsonb_build_object(
    'id', project.id,
    'users', jsonb_build_object(
      'num_managers', app_hidden.analytics_role_users(project, 'manager'),
      'num_viewers', app_hidden.analytics_role_users(project, 'viewer'),
      'num_data_collectors', app_hidden.analytics_role_users(project, 'formfill'),
      -- An App User is recent when it submitted within the window.
      'num_app_users', (select app_hidden.total_recent(count(*), count(*) filter (where exists (
                           select 1 from app_public.audits au where au.actor_id = f.actor_id
                             and au.action = 'submission.create' and au.logged_at >= app_hidden.recent_cutoff())))
                        from app_public.field_keys f join app_public.actors a on a.id = f.actor_id
                        where f.project_id = project.id and a.deleted_at is null)
    ) || (x->'users'),
    'forms', x->'forms',
    'submissions', x->'submissions',
    'other', jsonb_build_object('description_length', coalesce(length(trim(project.description)), 0)),
    'datasets', x->'datasets')
  from extras
$$;

drop function if exists app_public.analytics_preview() cascade;
create function app_public.analytics_preview() returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  cutoff timestamptz := app_hidden.recent_cutoff();
  system jsonb;
begin
  perform app_hidden.assert_can('analytics.read', '*');
  select jsonb_build_object(
    'num_admins', (select app_hidden.total_recent(count(distinct u.actor_id),
                     count(distinct u.actor_id) filter (where app_hidden.actor_recently_active(u.actor_id)))
                   from app_public.users u join app_public.assignments s on s.actor_id = u.actor_id
                   where s.role_id = 1 and s.actee_id = '*' and not u.deleted),
    'num_projects_encryption', (select app_hidden.total_recent(count(key_id), 0) from app_public.projects where deleted_at is null),
    'num_audit_log_entries', (select app_hidden.total_recent(count(*), count(*) filter (where logged_at >= cutoff)) from app_public.audits),
    'num_archived_projects', (select count(*) from app_public.projects where archived and deleted_at is null),
    'num_unique_managers', (select count(distinct s.actor_id) from app_public.assignments s join app_public.roles r on r.id = s.role_id where r.system = 'manager'),
    'num_unique_viewers', (select count(distinct s.actor_id) from app_public.assignments s join app_public.roles r on r.id = s.role_id where r.system = 'viewer'),
    'num_unique_collectors', (select count(distinct s.actor_id) from app_public.assignments s join app_public.roles r on r.id = s.role_id where r.system = 'formfill'),
    'database_size', pg_database_size(current_database()),
    'uses_external_db', case when inet_server_addr() is null or host(inet_server_addr()) in ('127.0.0.1', '::1') then 0 else 1 end,
    'uses_external_blob_store', 0,
    'sso_enabled', 0,
    'num_audits_failed', (select count(*) from app_public.audits where failures > 0),
    'num_audits_failed5', (select count(*) from app_public.audits where processed is null and failures >= 5),
    -- Only actions the worker processes can be unprocessed.
    'num_audits_unprocessed', (select count(*) from app_public.audits where processed is null and failures < 5
                                 and logged_at < now() - interval '1 day'
                                 and action in ('submission.attachment.update', 'form.create', 'form.update.draft.set', 'form.update.publish')),
    'num_reset_failed_to_pending_count', (select count(*) from app_public.audits where action = 'blobs.s3.failed-to-pending'),
    'num_entity_bulk_deletes', (select app_hidden.total_recent(count(*), count(*) filter (where logged_at >= cutoff))
                                from app_public.audits where action = 'entity.bulk.delete')
  ) || app_hidden.analytics_system_extras() into system;
  return jsonb_build_object(
    'system', system,
    'projects', coalesce((select jsonb_agg(app_hidden.analytics_project(p) order by p.id)
                          from app_public.projects p where p.deleted_at is null), '[]'));
end
$$;
comment on function app_public.analytics_preview() is 'The usage report Central would send now: system-wide and per-project metrics (analytics.read).';

grant execute on function app_public.analytics_preview() to fieldbase_request;
