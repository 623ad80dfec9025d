// Entities of a dataset: listing, creating (one or in bulk), reading, updating (baseVersion/force/resolve),
// deleting and restoring (one or in bulk), versions with conflict details, diffs, audits, creators, GeoJSON.
import { Router, type Request } from 'express';
import type { Db } from '../db.ts';
import { body, extended, many, success, transaction } from '../http.ts';
import { problems } from '../errors.ts';
import { auditJson, type ActorRow, type AuditRow } from '../formats/json.ts';
import {
  entityJson, featureCollection, versionDiffs, versionsWithConflicts,
  type EntityRow, type ResolveEvent, type VersionRow, type VersionSource,
} from '../formats/entities.ts';
import { entityQuery, nameParam, projectParam, readDataset } from './datasets.ts';

export const entities = Router();

const base = '/v1/projects/:projectId/datasets/:name/entities';
const isTrueFlag = (v: unknown) => typeof v === 'string' && v.toLowerCase() === 'true';

const entityColumns = `e.id as entity_id, e.uuid::text as uuid, e.creator_id as entity_creator_id, e.conflict,
  e.created_at as entity_created_at, e.updated_at, e.deleted_at`;
const versionColumns = `x.id, x.version, x.current, x.label, x.data, x.data_received, x.base_version, x.branch_id::text,
  x.trunk_version, x.branch_base_version, x.conflicting_properties, x.creator_id, x.user_agent, x.created_at`;

type EntityWithVersion = EntityRow & { current_version: VersionRow; creator: ActorRow | null };

/** Entities with their current versions (and creators, for extended metadata), newest first. */
async function entityRows(db: Db, where: string, values: unknown[], withCreators: boolean): Promise<EntityWithVersion[]> {
  const rows = await many<EntityRow & VersionRow & { entity_id: number; entity_creator_id: number | null; entity_created_at: Date;
    creator: unknown; version_creator: unknown }>(db,
    `select ${versionColumns}, ${entityColumns}
            ${withCreators ? `, app_hidden.entity_actor_json(e.creator_id) as creator, app_hidden.entity_actor_json(x.creator_id) as version_creator` : ''}
     from app_public.entities e join app_public.entity_defs x on x.entity_id = e.id and x.current
     where ${where} order by e.created_at desc, e.id desc`, values);
  return rows.map((r) => ({
    id: r.entity_id, uuid: r.uuid, creator_id: r.entity_creator_id, conflict: r.conflict,
    created_at: r.entity_created_at, updated_at: r.updated_at, deleted_at: r.deleted_at,
    creator: withCreators ? camelActor(r.creator) : null,
    current_version: { ...r, creator: withCreators ? camelActor(r.version_creator) : null },
  }));
}

/** actor_json (camelCase from SQL) back to the row shape actorJson expects. */
function camelActor(a: unknown): ActorRow | null {
  if (!a) return null;
  const j = a as { id: number; type: string; displayName: string; createdAt: Date; updatedAt: Date | null; deletedAt: Date | null };
  return { id: j.id, type: j.type, display_name: j.displayName, created_at: j.createdAt, updated_at: j.updatedAt, deleted_at: j.deletedAt };
}

async function oneEntity(db: Db, datasetId: number, uuid: string, withCreators: boolean, deleted = false): Promise<EntityWithVersion> {
  const rows = await entityRows(db, `e.dataset_id = $1 and e.uuid::text = lower(regexp_replace($2, '^uuid:', '')) and (e.deleted_at is not null) = $3`,
    [datasetId, uuid, deleted], withCreators);
  if (rows.length === 0) throw problems.notFound();
  return rows[0];
}

const entityOut = (e: EntityWithVersion, req: Request, data: boolean) =>
  entityJson(e, e.current_version, { data, extended: extended(req), creator: e.creator });

entities.get(base, async (req, res) => {
  const projectId = projectParam(req);
  const deleted = isTrueFlag(req.query.deleted);
  const rows = await transaction(req, async (db) => {
    const d = await readDataset(db, projectId, nameParam(req), 'entity.list');
    return entityRows(db, `e.dataset_id = $1 and (e.deleted_at is not null) = $2`, [d.id, deleted], extended(req));
  });
  res.json(rows.map((e) => entityOut(e, req, false)));
});

