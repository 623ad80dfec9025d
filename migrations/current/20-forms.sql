/*
 * Forms: one row per form of a project (its actee is a child of the project's), one form_defs row per
 * uploaded version (the XML exactly as received, hashes, key), the parsed field schema per version
 * (app_public.form_fields, shared by submissions, CSV, OData and SQL views), the expected form attachments
 * per version, and content-addressed blobs.
 */
drop table if exists app_public.public_links cascade;
drop table if exists app_public.form_attachments cascade;
drop table if exists app_public.form_fields cascade;
alter table if exists app_public.forms drop constraint if exists forms_current_def_fk, drop constraint if exists forms_draft_def_fk;
drop table if exists app_public.form_defs cascade;
drop table if exists app_public.forms cascade;
drop table if exists app_public.blobs cascade;
drop function if exists app_hidden.can_read_form_def(int) cascade;
drop function if exists app_hidden.draft_token_matches(text) cascade;

-- Central's encryption keys (form-supplied or project-managed); shared with managed encryption.
create table if not exists app_public.keys (
  id serial primary key,
  public text not null unique,
  private jsonb,
  managed boolean,
  hint text,
  created_at timestamptz(3) not null default now()
);
comment on table app_public.keys is 'Public encryption keys (base64RsaPublicKey) forms and projects encrypt submissions with.';
alter table app_public.keys enable row level security;
drop policy if exists keys_are_public on app_public.keys;
create policy keys_are_public on app_public.keys for select using (true);
grant select on app_public.keys to fieldbase_request;

create table app_public.blobs (
  id serial primary key,
  sha text not null unique,
  md5 text not null,
  content_type text,
  content bytea not null,
  created_at timestamptz(3) not null default now()
);
comment on table app_public.blobs is 'File contents by SHA-1 (form attachments, XLSForm uploads), stored once however often referenced.';

create table app_public.forms (
  id serial primary key,
  project_id int not null references app_public.projects (id),
  xml_form_id text not null,
  state text not null default 'open' check (state in ('open', 'closing', 'closed')),
  actee_id text not null unique references app_public.actees (id),
  current_def_id int,
  draft_def_id int,
  enketo_id text,
  enketo_once_id text,
  webforms_enabled boolean not null default false,
  created_at timestamptz(3) not null default now(),
  updated_at timestamptz(3),
  deleted_at timestamptz(3)
);
comment on table app_public.forms is 'A form of a project (by xmlFormId); current_def_id is its published version, draft_def_id its draft.';
create unique index forms_project_xml_form_id_live_key on app_public.forms (project_id, xml_form_id) where deleted_at is null;
create index forms_project_idx on app_public.forms (project_id);

create table app_public.form_defs (
  id serial primary key,
  form_id int not null references app_public.forms (id) on delete cascade,
  xml text not null,
  name text,
  version text not null default '',
  hash text not null,
  sha text not null,
  sha256 text not null,
  key_id int references app_public.keys (id),
  submission_url text,
  draft_token text unique,
  enketo_id text,
  entities jsonb,
  xls_blob_id int references app_public.blobs (id),
  created_at timestamptz(3) not null default clock_timestamp(),
  published_at timestamptz(3)
);
comment on table app_public.form_defs is 'One uploaded version of a form: the XForm text as received, md5/sha1/sha256 of it, and what parsing found.';
comment on column app_public.form_defs.hash is 'md5 of the XML (hex), as OpenRosa formList and Central''s API show it.';
comment on column app_public.form_defs.entities is 'Entity declarations ({version, datasets[{name, actions, path}], properties[{path, property}]}) for the datasets work.';
create unique index form_defs_published_version_key on app_public.form_defs (form_id, version) where published_at is not null;
create index form_defs_form_idx on app_public.form_defs (form_id);

alter table app_public.forms
  add constraint forms_current_def_fk foreign key (current_def_id) references app_public.form_defs (id) deferrable initially deferred,
  add constraint forms_draft_def_fk foreign key (draft_def_id) references app_public.form_defs (id) on delete set null deferrable initially deferred;

create table app_public.form_fields (
  form_def_id int not null references app_public.form_defs (id) on delete cascade,
  ord int not null,
  path text not null,
  name text not null,
  type text not null,
  "binary" boolean not null default false,
  select_multiple boolean not null default false,
  primary key (form_def_id, ord)
);
comment on table app_public.form_fields is 'A form version''s field schema in depth-first document order, exactly as Central''s /fields (path without the root element, namespaces stripped).';
create index form_fields_path_idx on app_public.form_fields (form_def_id, path);

