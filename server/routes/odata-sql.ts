// The SQL behind OData data documents: the allow-list of filterable/sortable paths for a table (Central's
// __id and __system fields, $root/Submissions/… in repeat tables, and form fields by path), and the feed
// query with filter, order, keyset cursor, offset and limit pushed into PostgreSQL.
import {
  SqlParams, compileFilter, parseOrderBy, orderBySql, afterCursorSql, cursorValuesSql, oDataProblems,
  type Column, type ColumnMap, type SortKey, type ODataQuery,
} from '../formats/odata-query.ts';
import { isGroup, isRepeat, type FormSchema, type ODataTable, type SchemaNode } from '../formats/odata.ts';

/** `{a,b}` as a quoted text[] literal, for `#>>` paths into the structured data. */
function pathLiteral(names: string[]): string {
  const array = `{${names.map((n) => `"${n.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
  return `'${array.replace(/'/g, "''")}'`;
}

/** A leaf of the structured data as a typed SQL expression (malformed values read as null). */
function leafColumn(node: SchemaNode, base: string, names: string[]): Column {
  const text = `(${base} #>> ${pathLiteral(names)})`;
  switch (node.field.type) {
    case 'int': return { sql: `app_hidden.odata_int(${text})`, type: 'bigint' };
    case 'decimal': return { sql: `app_hidden.odata_decimal(${text})`, type: 'numeric' };
    case 'date': return { sql: `app_hidden.odata_date(${text})`, type: 'date' };
    case 'dateTime': return { sql: `app_hidden.odata_timestamptz(${text})`, type: 'timestamptz' };
    case 'boolean': return { sql: `app_hidden.odata_boolean(${text})`, type: 'boolean' };
    default: return { sql: `nullif(${text}, '')`, type: 'text' };
  }
}

/** Form fields under `children` (not inside nested repeats), keyed by OData path relative to the context. */
function fieldColumns(children: SchemaNode[], base: string, into: Map<string, Column>, prefix: string[] = [], names: string[] = []) {
  for (const node of children) {
    if (isRepeat(node)) continue;
    const path = [...prefix, node.odataName];
    const rawPath = [...names, node.field.name];
    if (isGroup(node)) fieldColumns(node.children, base, into, path, rawPath);
    else into.set(path.join('/'), leafColumn(node, base, rawPath));
  }
}

const submissionColumns: Array<[string, Column]> = [
  ['__id', { sql: 's.instance_id', type: 'text', notNull: true }],
  ['__system/submissionDate', { sql: 's.created_at', type: 'timestamptz', notNull: true }],
  ['__system/updatedAt', { sql: 's.updated_at', type: 'timestamptz' }],
  ['__system/submitterId', { sql: 's.submitter_id', type: 'bigint' }],
  ['__system/reviewState', { sql: 's.review_state', type: 'text' }],
  ['__system/deletedAt', { sql: 's.deleted_at', type: 'timestamptz' }],
  ['__system/deviceId', { sql: 's.device_id', type: 'text' }],
];

/** Alias of the lateral expansion of the n-th repeat level (1-based). */
const level = (n: number) => `r${n}`;

/** What $filter and $orderby may name in a table. */
export function columnsFor(schema: FormSchema, table: ODataTable): ColumnMap {
  const columns = new Map<string, Column>();
  if (!table.repeat) {
    for (const [path, column] of submissionColumns) columns.set(path, column);
    fieldColumns(schema.top, 'd.data', columns);
  } else {
    for (const [path, column] of submissionColumns) columns.set(`$root/Submissions/${path}`, column);
    fieldColumns(table.repeat.children, `${level(table.repeats.length)}.value`, columns);
  }
  return columns;
}

/** FROM clause: current versions of the form's submissions, expanded to repeat instances for repeat tables. */
function fromClause(table: ODataTable): string {
  let from = `app_public.submissions s
    join app_public.submission_defs d on d.submission_id = s.id and d.current`;
  let parent = 'd.data';
  let parentNode: SchemaNode | null = null;
  table.repeats.forEach((repeat, i) => {
    const names: string[] = [];
    for (let n: SchemaNode | null = repeat; n && n !== parentNode; n = n.parent) names.unshift(n.field.name);
    from += `\n    cross join lateral jsonb_array_elements(app_hidden.odata_instances(${parent} #> ${pathLiteral(names)})) with ordinality ${level(i + 1)}(value, ord)`;
    parent = `${level(i + 1)}.value`;
    parentNode = repeat;
  });
  return from;
}