entities.post(base, async (req, res) => {
  const projectId = projectParam(req);
  const b = body(req);
  const bulk = 'entities' in b || 'source' in b;
  const items = bulk ? b.entities : [b];
  const result = await transaction(req, async (db) => {
    const created = await many<{ uuid: string; dataset_id: number }>(db,
      'select uuid::text, dataset_id from app_public.create_entities($1, $2, $3::jsonb, $4::jsonb, $5)',
      [projectId, nameParam(req), JSON.stringify(items ?? null), JSON.stringify(b.source ?? null), bulk]);
    return bulk ? null : oneEntity(db, created[0].dataset_id, created[0].uuid, extended(req));
  });
  res.json(result === null ? success : entityOut(result, req, true));
});

entities.get(`${base}/creators`, async (req, res) => {
  const projectId = projectParam(req);
  const rows = await transaction(req, (db) => many<{ actor: unknown }>(db,
    'select c as actor from app_public.dataset_creators($1, $2) c', [projectId, nameParam(req)]));
  res.json(rows.map((r) => r.actor));
});

function uuidList(req: Request): string[] {
  const ids = body(req).ids;
  if (!Array.isArray(ids) || ids.length === 0) throw problems.missingParameter('ids');
  if (ids.some((i) => typeof i !== 'string')) throw problems.invalidDataType('ids', ids, 'array of strings');
  return ids as string[];
}

entities.post(`${base}/bulk-delete`, async (req, res) => {
  const projectId = projectParam(req);
  const ids = uuidList(req);
  await transaction(req, (db) => db.query('select app_public.delete_entities($1, $2, $3, true)', [projectId, nameParam(req), ids]));
  res.json(success);
});

entities.post(`${base}/bulk-restore`, async (req, res) => {
  const projectId = projectParam(req);
  const ids = uuidList(req);
  await transaction(req, (db) => db.query('select app_public.restore_entities($1, $2, $3, true)', [projectId, nameParam(req), ids]));
  res.json(success);
});

entities.get(`${base}/:uuid`, async (req, res) => {
  const projectId = projectParam(req);
  const e = await transaction(req, async (db) => {
    const d = await readDataset(db, projectId, nameParam(req), 'entity.read');
    return oneEntity(db, d.id, req.params.uuid as string, extended(req));
  });
  res.json(entityOut(e, req, true));
});

function versionParam(raw: unknown): number | null {
  if (raw === undefined || raw === '') return null;
  if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw)) throw problems.invalidDataType('baseVersion', raw, 'integer');
  return Number(raw);
}

entities.patch(`${base}/:uuid`, async (req, res) => {
  const projectId = projectParam(req);
  const b = body(req);
  const baseVersion = versionParam(req.query.baseVersion);
  const e = await transaction(req, async (db) => {
    const { rows: [r] } = await db.query<{ dataset_id: number; uuid: string }>(
      'select dataset_id, uuid::text from app_public.update_entity($1, $2, $3, $4::jsonb, $5, $6, $7)',
      [projectId, nameParam(req), req.params.uuid, JSON.stringify(b), baseVersion, isTrueFlag(req.query.force), isTrueFlag(req.query.resolve)]);
    return oneEntity(db, r.dataset_id, r.uuid, extended(req));
  });
  res.json(entityOut(e, req, true));
});

entities.delete(`${base}/:uuid`, async (req, res) => {
  const projectId = projectParam(req);
  await transaction(req, (db) => db.query('select app_public.delete_entities($1, $2, $3)', [projectId, nameParam(req), [req.params.uuid]]));
  res.json(success);
});

entities.post(`${base}/:uuid/restore`, async (req, res) => {
  const projectId = projectParam(req);
  await transaction(req, (db) => db.query('select app_public.restore_entities($1, $2, $3)', [projectId, nameParam(req), [req.params.uuid]]));
  res.json(success);
});

