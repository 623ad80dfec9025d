// OData dataset services: …/datasets/:name.svc — the service document, $metadata, and the Entities data document
// streamed from a PostgreSQL cursor under row-level security ($filter, $search, $orderby, paging, $count in SQL).
import { Router, type Request, type Response } from 'express';
import QueryStream from 'pg-query-stream';
import type { Db } from '../db.ts';
import { drained, fresh, transaction, one } from '../http.ts';
import { problems } from '../errors.ts';
import {
  SqlParams, compileFilter, parseOrderBy, orderBySql, afterCursorSql, cursorValuesSql, parseODataQuery, encodeSkiptoken,
  oDataProblems, type Column, type ColumnMap, type SortKey, type ODataQuery,
} from '../formats/odata-query.ts';
import { dataDocumentStart, dataDocumentEnd, nextLinkFor } from '../formats/odata.ts';
import {
  entityProperties, entityServiceDocument, entityMetadataDocument, entitySelection, entityODataJson,
  type EntityProperty, type EntityODataRow, type EntitySelection,
} from '../formats/odata-entities.ts';
import { entityColumns, entitySearchSql } from './datasets.ts';

export const odataEntities = Router();

const jsonType = 'application/json; charset=utf-8; odata.metadata=minimal';

/** …/datasets/<name>.svc[/<rest>]: project, dataset name, and what follows `.svc`. */
const servicePath = /^\/v1\/projects\/([^/]+)\/datasets\/([^/]+?)\.svc(?:\/(.*))?$/;

interface Service {
  datasetId: number;
  name: string;
  properties: EntityProperty[];
  /** Absolute URL of the service root, as the client addressed it. */
  url: string;
}

function decode(part: string): string {
  try { return decodeURIComponent(part); } catch { throw problems.notFound(); }
}

async function openService(req: Request, db: Db, match: RegExpExecArray): Promise<Service> {
  const projectId = decode(match[1]);
  if (!/^\d+$/.test(projectId) || Number(projectId) > 2147483647) throw problems.notFound();
  const d = await one<{ id: number; name: string; properties: string[] }>(db,
    'select * from app_public.odata_dataset($1, $2)', [Number(projectId), decode(match[2])]);
  const original = req.originalUrl.split('?')[0];
  const svcEnd = original.search(/\.svc(\/|$)/i) + 4;
  return { datasetId: d.id, name: d.name, properties: entityProperties(d.properties), url: `${absoluteBase(req)}${original.slice(0, svcEnd)}` };
}

const absoluteBase = (req: Request) => `${req.protocol}://${req.get('host')}`;

odataEntities.get(servicePath, async (req, res) => {
  const match = servicePath.exec(req.path)!;
  const rest = (match[3] ?? '').replace(/\/$/, '');
  res.set('OData-Version', '4.0');
  await transaction(req, async (db) => {
    const service = await openService(req, db, match);
    if (rest === '') res.type(jsonType).send(JSON.stringify(entityServiceDocument(service.url)));
    else if (rest === '$metadata') res.type('application/xml; charset=utf-8').send(entityMetadataDocument(service.name, service.properties));
    else if (rest === 'Entities') {
      try {
        await streamEntities(req, res, db, service);
      } catch (err) {
        if (!res.headersSent) res.removeHeader('ETag'); // an error is no version of the document
        throw err;
      }
    } else throw problems.notFound();
  });
});

/** What $filter and $orderby may name: Central's __id and __system fields, and beyond Central label and properties. */
function columnsFor(properties: EntityProperty[]): ColumnMap {
  const columns = new Map<string, Column>(entityColumns);
  columns.set('label', { sql: 'x.label', type: 'text', notNull: true });
  for (const p of properties) columns.set(p.odataName, { sql: `(x.data->>'${p.name.replace(/'/g, "''")}')`, type: 'text' });
  return columns;
}

interface FeedSql { sql: string; values: unknown[]; count?: { sql: string; values: unknown[] } }