create table app_public.form_attachments (
  form_def_id int not null references app_public.form_defs (id) on delete cascade,
  name text not null,
  type text not null check (type in ('image', 'audio', 'video', 'file')),
  blob_id int references app_public.blobs (id),
  dataset_id int,
  updated_at timestamptz(3),
  primary key (form_def_id, name)
);
comment on table app_public.form_attachments is 'Files a form version expects (media, CSV/XML/GeoJSON data), with the uploaded blob or linked dataset.';
comment on column app_public.form_attachments.dataset_id is 'The dataset this attachment is served from (entity lists); set by the datasets work.';
create index form_attachments_blob_idx on app_public.form_attachments (blob_id);

create table app_public.public_links (
  actor_id int primary key references app_public.actors (id),
  form_id int not null references app_public.forms (id) on delete cascade,
  once boolean not null default false,
  created_by int references app_public.actors (id)
);
comment on table app_public.public_links is 'Public Links: actors of type public_link that may fill one form (pub-link role on it).';
create index public_links_form_idx on app_public.public_links (form_id);

create function app_hidden.draft_token_matches(token text) returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  -- Draft-testing requests (/v1/test/:token/…) name the draft token they present in fieldbase.draft_token.
  select token is not null and token = nullif(current_setting('fieldbase.draft_token', true), '')
$$;
comment on function app_hidden.draft_token_matches(text) is 'Does this draft token match the one the request presented (draft testing endpoints)?';

/* Who may see what. Central: unpublished forms need form.update; closed forms need form.read;
 * open and closing published forms also show to open_form.read (App Users, Data Collectors, Public Links). */
create function app_hidden.can_read_form(f app_public.forms) returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select case
    when f.current_def_id is null then app_hidden.actor_can('form.update', f.actee_id)
    when f.state = 'closed' then app_hidden.actor_can('form.read', f.actee_id)
    else app_hidden.actor_can('form.read', f.actee_id) or app_hidden.actor_can('open_form.read', f.actee_id)
  end
  or exists (select 1 from app_public.form_defs d where d.id = f.draft_def_id and app_hidden.draft_token_matches(d.draft_token))
$$;
comment on function app_hidden.can_read_form(app_public.forms) is 'May the current actor read this form (Central''s canReadForm)?';

create function app_hidden.can_read_form_def(def_id int) returns boolean
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select exists (
    select 1 from app_public.form_defs d join app_public.forms f on f.id = d.form_id
    where d.id = def_id
      and (app_hidden.actor_can('form.update', f.actee_id)
           or (d.published_at is not null and app_hidden.can_read_form(f))
           or (d.id = f.draft_def_id and app_hidden.draft_token_matches(d.draft_token)))
  )
$$;
comment on function app_hidden.can_read_form_def(int) is 'May the current actor read this form version (drafts need form.update)?';

alter table app_public.forms enable row level security;
alter table app_public.form_defs enable row level security;
alter table app_public.form_fields enable row level security;
alter table app_public.form_attachments enable row level security;
alter table app_public.blobs enable row level security;
alter table app_public.public_links enable row level security;

create policy see_readable_forms on app_public.forms for select using (app_hidden.can_read_form(forms));
create policy see_readable_form_defs on app_public.form_defs for select using (app_hidden.can_read_form_def(id));
create policy see_readable_form_fields on app_public.form_fields for select using (app_hidden.can_read_form_def(form_def_id));
create policy see_readable_form_attachments on app_public.form_attachments for select using (app_hidden.can_read_form_def(form_def_id));
create policy see_form_blobs on app_public.blobs for select using (
  exists (select 1 from app_public.form_attachments a where a.blob_id = blobs.id)
  or exists (select 1 from app_public.form_defs d where d.xls_blob_id = blobs.id)
);
create policy see_listable_public_links on app_public.public_links for select using (
  exists (select 1 from app_public.forms f where f.id = form_id and app_hidden.actor_can('public_link.list', f.actee_id))
);

grant select on app_public.forms, app_public.form_defs, app_public.form_fields, app_public.form_attachments,
  app_public.blobs, app_public.public_links to fieldbase_request;
grant execute on function app_hidden.can_read_form(app_public.forms), app_hidden.can_read_form_def(int),
  app_hidden.draft_token_matches(text) to fieldbase_request;
