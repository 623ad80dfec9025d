// Projects and their role assignments: /v1/projects…, /v1/projects/:id/assignments….
import { Router, type Request } from 'express';
import type { Db } from '../db.ts';
import { body, transaction, one, many, extended, idParam, success } from '../http.ts';
import { actorJson, type ActorRow } from '../formats/json.ts';
import {
  projectJson, extendedProjectJson, projectExtendedColumns, type ProjectRow, type ProjectExtras,
} from '../formats/projects.ts';
import { projectEmbeds } from './project-embeds.ts';

export const projects = Router();

const projectFields = ['name', 'description', 'archived'] as const;

/** The project fields present in the body, as JSON for the SQL functions (which validate them). */
function fieldsOf(b: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(projectFields.filter((f) => f in b).map((f) => [f, b[f]])));
}

function flag(value: unknown): boolean {
  return typeof value === 'string' && value.toLowerCase() === 'true';
}

type ExtendedProjectRow = ProjectRow & ProjectExtras;

function selectProjects(req: Request, where: string) {
  return `select p.*${extended(req) ? `, ${projectExtendedColumns}` : ''}
          from app_public.projects p where p.deleted_at is null ${where}`;
}

function format(req: Request, row: ProjectRow) {
  return extended(req) ? extendedProjectJson(row as ExtendedProjectRow) : projectJson(row);
}

/** A live project the actor may read (403.1 / 404.1 otherwise). */
async function readableProject(req: Request, db: Db, id: number): Promise<ProjectRow> {
  await db.query(`select app_hidden.assert_can('project.read', app_hidden.project_actee($1))`, [id]);
  return one<ProjectRow>(db, selectProjects(req, 'and p.id = $1'), [id]);
}

projects.get('/v1/projects', async (req, res) => {
  const embedForms = flag(req.query.forms);
  const embedDatasets = flag(req.query.datasets);
  const result = await transaction(req, async (db) => {
    // Row-level security leaves only the projects the actor may read.
    const rows = await many<ProjectRow>(db, selectProjects(req, 'order by p.name, p.id'));
    const ids = rows.map((r) => r.id);
    const forms = embedForms ? await projectEmbeds.forms(db, ids, req) : null;
    const datasets = embedDatasets ? await projectEmbeds.datasets(db, ids, req) : null;
    return rows.map((r) => ({
      ...format(req, r),
      ...(forms ? { formList: forms.get(r.id) ?? [] } : {}),
      ...(datasets ? { datasetList: datasets.get(r.id) ?? [] } : {}),
    }));
  });
  res.json(result);
});

projects.post('/v1/projects', async (req, res) => {
  const fields = fieldsOf(body(req));
  const row = await transaction(req, (db) => one<ProjectRow>(db, 'select * from app_public.create_project($1)', [fields]));
  res.json(projectJson(row));
});

projects.get('/v1/projects/:id', async (req, res) => {
  const id = idParam(req.params.id);
  res.json(format(req, await transaction(req, (db) => readableProject(req, db, id))));
});

projects.patch('/v1/projects/:id', async (req, res) => {
  const id = idParam(req.params.id);
  const fields = fieldsOf(body(req));
  const row = await transaction(req, (db) => one<ProjectRow>(db, 'select * from app_public.update_project($1, $2)', [id, fields]));
  res.json(projectJson(row));
});

projects.put('/v1/projects/:id', async (req, res) => {
  const id = idParam(req.params.id);
  const b = body(req);
  const forms = b.forms === undefined ? null : JSON.stringify(b.forms);
  const row = await transaction(req, (db) =>
    one<ProjectRow>(db, 'select * from app_public.replace_project($1, $2, $3)', [id, fieldsOf(b), forms]));
  res.json(projectJson(row));
});

projects.delete('/v1/projects/:id', async (req, res) => {
  const id = idParam(req.params.id);
  await transaction(req, (db) => db.query('select app_public.delete_project($1)', [id]));
  res.json(success);
});

/* Project role assignments. */

type AssignedActor = ActorRow & { role_id: number; xml_form_id?: string };

// All form-level assignments, or those of one role.
projects.get('/v1/projects/:id/assignments/forms{/:roleId}', async (req, res) => {
  const id = idParam(req.params.id);
  const rows = await transaction(req, (db) =>
    many<AssignedActor>(db, 'select * from app_public.project_form_assignments($1, $2)', [id, req.params.roleId ?? null]));
  res.json(rows.map((r) => formAssignmentJson(req, r)));
});

function formAssignmentJson(req: Request, r: AssignedActor) {
  return extended(req)
    ? { actor: actorJson(r), xmlFormId: r.xml_form_id, roleId: r.role_id }
    : { actorId: r.id, xmlFormId: r.xml_form_id, roleId: r.role_id };
}

projects.get('/v1/projects/:id/assignments', async (req, res) => {
  const id = idParam(req.params.id);
  const rows = await transaction(req, (db) => many<AssignedActor>(db, 'select * from app_public.project_assignments($1)', [id]));
  res.json(rows.map((r) => extended(req) ? { actor: actorJson(r), roleId: r.role_id } : { actorId: r.id, roleId: r.role_id }));
});

projects.get('/v1/projects/:id/assignments/:roleId', async (req, res) => {
  const id = idParam(req.params.id);
  const rows = await transaction(req, (db) =>
    many<AssignedActor>(db, 'select * from app_public.project_assignments($1, $2)', [id, req.params.roleId]));
  res.json(rows.map(actorJson));
});

for (const [method, fn] of [['post', 'assign_role'], ['delete', 'unassign_role']] as const) {
  projects[method]('/v1/projects/:id/assignments/:roleId/:actorId', async (req, res) => {
    const id = idParam(req.params.id);
    const actorId = idParam(req.params.actorId);
    await transaction(req, (db) => db.query(`select app_public.${fn}($1, $2, app_hidden.project_actee($3))`,
      [req.params.roleId, actorId, id]));
    res.json(success);
  });
}
