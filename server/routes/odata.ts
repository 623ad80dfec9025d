// OData form services: …/forms/:xmlFormId.svc and …/forms/:xmlFormId/draft.svc — the service document,
// $metadata, and data documents streamed from a PostgreSQL cursor (filter, order, paging, count in SQL).
import { Router, type Request, type Response } from 'express';
import QueryStream from 'pg-query-stream';
import type { Db } from '../db.ts';
import { drained, fresh, transaction, one } from '../http.ts';
import { problems } from '../errors.ts';
import {
  formSchema, serviceDocument, metadataDocument, resolveTable, selection, submissionEntity, repeatEntity,
  repeatRowsOf, ancestorId, dataDocumentStart, dataDocumentEnd, nextLinkFor,
  type ODataField, type FormSchema, type ODataTable, type SubmissionRow, type RepeatRow, type EntityOptions,
} from '../formats/odata.ts';
import { parseODataQuery, encodeSkiptoken, oDataProblems, type ODataQuery } from '../formats/odata-query.ts';
import { feedSql, singleSubmissionSql } from './odata-sql.ts';

export const odata = Router();

const jsonType = 'application/json; charset=utf-8; odata.metadata=minimal';

interface Service {
  formId: number;
  formDefId: number;
  xmlFormId: string;
  draft: boolean;
  schema: FormSchema;
  /** Absolute URL of the service root (…/forms/x.svc), as the client addressed it. */
  url: string;
}

/** The path of a request to a form service: project, form, draft or not, and the part after `.svc`. */
const servicePath = /^\/v1\/projects\/([^/]+)\/forms\/([^/]+?)(\/draft)?\.svc(?:\/(.*))?$/;

function decode(part: string): string {
  try { return decodeURIComponent(part); } catch { throw problems.notFound(); }
}

async function openService(req: Request, db: Db, match: RegExpExecArray): Promise<Service> {
  const projectId = decode(match[1]);
  if (!/^\d+$/.test(projectId) || Number(projectId) > 2147483647) throw problems.notFound();
  const draft = match[3] !== undefined;
  const form = await one<{ form_id: number; form_def_id: number; xml_form_id: string; fields: ODataField[] }>(db,
    'select * from app_public.odata_form($1, $2, $3)', [Number(projectId), decode(match[2]), draft]);
  const original = req.originalUrl.split('?')[0];
  const svcEnd = original.search(/\.svc(\/|$)/i) + 4;
  return {
    formId: form.form_id, formDefId: form.form_def_id, xmlFormId: form.xml_form_id, draft,
    schema: formSchema(form.fields), url: `${req.protocol}://${req.get('host')}${original.slice(0, svcEnd)}`,
  };
}

odata.get(servicePath, async (req, res) => {
  const match = servicePath.exec(req.path)!;
  const rest = match[4] ?? '';
  res.set('OData-Version', '4.0');
  await transaction(req, async (db) => {
    await db.query("set local time zone 'UTC'");
    const service = await openService(req, db, match);
    if (rest === '') {
      res.type(jsonType).send(JSON.stringify(serviceDocument(service.schema, service.url)));
    } else if (rest === '$metadata') {
      if (fresh(req, res, `metadata ${service.formDefId} ${service.xmlFormId}`)) return;
      res.type('application/xml; charset=utf-8').send(metadataDocument(service.xmlFormId, service.schema));
    } else {
      try {
        await dataDocument(req, res, db, service, rest);
      } catch (err) {
        if (!res.headersSent) res.removeHeader('ETag'); // an error is no version of the document
        throw err;
      }
    }
  });
});

/** One segment of a data path: a table or navigation name, with an optional key `('…')`. */
function segments(rest: string): Array<{ name: string; key: string | null }> {
  const parts = rest.split('/');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts.map((raw) => {
    const m = /^([^(]+)(?:\('((?:[^']|'')*)'\))?$/.exec(decode(raw));
    if (!m) throw problems.notFound();
    return { name: m[1], key: m[2] === undefined ? null : m[2].replace(/''/g, "'") };
  });
}

async function dataDocument(req: Request, res: Response, db: Db, service: Service, rest: string) {
  const path = segments(rest);
  const tableName = path.map((s) => s.name).join('.');
  const table = resolveTable(service.schema, tableName);
  if (!table) throw problems.notFound();
  const query = parseODataQuery(req.query as Record<string, unknown>);
  const options: EntityOptions = { wkt: query.wkt, expand: query.expand, selection: selection(service.schema, table, query.select) };

  const { rows: [{ stamp }] } = await db.query('select app_hidden.odata_stamp($1, $2) as stamp', [service.formId, service.draft]);
  if (fresh(req, res, `data ${service.formDefId} ${stamp} ${req.originalUrl}`)) return;

  if (path[0].key !== null) {
    await singleSubmissionDocument(req, res, db, service, table, path, query, options);
  } else if (path.length === 1) {
    await streamFeed(req, res, db, service, table, query, options);
  } else {
    throw problems.notFound();
  }
}

