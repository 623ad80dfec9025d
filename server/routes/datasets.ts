// Datasets (Entity Lists): listing, creating, metadata, access settings, deletion, properties, the CSV
// download (live and trashed), the OpenRosa integrity check, and entity lists served as form attachments.
// The logic is in SQL (50–56-*.sql).
import { Router, type Request, type Response, type NextFunction } from 'express';
import QueryStream from 'pg-query-stream';
import type { Db } from '../db.ts';
import { body, drained, extended, fresh, idParam, many, one, optionalString, success, transaction } from '../http.ts';
import { compileFilter, SqlParams, type ColumnMap } from '../formats/odata-query.ts';
import { Problem, problems } from '../errors.ts';
import { projectEmbeds } from './project-embeds.ts';
import { readForm, formParam, contentDisposition, type Version } from './forms-common.ts';
import { withDraftToken } from './openrosa.ts';
import {
  datasetJson, datasetMetadataJson, exportHeader, exportLine, extendedDatasetJson,
  type DatasetRow, type DatasetStats, type ExportRow, type FormKey, type PropertyRow,
} from '../formats/entities.ts';

export const datasets = Router();

const isTrueFlag = (v: unknown) => typeof v === 'string' && v.toLowerCase() === 'true';

export const datasetColumns = `d.id, d.project_id, d.name, d.approval_required, d.owner_only, d.access_filter, d.created_at, d.updated_at, d.deleted_at`;

/** A live dataset by project and name on which the actor holds verb (404.1 / 403.1 from SQL). */
export function readDataset(db: Db, projectId: number, name: string, verb: string): Promise<DatasetRow> {
  return one<DatasetRow>(db, `select ${datasetColumns} from app_hidden.dataset_for($1, $2, $3) d`, [projectId, name, verb]);
}

export function projectParam(req: Request): number {
  return idParam(req.params.projectId as string);
}

export function nameParam(req: Request): string {
  return req.params.name as string;
}

/** `…/datasets/:name` also matches OData's `:name.svc`: leave those to the OData router. */
function notOData(req: Request, _res: Response, next: NextFunction) {
  next(nameParam(req).endsWith('.svc') ? 'route' : undefined);
}

const statsColumns = `
  (select count(*) from app_public.entities e where e.dataset_id = d.id and e.deleted_at is null)::int as entities,
  (select count(*) from app_public.entities e where e.dataset_id = d.id and e.deleted_at is null and e.conflict is not null)::int as conflicts,
  (select max(e.created_at) from app_public.entities e where e.dataset_id = d.id and e.deleted_at is null) as last_entity`;

async function listDatasets(db: Db, projectIds: number[], deleted: boolean, withStats: boolean) {
  return many<DatasetRow & DatasetStats>(db,
    `select ${datasetColumns}${withStats ? `, ${statsColumns}` : ''} from app_public.datasets d
     where d.project_id = any ($1) and d.published_at is not null and (d.deleted_at is not null) = $2
     order by d.name`, [projectIds, deleted]);
}

datasets.get('/v1/projects/:projectId/datasets', async (req, res) => {
  const projectId = projectParam(req);
  const deleted = isTrueFlag(req.query.deleted);
  const rows = await transaction(req, async (db) => {
    await db.query(`select app_hidden.assert_can('dataset.list', app_hidden.project_actee($1))`, [projectId]);
    return listDatasets(db, [projectId], deleted, extended(req));
  });
  res.json(rows.map((r) => (extended(req) ? extendedDatasetJson(r, { withId: deleted }) : datasetJson(r, { withId: deleted }))));
});

projectEmbeds.datasets = async (db, projectIds, req) => {
  const rows = await listDatasets(db, projectIds, false, extended(req));
  const byProject = new Map<number, unknown[]>();
  for (const r of rows) byProject.set(r.project_id, [...(byProject.get(r.project_id) ?? []), extended(req) ? extendedDatasetJson(r) : datasetJson(r)]);
  return byProject;
};

