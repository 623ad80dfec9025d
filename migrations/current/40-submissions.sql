/*
 * Submissions: one logical submission per (form, instanceID, draft), one submission_defs row per
 * version (the XML byte for byte beside its structured data, parsed once at ingestion by the server
 * against the form version's field schema), the attachments each version expects (with their blobs
 * once received), and comments. Reads go through RLS (submission.read on the form); writes through
 * the security-definer functions in 41-submission-functions.sql.
 */
drop table if exists app_public.submission_comments cascade;
drop table if exists app_public.submission_attachments cascade;
drop table if exists app_public.submission_defs cascade;
drop table if exists app_public.submissions cascade;

create table app_public.submissions (
  id serial primary key,
  form_id int not null references app_public.forms (id) on delete cascade,
  instance_id text not null,
  draft boolean not null default false,
  submitter_id int references app_public.actors (id),
  device_id text,
  user_agent text,
  review_state text check (review_state in ('hasIssues', 'edited', 'approved', 'rejected')),
  created_at timestamptz(3) not null default clock_timestamp(),
  updated_at timestamptz(3),
  deleted_at timestamptz(3),
  unique (form_id, draft, instance_id)
);
comment on table app_public.submissions is 'Logical submissions (Central''s Submission): identified by the first version''s instanceID within a form; draft ones are test data of a form''s draft.';
create index submissions_form_created_idx on app_public.submissions (form_id, draft, created_at desc, id desc);
create index submissions_deleted_idx on app_public.submissions (deleted_at) where deleted_at is not null;

create table app_public.submission_defs (
  id serial primary key,
  submission_id int not null references app_public.submissions (id) on delete cascade,
  form_id int not null references app_public.forms (id) on delete cascade,
  form_def_id int not null references app_public.form_defs (id),
  instance_id text not null,
  instance_name text,
  xml text not null,
  data jsonb not null default '{}',
  encryption jsonb,
  submitter_id int references app_public.actors (id),
  device_id text,
  user_agent text,
  current boolean not null default true,
  created_at timestamptz(3) not null default clock_timestamp()
);
comment on table app_public.submission_defs is 'Versions of a submission: the XML exactly as received, its data structured by the form schema (group → object, repeat → array, leaf → text), who sent it.';
comment on column app_public.submission_defs.data is 'The instance keyed by the form''s field schema, for lists, exports, OData and SQL without re-parsing XML.';
comment on column app_public.submission_defs.encryption is 'Encrypted submissions as sent: {base64EncryptedKey, encryptedXmlFile, media[], base64EncryptedElementSignature}.';
create unique index submission_defs_current_key on app_public.submission_defs (submission_id) where current;
create index submission_defs_submission_idx on app_public.submission_defs (submission_id, id);
create index submission_defs_instance_idx on app_public.submission_defs (form_id, instance_id);

create table app_public.submission_attachments (
  submission_def_id int not null references app_public.submission_defs (id) on delete cascade,
  form_id int not null references app_public.forms (id) on delete cascade,
  name text not null,
  ord int not null,
  blob_id int references app_public.blobs (id),
  primary key (submission_def_id, name)
);
comment on table app_public.submission_attachments is 'Files a submission version refers to (binary questions, encrypted parts), with the blob once it has arrived.';
create index submission_attachments_blob_idx on app_public.submission_attachments (blob_id);

create table app_public.submission_comments (
  id serial primary key,
  submission_id int not null references app_public.submissions (id) on delete cascade,
  form_id int not null references app_public.forms (id) on delete cascade,
  actor_id int not null references app_public.actors (id),
  body text not null check (length(body) > 0),
  created_at timestamptz(3) not null default clock_timestamp()
);
comment on table app_public.submission_comments is 'Reviewers'' comments on a submission.';
create index submission_comments_submission_idx on app_public.submission_comments (submission_id, created_at);

/* Which forms' submissions may the actor read? Computed once per statement (policies wrap it in a
 * scalar subquery), so listing or exporting N submissions asks actor_can per form, not per row. */
drop function if exists app_hidden.forms_where_can(text) cascade;
create function app_hidden.forms_where_can(verb text) returns int[]
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(f.id), '{}') from app_public.forms f where app_hidden.actor_can(verb, f.actee_id)
$$;
comment on function app_hidden.forms_where_can(text) is 'Ids of the forms on which the current actor holds verb (for submission policies).';
grant execute on function app_hidden.forms_where_can(text) to fieldbase_request;

alter table app_public.submissions enable row level security;
alter table app_public.submission_defs enable row level security;
alter table app_public.submission_attachments enable row level security;
alter table app_public.submission_comments enable row level security;

create policy see_readable_submissions on app_public.submissions for select
  using (form_id = any (coalesce((select app_hidden.forms_where_can('submission.read')), '{}')));
create policy see_readable_submission_defs on app_public.submission_defs for select
  using (form_id = any (coalesce((select app_hidden.forms_where_can('submission.read')), '{}')));
create policy see_readable_submission_attachments on app_public.submission_attachments for select
  using (form_id = any (coalesce((select app_hidden.forms_where_can('submission.read')), '{}')));
create policy see_readable_submission_comments on app_public.submission_comments for select
  using (form_id = any (coalesce((select app_hidden.forms_where_can('submission.read')), '{}')));
drop policy if exists see_submission_blobs on app_public.blobs;
create policy see_submission_blobs on app_public.blobs for select using (
  exists (select 1 from app_public.submission_attachments a where a.blob_id = blobs.id)
);

grant select on app_public.submissions, app_public.submission_defs, app_public.submission_attachments,
  app_public.submission_comments to fieldbase_request;