/** Streams a table: rows are written as PostgreSQL produces them, memory stays flat. */
async function streamFeed(req: Request, res: Response, db: Db, service: Service, table: ODataTable,
  query: ODataQuery, options: EntityOptions) {
  const feed = feedSql(service.schema, table, service.formId, service.draft, query);
  const count = feed.count ? Number((await db.query(feed.count.sql, feed.count.values)).rows[0].count) : null;
  const stream = db.query(new QueryStream(feed.sql, feed.values, { batchSize: 100, highWaterMark: 100 }));
  let written = 0;
  let last: Record<string, any> | null = null;
  let more = false;
  let chunk = ''; // rows are sent in chunks of about 64 kB: fewer, larger writes
  try {
    for await (const row of stream as AsyncIterable<Record<string, any>>) {
      if (query.top !== undefined && written >= query.top) { more = true; break; }
      const entity = table.repeat
        ? repeatEntity(table, row as RepeatRow, options)
        : submissionEntity(service.schema, row as SubmissionRow, options);
      chunk += (written === 0 ? dataDocumentStart : ',') + JSON.stringify(entity);
      if (written === 0) res.status(200).type(jsonType);
      written += 1;
      last = row;
      if (chunk.length < 65536) continue;
      const flushed = res.write(chunk);
      chunk = '';
      if (!flushed && !(await drained(res))) return; // the client went away: stop reading
    }
  } finally {
    if (!stream.destroyed) stream.destroy();
  }
  if (written === 0) res.status(200).type(jsonType).write(dataDocumentStart);
  else if (chunk !== '') res.write(chunk);
  const nextLink = more && last
    ? nextLinkFor(absoluteUrl(req), encodeSkiptoken(table.repeat
      ? { repeatId: ancestorId(table, last as RepeatRow, table.repeat), k: last.cursor }
      : { instanceId: last.instance_id, k: last.cursor }))
    : null;
  res.end(dataDocumentEnd({ serviceUrl: service.url, table: table.name, nextLink, count }));
}

function absoluteUrl(req: Request): string {
  return `${req.protocol}://${req.get('host')}${req.originalUrl}`;
}

/** `Submissions('id')` and `Submissions('id')/repeat('…')/nested`: one submission, paged in memory like Central. */
async function singleSubmissionDocument(req: Request, res: Response, db: Db, service: Service, table: ODataTable,
  path: Array<{ name: string; key: string | null }>, query: ODataQuery, options: EntityOptions) {
  const single = singleSubmissionSql(service.formId, service.draft, path[0].key!);
  const { rows: [row] } = await db.query(single.sql, single.values);
  if (!row) throw problems.notFound();
  const submission = row as SubmissionRow;

  let items: Array<{ id: string; entity: Record<string, unknown> }>;
  if (!table.repeat) {
    if (path.length > 1) throw problems.notFound();
    items = [{ id: submission.instance_id, entity: submissionEntity(service.schema, submission, options) }];
  } else {
    let rows = repeatRowsOf(table, submission.instance_id, submission.data);
    // The last keyed segment after the submission names an ancestor instance: keep its descendants.
    const keyedAt = path.map((s, i) => (s.key !== null ? i : -1)).reduce((a, b) => Math.max(a, b));
    if (keyedAt > 0) {
      const ancestorPath = '/' + path.slice(1, keyedAt + 1).map((s) => s.name).join('/');
      const ancestor = table.repeats.find((r) => r.odataPath === ancestorPath);
      if (!ancestor || ancestor === table.repeat) throw problems.notFound();
      rows = rows.filter((r) => ancestorId(table, r, ancestor) === path[keyedAt].key);
    }
    items = rows.map((r) => ({ id: ancestorId(table, r, table.repeat!), entity: repeatEntity(table, r, options) }));
  }

  const count = items.length;
  let offset = query.skip;
  if (query.skiptoken) {
    const repeatId = query.skiptoken.repeatId;
    if (typeof repeatId !== 'string') throw oDataProblems.invalidSkiptoken();
    offset = items.findIndex((item) => item.id === repeatId) + 1;
    if (offset === 0) throw oDataProblems.repeatIdNotFound();
  }
  const page = items.slice(offset, query.top === undefined ? undefined : offset + query.top);
  const remaining = count - offset - page.length;
  const nextLink = query.top !== undefined && remaining > 0 && page.length > 0
    ? nextLinkFor(absoluteUrl(req), encodeSkiptoken(table.repeat ? { repeatId: page[page.length - 1].id } : { instanceId: submission.instance_id }))
    : null;
  const values = page.map((item) => item.entity);
  res.status(200).type(jsonType).send(dataDocumentStart + values.map((v) => JSON.stringify(v)).join(',')
    + dataDocumentEnd({ serviceUrl: service.url, table: table.name, nextLink, count: query.count ? count : null }));
}
