// Central's JSON shapes for accounts: snake_case rows in, camelCase objects out, null where absent.
export interface ActorRow {
  id: number;
  type: string;
  display_name: string;
  created_at: Date;
  updated_at: Date | null;
  deleted_at: Date | null;
}

export interface UserRow extends ActorRow {
  email: string;
  last_login_at: Date | null;
}

export function actorJson(a: ActorRow) {
  return {
    id: a.id,
    type: a.type,
    displayName: a.display_name,
    createdAt: a.created_at,
    updatedAt: a.updated_at,
    deletedAt: a.deleted_at,
  };
}

export function userJson(u: UserRow) {
  return { ...actorJson(u), email: u.email, lastLoginAt: u.last_login_at };
}

export interface RoleRow {
  id: number;
  name: string;
  system: string | null;
  verbs: string[];
  created_at: Date;
  updated_at: Date | null;
}

export function roleJson(r: RoleRow) {
  return { id: r.id, name: r.name, system: r.system, verbs: r.verbs, createdAt: r.created_at, updatedAt: r.updated_at };
}

export interface AuditRow {
  id: number;
  actor_id: number | null;
  action: string;
  actee_id: string | null;
  details: unknown;
  notes: string | null;
  logged_at: Date;
}

export function auditJson(a: AuditRow) {
  return { actorId: a.actor_id, action: a.action, acteeId: a.actee_id, details: a.details, loggedAt: a.logged_at, notes: a.notes };
}

/** SQL select list for a user joined to its actor, matching UserRow. */
export const userColumns = `a.id, a.type, a.display_name, a.created_at, a.updated_at, a.deleted_at, u.email::text, u.last_login_at`;
export const actorColumns = `a.id, a.type, a.display_name, a.created_at, a.updated_at, a.deleted_at`;
