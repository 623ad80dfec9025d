// Submission geodata as GeoJSON FeatureCollections: …/submissions.geojson ($filter, limit, fieldpath, deleted),
// …/submissions/:instanceId.geojson and …/submissions/:instanceId/versions/:versionId.geojson. One feature per
// submission (id = instanceID) with the geometry of the asked field, or of the version's first geo field
// outside repeats, named then in properties.fieldpath. The geometry is computed in SQL from the structured data.
import { Router, type Request } from 'express';
import type { Db } from '../db.ts';
import { transaction, one, idParam } from '../http.ts';
import { exportFilterSql } from './submission-export-query.ts';

export const submissionGeojson = Router();

const base = '/v1/projects/:projectId/forms/:xmlFormId/submissions';

function single(value: unknown): string | undefined {
  if (Array.isArray(value)) return single(value[0]);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

interface GeoQuery {
  /** Extra condition on aliases s (submission) and d (version), with its parameters from $5 on. */
  where: string;
  params: unknown[];
  /** Only the current version of each submission (the collection and one submission), not a named version. */
  current: boolean;
  deleted: boolean;
  limit: number | null;
}

async function featureCollection(db: Db, req: Request, q: GeoQuery): Promise<unknown> {
  const form = await one<{ id: number }>(db, `select id from app_hidden.form_for($1, $2, 'submission.read')`,
    [idParam(String(req.params.projectId)), String(req.params.xmlFormId)]);
  const fieldpath = single(req.query.fieldpath) ?? null;
  const row = await one<{ geojson: unknown }>(db,
    `select json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(x.feature order by x.n), '[]'::json)) as geojson
     from (
       select row_number() over (order by s.created_at desc, s.id desc) as n,
              json_build_object('type', 'Feature', 'id', ${q.current ? 's.instance_id' : 'd.instance_id'}, 'geometry', g.geometry,
                'properties', case when $3::text is null then json_build_object('fieldpath', g.path) end) as feature
       from app_public.submissions s
       join app_public.submission_defs d on d.submission_id = s.id ${q.current ? 'and d.current' : ''}
       cross join lateral app_hidden.submission_geometry(d.form_def_id, d.data, $3::text) g
       where s.form_id = $1 and not s.draft and (s.deleted_at is not null) = $2 and g.geometry is not null and ${q.where}
       order by s.created_at desc, s.id desc
       limit $4
     ) x`, [form.id, q.deleted, fieldpath, q.limit, ...q.params]);
  return row.geojson;
}

submissionGeojson.get(`${base}.geojson`, async (req, res) => {
  const limitText = single(req.query.limit);
  const limit = limitText !== undefined && /^\d+$/.test(limitText) ? Number(limitText) : null;
  const deleted = single(req.query.deleted)?.toLowerCase() === 'true';
  const where = exportFilterSql(req);
  const geojson = await transaction(req, (db) => featureCollection(db, req, { where, params: [], current: true, deleted, limit }));
  res.json(geojson);
});

/** 404.1 unless the (live) submission exists; the feature collection itself may be empty. */
async function assertSubmission(db: Db, req: Request, instanceId: string, versionId?: string) {
  await one(db, `select 1 from app_public.submissions s join app_public.submission_defs d on d.submission_id = s.id
    where s.form_id = (app_hidden.form_for($1, $2, 'submission.read')).id and not s.draft and s.deleted_at is null
      and s.instance_id = $3 and ($4::text is null or d.instance_id = $4) limit 1`,
  [idParam(String(req.params.projectId)), String(req.params.xmlFormId), instanceId, versionId ?? null]);
}

submissionGeojson.get(`${base}/:instanceId.geojson`, async (req, res) => {
  const instanceId = String(req.params.instanceId);
  const geojson = await transaction(req, async (db) => {
    await assertSubmission(db, req, instanceId);
    return featureCollection(db, req, { where: 's.instance_id = $5', params: [instanceId], current: true, deleted: false, limit: null });
  });
  res.json(geojson);
});

submissionGeojson.get(`${base}/:instanceId/versions/:versionId.geojson`, async (req, res) => {
  const instanceId = String(req.params.instanceId);
  const versionId = String(req.params.versionId);
  const geojson = await transaction(req, async (db) => {
    await assertSubmission(db, req, instanceId, versionId);
    return featureCollection(db, req, { where: 's.instance_id = $5 and d.instance_id = $6', params: [instanceId, versionId],
      current: false, deleted: false, limit: null });
  });
  res.json(geojson);
});