/** Every version of an entity, oldest first, with its source and (extended) creator. */
async function versionsOf(db: Db, req: Request): Promise<{ versions: (VersionRow & VersionSource)[]; resolve: ResolveEvent | null }> {
  const d = await readDataset(db, projectParam(req), nameParam(req), 'entity.read');
  const e = await oneEntity(db, d.id, req.params.uuid as string, false);
  const versions = await many<VersionRow & VersionSource & { creator_json: unknown }>(db,
    `select ${versionColumns}, app_hidden.entity_actor_json(x.creator_id) as creator_json,
            s.type as source_type, s.details as source_details,
            (select jsonb_build_object('action', a.action, 'actorId', a.actor_id, 'loggedAt', a.logged_at, 'details', a.details)
             from app_public.entity_def_sources src cross join lateral (select * from app_public.audits where id = src.audit_id) a
             where src.id = s.id) as audit,
            case when s.submission_def_id is not null then
              (select jsonb_build_object('instanceId', sd.instance_id, 'submitterId', sd.submitter_id, 'createdAt', app_hidden.iso(sd.created_at),
                                         'xmlFormId', f.xml_form_id)
               from app_public.submission_defs sd join app_public.forms f on f.id = sd.form_id where sd.id = s.submission_def_id) end as submission
     from app_public.entity_defs x left join app_public.entity_def_sources s on s.id = x.source_id
     where x.entity_id = $1 order by x.version`, [e.id]);
  const { rows: [resolve] } = await db.query<{ entity_def_id: number }>(
    `select (a.details->>'entityDefId')::bigint as entity_def_id from app_public.entity_audits($1, $2, $3) a
     where a.action = 'entity.update.resolve' order by a.logged_at desc limit 1`, [projectParam(req), nameParam(req), e.uuid]);
  return { versions: versions.map((v) => ({ ...v, creator: camelActor(v.creator_json) })), resolve: resolve ?? null };
}

entities.get(`${base}/:uuid/versions`, async (req, res) => {
  const { versions, resolve } = await transaction(req, (db) => versionsOf(db, req));
  res.json(versionsWithConflicts(versions, resolve, { extended: extended(req), relevantOnly: isTrueFlag(req.query.relevantToConflict) }));
});

entities.get(`${base}/:uuid/diffs`, async (req, res) => {
  const { versions } = await transaction(req, (db) => versionsOf(db, req));
  res.json(versionDiffs(versions));
});

entities.get(`${base}/:uuid/audits`, async (req, res) => {
  const projectId = projectParam(req);
  const rows = await transaction(req, (db) => many<AuditRow & { actor: unknown }>(db,
    'select a.* from app_public.entity_audits($1, $2, $3) a', [projectId, nameParam(req), req.params.uuid]));
  res.json(rows.map((r) => (extended(req) ? { ...auditJson(r), actor: r.actor } : auditJson(r))));
});

entities.get(`${base}/:uuid/geojson`, async (req, res) => {
  const projectId = projectParam(req);
  const e = await transaction(req, async (db) => {
    const d = await readDataset(db, projectId, nameParam(req), 'entity.read');
    return oneEntity(db, d.id, req.params.uuid as string, false);
  });
  res.json(featureCollection([{ uuid: e.uuid, geometry: e.current_version.data.geometry }]));
});

entities.get('/v1/projects/:projectId/datasets/:name/entities.geojson', async (req, res) => {
  const projectId = projectParam(req);
  const limit = typeof req.query.limit === 'string' && /^\d+$/.test(req.query.limit) ? Number(req.query.limit) : null;
  const rows = await transaction(req, async (db) => {
    const d = await readDataset(db, projectId, nameParam(req), 'entity.list');
    const where = entityQuery(d.id, req.query as Record<string, unknown>);
    return many<{ uuid: string; geometry: string | undefined }>(db,
      `select e.uuid::text, x.data->>'geometry' as geometry
       from app_public.entities e join app_public.entity_defs x on x.entity_id = e.id and x.current
       where ${where.where} and x.data ? 'geometry' order by e.created_at desc, e.id desc
       ${limit === null ? '' : `limit ${limit}`}`, where.values);
  });
  res.json(featureCollection(rows));
});
