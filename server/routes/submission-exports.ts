// CSV exports: …/submissions.csv.zip (root table, one table per repeat, media files) and …/submissions.csv
// (root only), GET or POST, for published and draft submissions. Rows stream from database cursors over
// the structured data stored at ingestion, one table after another, so memory stays flat in N.
import { Router, type Request, type Response } from 'express';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import crypto from 'node:crypto';
import QueryStream from 'pg-query-stream';
import yazl from 'yazl';
import type { Db } from '../db.ts';
import { transaction, one, many, idParam } from '../http.ts';
import { problems } from '../errors.ts';
import { csvTables, csvRecord, rootRow, repeatRows, type CsvTable, type ExportedSubmission, type Cell } from '../formats/csv.ts';
import type { SchemaField, StructuredData } from '../formats/submission.ts';
import {
  passphrasesOf, prepareDecryption, asStored, type Decryption, type EncryptedColumns, type ExportedFile,
} from './submission-decryption.ts';
import { exportFilterSql, wantsDeletedFields, allKnownFields } from './submission-export-query.ts';

export const submissionExports = Router();

interface ExportOptions { attachments: boolean; groupPaths: boolean; splitSelectMultiples: boolean }

function flag(value: unknown, fallback: boolean): boolean {
  if (typeof value !== 'string') return fallback;
  return value.toLowerCase() === 'true';
}

function optionsOf(req: Request): ExportOptions {
  const q = req.query;
  return {
    attachments: flag(q.attachments, true),
    groupPaths: flag(q.groupPaths, true),
    splitSelectMultiples: flag(q.splitSelectMultiples, false),
  };
}

interface ExportForm { id: number; def_id: number; xml_form_id: string; /** The $filter condition on alias s. */ where: string }

async function exportForm(db: Db, req: Request, draft: boolean): Promise<ExportForm> {
  const form = await one<{ id: number; current_def_id: number | null; draft_def_id: number | null; xml_form_id: string }>(db,
    `select (f).id, (f).current_def_id, (f).draft_def_id, (f).xml_form_id
     from (select app_hidden.form_for_submissions($1, $2, 'submission.read') f) x`,
    [idParam(req.params.projectId as string), String(req.params.xmlFormId)]);
  const defId = draft ? form.draft_def_id : form.current_def_id;
  if (defId === null) throw problems.notFound();
  return { id: form.id, def_id: defId, xml_form_id: form.xml_form_id, where: exportFilterSql(req) };
}

/** Values ever chosen per select-multiple field, for splitSelectMultiples. */
async function selectValues(db: Db, form: ExportForm, fields: SchemaField[], draft: boolean) {
  const result: Record<string, string[]> = {};
  for (const f of fields.filter((x) => x.selectMultiple)) {
    const jsonPath = '$' + f.path.split('/').slice(1).map((s) => `."${s.replace(/["\\]/g, '')}"`).join('');
    const rows = await many<{ v: string }>(db,
      `select distinct v from app_public.submissions s
       join app_public.submission_defs d on d.submission_id = s.id and d.current
       cross join lateral jsonb_path_query(d.data, $3::jsonpath) x
       cross join lateral regexp_split_to_table(x #>> '{}', '\\s+') v
       where s.form_id = $1 and s.draft = $2 and s.deleted_at is null and v <> '' order by v`, [form.id, draft, jsonPath]);
    result[f.path] = rows.map((r) => r.v);
  }
  return result;
}

const submissionFilter = 's.form_id = $1 and s.draft = $2 and s.deleted_at is null';

const csvLine = (row: Cell[]) => csvRecord(row);

/** Joins lines into chunks of about 64 kB: fewer, larger writes to the response. */
async function* chunked(lines: AsyncGenerator<string>): AsyncGenerator<string> {
  let chunk = '';
  for await (const line of lines) {
    chunk += line;
    if (chunk.length >= 65536) { yield chunk; chunk = ''; }
  }
  if (chunk !== '') yield chunk;
}