/** The Entities query: the dataset's current versions, filtered, ordered (newest first by default) and paged. */
function feedSql(service: Service, query: ODataQuery, search: unknown): FeedSql {
  const columns = columnsFor(service.properties);
  const params = new SqlParams([service.datasetId]);
  const filter = compileFilter(query.filter, columns, params);
  const where = ['e.dataset_id = $1', filter.sql, entitySearchSql(search, params)];
  if (!filter.mentionsDeletedAt) where.push('e.deleted_at is null');
  const from = 'app_public.entities e join app_public.entity_defs x on x.entity_id = e.id and x.current';
  const count = query.count ? { sql: `select count(*) as count from ${from} where ${where.join(' and ')}`, values: [...params.values] } : undefined;

  const ordered = parseOrderBy(query.orderby, columns);
  const keys: SortKey[] = ordered.length > 0 ? ordered : [{ sql: 'e.created_at', type: 'timestamptz', notNull: true, desc: true }];
  keys.push({ sql: 'e.id', type: 'bigint', notNull: true, desc: keys[0].desc });
  if (query.skiptoken) {
    if (!Array.isArray(query.skiptoken.k)) throw oDataProblems.invalidSkiptoken();
    where.push(afterCursorSql(keys, query.skiptoken.k, params));
  }
  const page = [`order by ${orderBySql(keys)}`];
  if (query.top !== undefined) page.push(`limit ${params.add(query.top + 1, 'bigint')}`);
  if (query.skip > 0) page.push(`offset ${params.add(query.skip, 'bigint')}`);
  const sql = `select e.uuid::text as uuid, x.label, x.data, e.created_at, e.creator_id, app_hidden.odata_actor_name(e.creator_id) as creator_name,
      x.version, e.updated_at, e.deleted_at, e.conflict, ${cursorValuesSql(keys)} as cursor
    from ${from}
    where ${where.join(' and ')}
    ${page.join(' ')}`;
  return { sql, values: params.values, count };
}

/** Streams the rows as PostgreSQL produces them; one row past $top tells whether there is a next page.
 * ETag / If-None-Match → 304 as for form feeds: the dataset's stamp and the query. */
async function streamEntities(req: Request, res: Response, db: Db, service: Service) {
  const query = parseODataQuery(req.query as Record<string, unknown>);
  const selection: EntitySelection | undefined = entitySelection(query.select, service.properties);
  const feed = feedSql(service, query, req.query.$search);
  const { rows: [{ stamp }] } = await db.query('select app_hidden.odata_dataset_stamp($1) as stamp', [service.datasetId]);
  if (fresh(req, res, `entities ${service.datasetId} ${stamp} ${req.originalUrl}`)) return;
  const count = feed.count ? Number((await db.query(feed.count.sql, feed.count.values)).rows[0].count) : null;
  const stream = db.query(new QueryStream(feed.sql, feed.values, { batchSize: 500 }));
  let written = 0;
  let last: (EntityODataRow & { cursor: unknown[] }) | null = null;
  let more = false;
  try {
    for await (const row of stream as AsyncIterable<EntityODataRow & { cursor: unknown[] }>) {
      if (query.top !== undefined && written >= query.top) { more = true; break; }
      if (written === 0) res.status(200).type(jsonType); // only once rows come: an error before is still a problem response
      const chunk = (written === 0 ? dataDocumentStart : ',') + JSON.stringify(entityODataJson(row, service.properties, selection));
      written += 1;
      last = row;
      if (!res.write(chunk) && !(await drained(res))) return; // the client went away
    }
  } finally {
    if (!stream.destroyed) stream.destroy();
  }
  if (written === 0) res.status(200).type(jsonType).write(dataDocumentStart);
  const nextLink = more && last
    ? nextLinkFor(`${absoluteBase(req)}${req.originalUrl}`, encodeSkiptoken({ uuid: last.uuid, k: last.cursor }))
    : null;
  res.end(dataDocumentEnd({ serviceUrl: service.url, table: 'Entities', nextLink, count }));
}
