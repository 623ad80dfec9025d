// Central's JSON shapes for projects, App Users and server configuration.
import { actorJson, type ActorRow } from './json.ts';

export interface ProjectRow {
  id: number;
  name: string;
  description: string | null;
  archived: boolean;
  key_id: number | null;
  actee_id: string;
  created_at: Date;
  updated_at: Date | null;
  deleted_at: Date | null;
}

/** Extended metadata columns (see projectExtendedColumns). */
export interface ProjectExtras {
  app_users: number;
  forms: number;
  last_submission: Date | null;
  datasets: number;
  last_entity: Date | null;
  verbs: string[];
}

export function projectJson(p: ProjectRow) {
  return {
    id: p.id,
    name: p.name,
    description: p.description,
    keyId: p.key_id,
    archived: p.archived,
    createdAt: p.created_at,
    updatedAt: p.updated_at,
    deletedAt: p.deleted_at,
  };
}

export function extendedProjectJson(p: ProjectRow & ProjectExtras) {
  return {
    ...projectJson(p),
    appUsers: p.app_users,
    forms: p.forms,
    lastSubmission: p.last_submission,
    datasets: p.datasets,
    lastEntity: p.last_entity,
    verbs: p.verbs,
  };
}

/** SQL select list adding the extended metadata of project p, matching ProjectExtras. */
export const projectExtendedColumns = `
  app_hidden.project_app_user_count(p.id) as app_users,
  app_hidden.project_form_count(p.id) as forms,
  app_hidden.project_last_submission(p.id) as last_submission,
  app_hidden.project_dataset_count(p.id) as datasets,
  app_hidden.project_last_entity(p.id) as last_entity,
  app_hidden.actor_verbs(p.actee_id) as verbs`;

export interface AppUserRow extends ActorRow {
  project_id: number;
  token: string | null;
  last_used: Date | null;
  created_by: unknown;
  properties: Record<string, string> | null;
}

export function appUserJson(u: AppUserRow) {
  return { ...actorJson(u), token: u.token, projectId: u.project_id };
}

export function extendedAppUserJson(u: AppUserRow) {
  return { ...appUserJson(u), createdBy: u.created_by, lastUsed: u.last_used, properties: u.properties };
}

export interface ConfigRow {
  key: string;
  value: unknown;
  has_blob: boolean;
  set_at: Date;
}

export function configJson(c: ConfigRow) {
  return c.has_blob
    ? { key: c.key, setAt: c.set_at, blobExists: true }
    : { key: c.key, setAt: c.set_at, value: c.value };
}

export const configColumns = 'c.key, c.value, c.blob is not null as has_blob, c.set_at';
