/*
 * Turning approvalRequired off (PATCH …/datasets/:name?convert=true|false, as Central): submissions received
 * while approval was required and neither approved nor rejected would never make entities. Without ?convert the
 * change is refused while there are any (400.29); with convert=true they are processed now as if just received.
 */
drop function if exists app_hidden.dataset_pending_submissions(int) cascade;
drop function if exists app_public.dataset_pending_count(int, text) cascade;
drop function if exists app_public.convert_pending_submissions(int, text) cascade;

create function app_hidden.dataset_pending_submissions(ds_id int) returns table (submission_def_id int)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select sd.id from app_public.submissions s
  join app_public.submission_defs sd on sd.submission_id = s.id and sd.current
  join app_public.forms f on f.id = s.form_id
  join app_public.datasets d on d.id = ds_id
  where d.approval_required and not s.draft and s.deleted_at is null and f.deleted_at is null
    and coalesce(s.review_state, 'received') in ('received', 'hasIssues', 'edited')
    and exists (select 1 from app_public.dataset_form_defs x where x.dataset_id = ds_id and x.form_def_id = sd.form_def_id)
    and not exists (select 1 from app_public.submission_defs y join app_public.entity_def_sources src on src.submission_def_id = y.id
                    join app_public.entity_defs v on v.source_id = src.id where y.submission_id = s.id)
    and not exists (select 1 from app_private.entity_submission_backlog b where b.submission_id = s.id)
  order by s.created_at, s.id
$$;
comment on function app_hidden.dataset_pending_submissions(int) is 'Current versions of submissions to an approvalRequired dataset''s forms that await approval and made no entity yet.';

create function app_public.dataset_pending_count(project int, ds_name text) returns int
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select count(*)::int from app_hidden.dataset_pending_submissions((app_hidden.dataset_for(project, ds_name, 'dataset.update')).id)
$$;
comment on function app_public.dataset_pending_count(int, text) is 'How many submissions would never make entities if the dataset stopped requiring approval (dataset.update).';

create function app_public.convert_pending_submissions(project int, ds_name text) returns int
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  d app_public.datasets := app_hidden.dataset_for(project, ds_name, 'dataset.update');
  n int := 0;
  def_id int;
begin
  -- Called before approvalRequired is turned off; the queued jobs run after this transaction commits it.
  for def_id in select p.submission_def_id from app_hidden.dataset_pending_submissions(d.id) p loop
    perform app_hidden.queue_submission_entities(def_id, 'submission.create', app_hidden.current_actor_id());
    n := n + 1;
  end loop;
  return n;
end
$$;
comment on function app_public.convert_pending_submissions(int, text) is 'PATCH …?convert=true: queues entity processing for the dataset''s pending submissions, as if just received (dataset.update).';

grant execute on function app_public.dataset_pending_count(int, text), app_public.convert_pending_submissions(int, text)
  to fieldbase_request;