export const submissionSelect = `s.instance_id,
  case when d.encryption is null then d.data end as data,
  s.created_at, s.updated_at, s.deleted_at, s.submitter_id,
  n.display_name as submitter_name,
  (select count(a.blob_id) from app_public.submission_attachments a where a.submission_def_id = d.id) as attachments_present,
  (select count(*) from app_public.submission_attachments a where a.submission_def_id = d.id) as attachments_expected,
  case when d.encryption is null then null
       when exists (select 1 from app_public.submission_attachments a
                    where a.submission_def_id = d.id and a.name = d.encryption->>'encryptedXmlFile' and a.blob_id is not null)
         then 'notDecrypted'
       else 'missingEncryptedFormData' end as status,
  s.review_state, s.device_id,
  (select count(*) - 1 from app_public.submission_defs e where e.submission_id = s.id) as edits,
  (select v.version from versions v where v.id = d.form_def_id) as form_version`;

/**
 * The form's versions and its submitters' names, read once per query (row-level security on form_defs is
 * costly per row; names come from a security-definer function, called once instead of once per row).
 */
const versionsCte = `with versions as materialized (select fd.id, fd.version from app_public.form_defs fd where fd.form_id = $1),
submitters as materialized (select * from app_hidden.form_submitter_names($1))`;

/** Joins the submitter's name (alias n) to a submission s. */
const submitterJoin = 'left join submitters n on n.id = s.submitter_id';

export interface FeedSql {
  sql: string;
  values: unknown[];
  /** Counts every row the filter selects (paging aside), when $count=true. */
  count?: { sql: string; values: unknown[] };
  keys: SortKey[];
}

/** The feed query for a table: one row per submission (Submissions) or per repeat instance. */
export function feedSql(schema: FormSchema, table: ODataTable, formId: number, draft: boolean, query: ODataQuery): FeedSql {
  const columns = columnsFor(schema, table);
  const params = new SqlParams([formId, draft]);
  const filter = compileFilter(query.filter, columns, params);
  const where = [`s.form_id = $1`, `s.draft = $2`, filter.sql];
  if (!filter.mentionsDeletedAt) where.push('s.deleted_at is null');
  if (table.repeat) where.push('d.encryption is null');

  const ordered = parseOrderBy(query.orderby, columns);
  const keys: SortKey[] = ordered.length > 0 ? ordered
    : [{ sql: 's.created_at', type: 'timestamptz', notNull: true, desc: true }];
  keys.push({ sql: 's.id', type: 'bigint', notNull: true, desc: keys[0].desc });
  table.repeats.forEach((_r, i) => keys.push({ sql: `${level(i + 1)}.ord`, type: 'bigint', notNull: true, desc: false }));

  const from = fromClause(table);
  const count = query.count
    ? { sql: `select count(*) as count from ${from}\n  where ${where.join(' and ')}`, values: [...params.values] }
    : undefined;

  if (query.skiptoken) {
    const values = query.skiptoken.k;
    if (!Array.isArray(values)) throw oDataProblems.invalidSkiptoken();
    where.push(afterCursorSql(keys, values, params));
  }
  const page = [`order by ${orderBySql(keys)}`];
  if (query.top !== undefined) page.push(`limit ${params.add(query.top + 1, 'bigint')}`);
  if (query.skip > 0) page.push(`offset ${params.add(query.skip, 'bigint')}`);
  const filtered = `from ${from}\n  where ${where.join(' and ')}\n  ${page.join('\n  ')}`;

  let sql: string;
  if (table.repeat) {
    const indexes = table.repeats.map((_r, i) => `${level(i + 1)}.ord - 1`).join(', ');
    sql = `select s.instance_id, ${level(table.repeats.length)}.value as data, array[${indexes}]::int[] as indexes,
    ${cursorValuesSql(keys)} as cursor
  ${filtered}`;
  } else {
    // Page first on the cheap columns, then compute the system properties for the rows sent only.
    sql = `${versionsCte}
select ${submissionSelect}, p.cursor
from (select s.id as submission_id, d.id as def_id, ${cursorValuesSql(keys)} as cursor,
        row_number() over (order by ${orderBySql(keys)}) as position
      ${filtered}) p
  join app_public.submissions s on s.id = p.submission_id
  join app_public.submission_defs d on d.id = p.def_id
  ${submitterJoin}
order by p.position`;
  }
  return { sql, values: params.values, count, keys };
}

/** One submission of the form by instanceID (for `Submissions('…')` paths). */
export function singleSubmissionSql(formId: number, draft: boolean, instanceId: string) {
  return {
    sql: `${versionsCte}
      select ${submissionSelect}
      from app_public.submissions s join app_public.submission_defs d on d.submission_id = s.id and d.current
      ${submitterJoin}
      where s.form_id = $1 and s.draft = $2 and s.instance_id = $3 and s.deleted_at is null`,
    values: [formId, draft, instanceId],
  };
}
