// Central's CSV export (the Briefcase layout): a root table and one table per repeat, built from the
// structured data stored at ingestion (never from XML). Column names: group paths joined by '-'
// (or bare names with groupPaths=false), geopoints split in four, select multiples optionally split
// into one 0/1 column per known value; repeat tables end with PARENT_KEY and KEY.
import { isGroup, isRepeat, type SchemaField, type StructuredData, type StructuredValue } from './submission.ts';

export interface CsvOptions {
  groupPaths: boolean;
  /** For splitSelectMultiples: the values seen per select-multiple field path. */
  selectValues?: Record<string, string[]> | null;
}

interface Column {
  /** Names from the table's context (the root or the repeat instance) down to the leaf, through groups. */
  steps: string[];
  type: string;
  selectValues: string[] | null;
}

export interface CsvTable {
  /** File name inside the zip. */
  fileName: string;
  /** '' for the root table, else the repeat's path. */
  repeatPath: string;
  header: string[];
  columns: Column[];
}

export interface ExportedSubmission {
  instanceId: string;
  createdAt: Date | string;
  submitterId: number | null;
  submitterName: string | null;
  attachmentsPresent: number;
  attachmentsExpected: number;
  status: string | null;
  reviewState: string | null;
  deviceId: string | null;
  edits: number;
  formVersion: string | null;
  data: StructuredData;
}

export type Cell = string | number | null;