/** Name, source forms, linked forms and properties (with the forms that write each), as Central's metadata. */
async function datasetMetadata(db: Db, d: DatasetRow) {
  const formKey = `jsonb_build_object('xmlFormId', f.xml_form_id, 'name', coalesce(fd.name, f.xml_form_id))`;
  const { rows: [extra] } = await db.query<{ last_update: Date | null; source_forms: FormKey[]; linked_forms: FormKey[]; properties: PropertyRow[] }>(
    `select greatest(d.created_at, d.updated_at, (select max(coalesce(e.updated_at, e.created_at)) from app_public.entities e where e.dataset_id = d.id)) as last_update,
       coalesce((select jsonb_agg(${formKey} order by f.xml_form_id) from app_public.forms f join app_public.form_defs fd on fd.id = f.current_def_id
                 where f.deleted_at is null and exists (select 1 from app_public.dataset_form_defs x where x.dataset_id = d.id and x.form_def_id = fd.id)), '[]') as source_forms,
       coalesce((select jsonb_agg(${formKey} order by f.xml_form_id) from app_public.forms f join app_public.form_defs fd on fd.id = f.current_def_id
                 where f.deleted_at is null and exists (select 1 from app_public.form_attachments a where a.form_def_id = fd.id and a.dataset_id = d.id)), '[]') as linked_forms,
       coalesce((select jsonb_agg(jsonb_build_object('name', p.name, 'published_at', app_hidden.iso(p.published_at), 'forms',
                   coalesce((select jsonb_agg(distinct ${formKey}) from app_public.ds_property_fields pf
                             join app_public.form_defs fd on fd.id = pf.form_def_id join app_public.forms f on f.id = fd.form_id
                             where pf.ds_property_id = p.id and f.deleted_at is null and f.current_def_id = fd.id), '[]')) order by p.id)
                 from app_public.ds_properties p where p.dataset_id = d.id), '[]') as properties
     from app_public.datasets d where d.id = $1`, [d.id]);
  return datasetMetadataJson(d, extra);
}

datasets.post('/v1/projects/:projectId/datasets', async (req, res) => {
  const projectId = projectParam(req);
  const fields = JSON.stringify(body(req));
  res.json(await transaction(req, async (db) => {
    const d = await one<DatasetRow>(db, `select ${datasetColumns} from app_public.create_dataset($1, $2::jsonb) d`, [projectId, fields]);
    return datasetMetadata(db, d);
  }));
});

datasets.get('/v1/projects/:projectId/datasets/:name', notOData, async (req, res) => {
  const projectId = projectParam(req);
  res.json(await transaction(req, async (db) => datasetMetadata(db, await readDataset(db, projectId, nameParam(req), 'dataset.read'))));
});

/** ?convert: absent, or true / false (what to do with pending submissions when approval stops being required). */
function convertParam(req: Request): boolean | undefined {
  const raw = req.query.convert;
  if (raw === undefined) return undefined;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new Problem(400.8, `Unexpected convert value ${String(raw)}; only true or false is allowed.`,
    { field: 'convert', value: raw, reason: 'only true or false is allowed.' });
}

datasets.patch('/v1/projects/:projectId/datasets/:name', notOData, async (req, res) => {
  const projectId = projectParam(req);
  const fields = body(req);
  const convert = convertParam(req);
  res.json(await transaction(req, async (db) => {
    if (fields.approvalRequired === false) {
      if (convert === undefined) {
        const { rows: [{ count }] } = await db.query('select app_public.dataset_pending_count($1, $2) as count', [projectId, nameParam(req)]);
        if (count > 0) throw new Problem(400.29, `There are ${count} pending submissions`, { count });
      } else if (convert) {
        await db.query('select app_public.convert_pending_submissions($1, $2)', [projectId, nameParam(req)]);
      }
    }
    const d = await one<DatasetRow>(db, `select ${datasetColumns} from app_public.update_dataset($1, $2, $3::jsonb) d`,
      [projectId, nameParam(req), JSON.stringify(fields)]);
    return datasetMetadata(db, d);
  }));
});

datasets.delete('/v1/projects/:projectId/datasets/:name', notOData, async (req, res) => {
  const projectId = projectParam(req);
  await transaction(req, (db) => db.query('select app_public.delete_dataset($1, $2)', [projectId, nameParam(req)]));
  res.json(success);
});

datasets.post('/v1/projects/:projectId/datasets/:name/properties', async (req, res) => {
  const projectId = projectParam(req);
  const name = optionalString(body(req), 'name') ?? null;
  await transaction(req, (db) => db.query('select app_public.create_property($1, $2, $3)', [projectId, nameParam(req), name]));
  res.json(success);
});

datasets.delete('/v1/projects/:projectId/datasets/:name/properties/:propertyName', async (req, res) => {
  const projectId = projectParam(req);
  await transaction(req, (db) => db.query('select app_public.delete_property($1, $2, $3)',
    [projectId, nameParam(req), req.params.propertyName]));
  res.json(success);
});

// ---------------------------------------------------------------------------------------------
// entities.csv: streamed in the request's transaction; $filter on system columns, $search on data and label.