async function* rootLines(db: Db, form: ExportForm, table: CsvTable, draft: boolean, decryption: Decryption | null): AsyncGenerator<string> {
  yield csvLine(table.header);
  const decryptionColumns = decryption ? `, ${decryption.columns}` : '';
  const stream = db.query(new QueryStream(
    // One set-based statement: submitter names, edit and attachment counts are joined once, not looked up per row.
    `with submitters as materialized (select * from app_hidden.form_submitter_names($1))
     select s.instance_id, s.created_at, s.submitter_id, n.display_name as submitter_name,
            coalesce(a.present, 0)::int as present, coalesce(a.expected, 0)::int as expected,
            d.encryption is not null as encrypted, s.review_state, s.device_id, e.edits::int as edits,
            fd.version as form_version, d.data${decryptionColumns}
     from app_public.submissions s
     join app_public.submission_defs d on d.submission_id = s.id and d.current
     join app_public.form_defs fd on fd.id = d.form_def_id
     join (select x.submission_id, count(*) - 1 as edits from app_public.submission_defs x
           where x.form_id = $1 group by x.submission_id) e on e.submission_id = s.id
     left join (select x.submission_def_id, count(x.blob_id) as present, count(*) as expected
                from app_public.submission_attachments x where x.form_id = $1 group by x.submission_def_id) a on a.submission_def_id = d.id
     left join submitters n on n.id = s.submitter_id
     where ${submissionFilter} and ${form.where} order by s.created_at desc, s.id desc`, [form.id, draft], { batchSize: 100 }));
  for await (const r of stream as AsyncIterable<Record<string, any>>) {
    const s: ExportedSubmission = {
      instanceId: r.instance_id, createdAt: r.created_at, submitterId: r.submitter_id, submitterName: r.submitter_name,
      attachmentsPresent: r.present, attachmentsExpected: r.expected, status: r.encrypted ? 'not decrypted' : null,
      reviewState: r.review_state, deviceId: r.device_id, edits: r.edits, formVersion: r.form_version, data: r.data,
    };
    if (r.encrypted && decryption) Object.assign(s, decryption.row(r as EncryptedColumns));
    yield csvLine(rootRow(table, s));
  }
}

async function* repeatLines(db: Db, form: ExportForm, table: CsvTable, fields: SchemaField[], draft: boolean,
  decryption: Decryption | null): AsyncGenerator<string> {
  yield csvLine(table.header);
  const top = table.repeatPath.split('/')[1];
  // Decrypting, encrypted rows come too (their data is in their encrypted XML), with what decrypts them.
  const encrypted = decryption
    ? { columns: `, ${decryption.columns}`, join: 'join app_public.form_defs fd on fd.id = d.form_def_id', rows: ' or d.encryption is not null' }
    : { columns: '', join: '', rows: '' };
  const stream = db.query(new QueryStream(
    `select s.instance_id, jsonb_build_object($3::text, d.data->$3) as data${encrypted.columns}
     from app_public.submissions s join app_public.submission_defs d on d.submission_id = s.id and d.current ${encrypted.join}
     where ${submissionFilter} and ${form.where} and (d.data ? $3${encrypted.rows}) order by s.created_at desc, s.id desc`,
    [form.id, draft, top], { batchSize: 200 }));
  for await (const r of stream as AsyncIterable<{ instance_id: string; data: StructuredData } & Partial<EncryptedColumns>>) {
    const data = decryption && r.encryption ? decryption.row(r as EncryptedColumns)?.data : r.data;
    if (!data) continue;
    for (const row of repeatRows(table, fields, r.instance_id, data)) yield csvLine(row);
  }
}

async function exportEtag(db: Db, form: ExportForm, draft: boolean, extra: string): Promise<string> {
  const { rows: [r] } = await db.query(
    `select count(*) as n, max(d.id) as last_def, max(greatest(s.created_at, s.updated_at)) as changed,
            (select coalesce(sum(a.blob_id), 0) from app_public.submission_attachments a where a.form_id = $1) as blobs
     from app_public.submissions s join app_public.submission_defs d on d.submission_id = s.id and d.current
     where ${submissionFilter} and ${form.where}`, [form.id, draft]);
  const hash = crypto.createHash('md5').update(JSON.stringify([form.def_id, r, extra])).digest('hex');
  return `"${hash}"`;
}