const needsQuotes = /[",\r\n]/;

/**
 * One CSV record with its newline, as csv-stringify writes it by default (the format tests pin): a field is
 * quoted when it holds a comma, a quote or a line break, quotes doubled; null is empty.
 */
export function csvRecord(cells: Cell[]): string {
  let line = '';
  for (let i = 0; i < cells.length; i++) {
    const cell = cells[i];
    if (i > 0) line += ',';
    if (cell === null) continue;
    const text = typeof cell === 'string' ? cell : String(cell);
    line += needsQuotes.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }
  return line + '\n';
}
export const rootMetaColumns = ['KEY', 'SubmitterID', 'SubmitterName', 'AttachmentsPresent', 'AttachmentsExpected',
  'Status', 'ReviewState', 'DeviceID', 'Edits', 'FormVersion'];

/** Removes what file systems refuse in a name, as Central's sanitize-filename does. */
export function sanitizeFileName(name: string): string {
  return name.replace(/[/\\?<>:*|"\u0000-\u001f\u0080-\u009f]/g, '').replace(/^\.+$/, '').slice(0, 255);
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The tables of an export, root first then repeats depth-first, with their headers. */
export function csvTables(xmlFormId: string, fields: SchemaField[], options: CsvOptions, rootOnly = false): CsvTable[] {
  const tables: CsvTable[] = [{ fileName: `${xmlFormId}.csv`, repeatPath: '', header: ['SubmissionDate'], columns: [] }];
  const repeats = fields.filter((f) => isRepeat(f.type));
  if (!rootOnly) {
    for (const r of repeats) tables.push({ fileName: '', repeatPath: r.path, header: [], columns: [] });
  }
  const tableFor = (path: string) => {
    const enclosing = repeats.filter((r) => path.startsWith(r.path + '/')).sort((a, b) => b.path.length - a.path.length)[0];
    return enclosing ? tables.find((t) => t.repeatPath === enclosing.path) : tables[0];
  };
  for (const field of fields) {
    if (isRepeat(field.type) || isGroup(field.type)) continue;
    const table = tableFor(field.path);
    if (!table) continue; // inside a repeat, in a root-only export
    const steps = field.path.slice(table.repeatPath.length + 1).split('/');
    const base = options.groupPaths ? steps.join('-') : steps[steps.length - 1];
    const selectValues = field.selectMultiple ? options.selectValues?.[field.path] ?? null : null;
    table.columns.push({ steps, type: field.type, selectValues });
    if (field.type === 'geopoint') {
      table.header.push(`${base}-Latitude`, `${base}-Longitude`, `${base}-Altitude`, `${base}-Accuracy`);
    } else {
      table.header.push(base, ...(selectValues ?? []).map((v) => `${base}/${v}`));
    }
  }
  tables[0].header.push(...rootMetaColumns);
  for (const t of tables.slice(1)) t.header.push('PARENT_KEY', 'KEY');
  // Repeat tables are named after the repeat; repeats sharing a name are told apart by ~1, ~2…
  const counts = new Map<string, number>();
  for (const t of tables.slice(1)) counts.set(nameOf(t.repeatPath), (counts.get(nameOf(t.repeatPath)) ?? 0) + 1);
  const seen = new Map<string, number>();
  for (const t of tables.slice(1)) {
    const name = nameOf(t.repeatPath);
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    t.fileName = sanitizeFileName(counts.get(name)! > 1 ? `${xmlFormId}-${name}~${n}.csv` : `${xmlFormId}-${name}.csv`);
  }
  tables[0].fileName = sanitizeFileName(tables[0].fileName);
  return tables;
}

function lookup(context: StructuredData, steps: string[]): StructuredValue | undefined {
  let value: StructuredValue | undefined = context;
  for (const step of steps) {
    if (value === undefined || typeof value === 'string' || Array.isArray(value)) return undefined;
    value = value[step];
  }
  return value;
}

function cellsFor(context: StructuredData, columns: Column[]): Cell[] {
  const cells: Cell[] = [];
  for (const column of columns) {
    const raw = lookup(context, column.steps);
    const text = typeof raw === 'string' ? raw : null;
    if (column.type === 'geopoint') {
      const parts = text === null || text.trim() === '' ? [] : text.trim().split(/\s+/);
      cells.push(parts[0] ?? null, parts[1] ?? null, parts[2] ?? null, parts[3] ?? null);
    } else {
      cells.push(text);
      if (column.selectValues) {
        const chosen = new Set((text ?? '').split(/\s+/));
        for (const v of column.selectValues) cells.push(chosen.has(v) ? 1 : 0);
      }
    }
  }
  return cells;
}

function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

/** The root table's row for one submission. */
export function rootRow(table: CsvTable, s: ExportedSubmission): Cell[] {
  const data = s.status === null ? cellsFor(s.data, table.columns) : table.columns.flatMap((c) =>
    // Undecrypted submissions carry metadata only.
    c.type === 'geopoint' ? [null, null, null, null] : [null, ...(c.selectValues ?? []).map(() => null)]);
  return [iso(s.createdAt), ...data, s.instanceId, s.submitterId, s.submitterName, s.attachmentsPresent,
    s.attachmentsExpected, s.status, s.reviewState, s.deviceId, s.edits, s.formVersion];
}

interface RepeatInstance { context: StructuredData; key: string; parentKey: string }

/** Field types by path, built once per schema (an export walks every submission with the same one). */
const typesBySchema = new WeakMap<SchemaField[], Map<string, string>>();
function typesOf(fields: SchemaField[]): Map<string, string> {
  let types = typesBySchema.get(fields);
  if (!types) { types = new Map(fields.map((f) => [f.path, f.type])); typesBySchema.set(fields, types); }
  return types;
}

/**
 * The repeat's instances in one submission, with Briefcase keys: the instanceID, then each group's name
 * and each repeat's name[n] (1-based); the parent key is the key of the nearest enclosing repeat
 * instance (or the instanceID).
 */
export function* repeatInstances(repeatPath: string, fields: SchemaField[], instanceId: string, data: StructuredData): Generator<RepeatInstance> {
  const types = typesOf(fields);
  const segments = repeatPath.split('/').slice(1);
  function* walk(value: StructuredValue | undefined, depth: number, path: string, key: string[], parentKey: string): Generator<RepeatInstance> {
    if (value === undefined || typeof value === 'string' || Array.isArray(value)) return;
    const name = segments[depth];
    const childPath = `${path}/${name}`;
    const next = value[name];
    if (isRepeat(types.get(childPath) ?? '')) {
      const list = Array.isArray(next) ? next : next && typeof next === 'object' ? [next] : [];
      for (let i = 0; i < list.length; i++) {
        const k = [...key, `${name}[${i + 1}]`];
        if (depth === segments.length - 1) yield { context: list[i], key: k.join('/'), parentKey };
        else yield* walk(list[i], depth + 1, childPath, k, k.join('/'));
      }
    } else {
      yield* walk(next, depth + 1, childPath, [...key, name], parentKey);
    }
  }
  yield* walk(data, 0, '', [instanceId], instanceId);
}

/** A repeat table's rows for one submission. */
export function* repeatRows(table: CsvTable, fields: SchemaField[], instanceId: string, data: StructuredData): Generator<Cell[]> {
  for (const r of repeatInstances(table.repeatPath, fields, instanceId, data)) {
    yield [...cellsFor(r.context, table.columns), r.parentKey, r.key];
  }
}