/** OData paths entities can be filtered on (Central's, plus __system/version). */
export const entityColumns: ColumnMap = new Map([
  ['__id', { sql: 'e.uuid::text', type: 'text', notNull: true }],
  ['__system/createdAt', { sql: 'e.created_at', type: 'timestamptz', notNull: true }],
  ['__system/updatedAt', { sql: 'e.updated_at', type: 'timestamptz' }],
  ['__system/deletedAt', { sql: 'e.deleted_at', type: 'timestamptz' }],
  ['__system/creatorId', { sql: 'e.creator_id', type: 'bigint' }],
  ['__system/conflict', { sql: 'e.conflict', type: 'text' }],
  ['__system/version', { sql: 'x.version', type: 'bigint', notNull: true }],
]);

export interface EntityQuery { where: string; values: unknown[] }

/** `$search` over an entity's label and property values (entity version alias x), web-search style; 'true' when absent. */
export function entitySearchSql(search: unknown, params: SqlParams): string {
  if (typeof search !== 'string' || search.trim() === '') return 'true';
  return `(jsonb_to_tsvector('simple', x.data, '["string"]') || to_tsvector('simple', x.label)) @@ websearch_to_tsquery('simple', ${params.add(search)})`;
}

/** The WHERE clause for a dataset's entities under $filter and $search (deleted ones only when the filter asks). */
export function entityQuery(datasetId: number, query: Record<string, unknown>): EntityQuery {
  const params = new SqlParams([datasetId]);
  const filter = compileFilter(typeof query.$filter === 'string' ? query.$filter : undefined, entityColumns, params);
  const search = entitySearchSql(query.$search, params);
  return {
    where: `e.dataset_id = $1 ${filter.mentionsDeletedAt ? '' : 'and e.deleted_at is null'} and (${filter.sql}) and ${search}`,
    values: params.values,
  };
}

async function propertyNames(db: Db, datasetId: number): Promise<string[]> {
  return (await many<{ name: string }>(db, 'select name from app_public.ds_properties where dataset_id = $1 order by id', [datasetId])).map((p) => p.name);
}

async function streamEntitiesCsv(db: Db, res: Response, datasetId: number, where: EntityQuery, fileName: string) {
  const properties = await propertyNames(db, datasetId);
  res.status(200).type('text/csv; charset=utf-8');
  res.setHeader('Content-Disposition', `attachment; filename="${encodeURIComponent(fileName)}"; filename*=UTF-8''${encodeURIComponent(fileName)}`);
  res.write(exportHeader(properties));
  const stream = db.query(new QueryStream(
    `with creators as (select c.id, app_hidden.entity_actor_json(c.id)->>'displayName' as name
                       from (select distinct creator_id as id from app_public.entities where dataset_id = $1) c)
     select e.uuid::text, x.label, x.data, e.created_at, e.creator_id, c.name as creator_name, x.version, e.updated_at
     from app_public.entities e join app_public.entity_defs x on x.entity_id = e.id and x.current
     left join creators c on c.id = e.creator_id
     where ${where.where} order by e.created_at desc, e.id desc`, where.values, { batchSize: 500 }));
  for await (const row of stream as AsyncIterable<ExportRow>) {
    if (!res.write(exportLine(row, properties)) && !(await drained(res))) break; // the client went away
  }
  res.end();
}

datasets.get('/v1/projects/:projectId/datasets/:name/entities.csv', async (req, res) => {
  const projectId = projectParam(req);
  await transaction(req, async (db) => {
    const d = await readDataset(db, projectId, nameParam(req), 'entity.list');
    const where = entityQuery(d.id, req.query as Record<string, unknown>);
    // The same version stamp and conditional-request handling as the dataset's OData feed.
    const { rows: [{ stamp }] } = await db.query('select app_hidden.odata_dataset_stamp($1) as stamp', [d.id]);
    if (fresh(req, res, `entities.csv ${d.id} ${stamp} ${req.originalUrl}`)) return;
    await streamEntitiesCsv(db, res, d.id, where, `${d.name}.csv`);
  });
});

datasets.get('/v1/projects/:projectId/trash/datasets/:datasetId/entities.csv', async (req, res) => {
  const projectId = projectParam(req);
  const datasetId = idParam(req.params.datasetId as string);
  await transaction(req, async (db) => {
    const d = await one<DatasetRow & { actee_id: string }>(db,
      `select ${datasetColumns}, d.actee_id from app_public.datasets d where d.id = $1 and d.project_id = $2 and d.deleted_at is not null`,
      [datasetId, projectId]).catch(async (err) => {
      // Invisible under RLS: say 403.1 when the dataset exists but the actor may not list it.
      await db.query(`select app_hidden.assert_can('entity.list', app_hidden.project_actee($1))`, [projectId]);
      throw err;
    });
    await db.query(`select app_hidden.assert_can('entity.list', $1)`, [d.actee_id]);
    await streamEntitiesCsv(db, res, d.id, { where: 'e.dataset_id = $1', values: [d.id] }, `${d.name}-deleted.csv`);
  });
});