async function exportCsv(req: Request, res: Response, draft: boolean, zip: boolean) {
  const options = optionsOf(req);
  const passphrases = await passphrasesOf(req);
  await transaction(req, async (db) => {
    const form = await exportForm(db, req, draft);
    let fields: SchemaField[] = (await many<SchemaField & { select_multiple: boolean }>(db,
      `select path, type, "binary", select_multiple from app_public.form_fields where form_def_id = $1 order by ord`, [form.def_id]))
      .map((f) => ({ path: f.path, type: f.type, binary: f.binary, selectMultiple: f.select_multiple }));
    const etag = await exportEtag(db, form, draft, JSON.stringify([options, zip, form.where, [...passphrases.keys()], wantsDeletedFields(req)]));
    res.set('ETag', etag);
    if (req.get('if-none-match') === etag) { res.status(304).end(); return; }
    if (wantsDeletedFields(req)) fields = await allKnownFields(db, form.id, fields);
    const decryption = await prepareDecryption(db, passphrases, fields);
    const values = options.splitSelectMultiples ? await selectValues(db, form, fields, draft) : null;
    const tables = csvTables(form.xml_form_id, fields, { groupPaths: options.groupPaths, selectValues: values }, !zip);
    if (!zip) {
      res.status(200).type('text/csv; charset=utf-8').set('Content-Disposition', `attachment; filename="${encodeURIComponent(tables[0].fileName)}"`);
      await pipeline(Readable.from(chunked(rootLines(db, form, tables[0], draft, decryption))), res);
      return;
    }
    const archive = new yazl.ZipFile();
    const lazy = (lines: () => AsyncGenerator<string>) => (cb: (err: unknown, stream: NodeJS.ReadableStream) => void) => cb(null, Readable.from(chunked(lines())));
    archive.addReadStreamLazy(tables[0].fileName, lazy(() => rootLines(db, form, tables[0], draft, decryption)));
    for (const t of tables.slice(1)) archive.addReadStreamLazy(t.fileName, lazy(() => repeatLines(db, form, t, fields, draft, decryption)));
    if (options.attachments) {
      const files = await many<ExportedFile>(db,
        `select distinct on (a.name) a.name, a.blob_id${decryption ? `, ${decryption.fileColumns}` : ''}
         from app_public.submission_attachments a
         join app_public.submission_defs d on d.id = a.submission_def_id and d.current
         join app_public.submissions s on s.id = d.submission_id
         ${decryption ? 'join app_public.form_defs fd on fd.id = d.form_def_id' : ''}
         where ${submissionFilter} and ${form.where} and a.blob_id is not null order by a.name, a.blob_id`, [form.id, draft]);
      for (const f of files) {
        const entry = decryption ? decryption.file(f) : asStored(f.name);
        if (!entry) continue;
        archive.addReadStreamLazy(`media/${entry.name}`, (cb) => {
          db.query('select content from app_public.blobs where id = $1', [f.blob_id])
            .then(({ rows }) => {
              const content: Buffer = rows[0]?.content ?? Buffer.alloc(0);
              try { cb(null, Readable.from([entry.content(content)])); } catch (err) { cb(err, Readable.from([])); }
            }, (err) => cb(err, Readable.from([])));
        });
      }
    }
    archive.end();
    res.status(200).type('application/zip').set('Content-Disposition', `attachment; filename="${encodeURIComponent(form.xml_form_id)}.csv.zip"`);
    await pipeline(archive.outputStream as Readable, res);
  });
}

for (const [prefix, draft] of [['/v1/projects/:projectId/forms/:xmlFormId/submissions', false], ['/v1/projects/:projectId/forms/:xmlFormId/draft/submissions', true]] as const) {
  for (const method of ['get', 'post'] as const) {
    submissionExports[method](`${prefix}.csv.zip`, (req, res) => exportCsv(req, res, draft, true));
    submissionExports[method](`${prefix}.csv`, (req, res) => exportCsv(req, res, draft, false));
  }
}