// ---------------------------------------------------------------------------------------------
// OpenRosa integrity (offline entities): which of the requested entities are deleted.

datasets.get('/v1/projects/:projectId/datasets/:name/integrity', async (req, res) => {
  const projectId = projectParam(req);
  const ids = typeof req.query.id === 'string' ? req.query.id.split(',').filter((s) => s.trim() !== '') : null;
  const rows = await transaction(req, (db) => many<{ uuid: string; deleted: boolean }>(db,
    'select uuid::text, deleted from app_public.dataset_integrity($1, $2, $3)', [projectId, nameParam(req), ids]));
  const entities = rows.map((r) => `    <entity id="${r.uuid}">\n      <deleted>${r.deleted}</deleted>\n    </entity>`).join('\n');
  res.status(200).set('X-OpenRosa-Version', '1.0').type('text/xml; charset=utf-8')
    .send(`<?xml version="1.0" encoding="UTF-8"?>\n<data>\n  <entities>\n${entities}${entities ? '\n' : ''}  </entities>\n</data>`);
});

// ---------------------------------------------------------------------------------------------
// Entity lists for Collect: a form attachment linked to a dataset is served from its entities, filtered for the
// actor in SQL (55-entity-list-files.sql), with the md5 of these bytes as ETag (and as the manifest's hash).
// Mounted before the forms routers, which serve uploaded files: every other attachment passes on to them.

export const entityListFiles = Router();

/** Sends the entity list when the version's attachment `name` is linked to a dataset; false when it is not. */
async function sendEntityList(db: Db, req: Request, res: Response, defId: number, name: string): Promise<boolean> {
  const { rows: [linked] } = await db.query<{ dataset_id: number }>(
    'select dataset_id from app_public.form_attachments where form_def_id = $1 and name = $2 and dataset_id is not null', [defId, name]);
  if (!linked) return false;
  const { rows: [{ md5 }] } = await db.query<{ md5: string }>('select app_public.entity_list_md5($1) as md5', [linked.dataset_id]);
  const etag = `"${md5}"`;
  res.setHeader('ETag', etag);
  const wanted = (req.get('if-none-match') ?? '').split(',').map((t) => t.trim().replace(/^W\//, ''));
  if (wanted.includes(etag) || wanted.includes('*')) {
    res.status(304).end();
    return true;
  }
  res.status(200).type('text/csv; charset=utf-8').setHeader('Content-Disposition', contentDisposition(name));
  const stream = db.query(new QueryStream('select line from app_public.entity_list_csv($1) line', [linked.dataset_id], { batchSize: 1000 }));
  for await (const row of stream as AsyncIterable<{ line: string }>) {
    if (!res.write(row.line) && !(await drained(res))) break; // the client went away
  }
  res.end();
  return true;
}

const attachmentName = (req: Request) => String(req.params.name);
const isCsv = (req: Request) => /\.csv$/i.test(attachmentName(req));

function entityListRoute(path: string, version: (req: Request) => Version) {
  entityListFiles.get(path, async (req, res, next) => {
    if (!isCsv(req)) { next(); return; }
    const sent = await transaction(req, async (db) => {
      const form = await readForm(db, projectParam(req), formParam(req), version(req));
      return sendEntityList(db, req, res, form.def_id!, attachmentName(req));
    });
    if (!sent) next();
  });
}

const formPath = '/v1/projects/:projectId/forms/:xmlFormId';
entityListRoute(`${formPath}/attachments/:name`, () => ({ kind: 'any' }));
entityListRoute(`${formPath}/draft/attachments/:name`, () => ({ kind: 'draft' }));
entityListRoute(`${formPath}/versions/:version/attachments/:name`, (req) => {
  const raw = String(req.params.version);
  return { kind: 'version', version: raw === '___' ? '' : raw }; // Central writes an empty version as ___
});

entityListFiles.get('/v1/test/:token/projects/:projectId/forms/:xmlFormId/draft/attachments/:name', async (req, res, next) => {
  if (!isCsv(req)) { next(); return; }
  const sent = await withDraftToken(req, problems.notFound, (db, defId) => sendEntityList(db, req, res, defId, attachmentName(req)));
  if (!sent) next();
});
