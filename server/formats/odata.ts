// Central's OData documents for a form, as pure functions of its field list: the service document, the
// EDMX $metadata, and submission data (stored as a structured tree) turned into OData JSON entities.
import crypto from 'node:crypto';
import { oDataProblems } from './odata-query.ts';

/** A row of the form's field schema (app_public.form_fields, Central's /fields). Paths start with '/'. */
export interface ODataField {
  path: string;
  name: string;
  type: string;
  binary?: boolean | null;
  selectMultiple?: boolean | null;
}

/** Submission data as structured at ingestion: group → object, repeat → array of objects, leaf → text. */
export type DataValue = string | DataTree | DataTree[] | null | undefined;
export interface DataTree { [name: string]: DataValue }

/** Central's OData-safe identifiers: a leading illegal character gets a `_` prefix, illegal runs become `_`. */
export function sanitizeIdentifier(name: string): string {
  return name.replace(/^([^a-z_])/i, '_$1').replace(/([^a-z0-9_]+)/gi, '_');
}

////////////////////////////////////////////////////////////////////////////////
// The schema as a tree

export interface SchemaNode {
  field: ODataField;
  /** The OData property name. */
  odataName: string;
  /** The sanitized path ('/group/repeat'), which is how OData names address it. */
  odataPath: string;
  parent: SchemaNode | null;
  children: SchemaNode[];
}

export interface FormSchema {
  top: SchemaNode[];
  byOdataPath: Map<string, SchemaNode>;
  /** Every node in document order. */
  nodes: SchemaNode[];
}

export const isRepeat = (n: SchemaNode) => n.field.type === 'repeat';
export const isGroup = (n: SchemaNode) => n.field.type === 'structure';
const isStructural = (n: SchemaNode) => isRepeat(n) || isGroup(n);

export function formSchema(fields: ODataField[]): FormSchema {
  const top: SchemaNode[] = [];
  const byPath = new Map<string, SchemaNode>();
  const byOdataPath = new Map<string, SchemaNode>();
  const nodes: SchemaNode[] = [];
  for (const field of fields) {
    const parentPath = field.path.slice(0, field.path.lastIndexOf('/'));
    const parent = parentPath === '' ? null : byPath.get(parentPath) ?? null;
    if (parentPath !== '' && !parent) continue; // orphan: its parent is not in the schema
    const odataName = sanitizeIdentifier(field.name);
    const node: SchemaNode = { field, odataName, odataPath: `${parent?.odataPath ?? ''}/${odataName}`, parent, children: [] };
    (parent ? parent.children : top).push(node);
    byPath.set(field.path, node);
    byOdataPath.set(node.odataPath, node);
    nodes.push(node);
  }
  return { top, byOdataPath, nodes };
}

/** The structural ancestors of a node, outermost first, including the node itself. */
function lineage(node: SchemaNode): SchemaNode[] {
  const result: SchemaNode[] = [];
  for (let n: SchemaNode | null = node; n; n = n.parent) result.unshift(n);
  return result;
}

/** The repeat containing a node (not counting itself), or null at the top. */
function enclosingRepeat(node: SchemaNode): SchemaNode | null {
  for (let n = node.parent; n; n = n.parent) if (isRepeat(n)) return n;
  return null;
}

/** Entity set name of a repeat: `Submissions.group.repeat`. */
export function tableName(repeat: SchemaNode): string {
  return `Submissions${repeat.odataPath.replace(/\//g, '.')}`;
}

/** Parent key property of a repeat's rows: `__Submissions-id`, `__Submissions-outer-id`, … */
export function parentKeyName(repeat: SchemaNode): string {
  const parent = enclosingRepeat(repeat);
  return `__Submissions${parent ? parent.odataPath.replace(/\//g, '-') : ''}-id`;
}

/** A data document's table: Submissions, or a repeat's entity set. */
export interface ODataTable {
  name: string;
  repeat: SchemaNode | null;
  /** The repeats from the outermost down to this one. */
  repeats: SchemaNode[];
}

/** Resolves `Submissions` or `Submissions.a.b` (a repeat) to its table, or null when there is none. */
export function resolveTable(schema: FormSchema, name: string): ODataTable | null {
  if (name === 'Submissions') return { name, repeat: null, repeats: [] };
  if (!name.startsWith('Submissions.')) return null;
  const node = schema.byOdataPath.get('/' + name.slice('Submissions.'.length).split('.').join('/'));
  if (!node || !isRepeat(node)) return null;
  return { name, repeat: node, repeats: lineage(node).filter(isRepeat) };
}

export function repeatTables(schema: FormSchema): SchemaNode[] {
  return schema.nodes.filter(isRepeat);
}

////////////////////////////////////////////////////////////////////////////////
// Service document and $metadata

export function serviceDocument(schema: FormSchema, serviceUrl: string) {
  return {
    '@odata.context': `${serviceUrl}/$metadata`,
    value: [{ name: 'Submissions', kind: 'EntitySet', url: 'Submissions' },
      ...repeatTables(schema).map((r) => ({ name: tableName(r), kind: 'EntitySet', url: tableName(r) }))],
  };
}

/** Escapes like the template engine Central renders its EDMX with. */
function escapeXml(text: string): string {
  const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '/': '&#x2F;', '`': '&#x60;', '=': '&#x3D;' };
  return text.replace(/[&<>"'`=/]/g, (c) => entities[c]);
}

const edmTypes: Record<string, string> = {
  int: 'Edm.Int64',
  decimal: 'Edm.Decimal',
  boolean: 'Edm.Boolean',
  geopoint: 'Edm.GeographyPoint',
  geotrace: 'Edm.GeographyLineString',
  geoshape: 'Edm.GeographyPolygon',
  date: 'Edm.Date',
  dateTime: 'Edm.DateTimeOffset',
};

interface EdmProperty { name: string; type: string; navigation: boolean }
interface EdmStructure { name: string; properties: EdmProperty[] }

const systemSchema = `    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.submission">
      <ComplexType Name="metadata">
        <Property Name="submissionDate" Type="Edm.DateTimeOffset"/>
        <Property Name="updatedAt" Type="Edm.DateTimeOffset"/>
        <Property Name="deletedAt" Type="Edm.DateTimeOffset"/>
        <Property Name="submitterId" Type="Edm.String"/>
        <Property Name="submitterName" Type="Edm.String"/>
        <Property Name="attachmentsPresent" Type="Edm.Int64"/>
        <Property Name="attachmentsExpected" Type="Edm.Int64"/>
        <Property Name="status" Type="org.opendatakit.submission.Status"/>
        <Property Name="reviewState" Type="org.opendatakit.submission.ReviewState"/>
        <Property Name="deviceId" Type="Edm.String"/>
        <Property Name="edits" Type="Edm.Int64"/>
        <Property Name="formVersion" Type="Edm.String"/>
      </ComplexType>
      <EnumType Name="Status">
        <Member Name="notDecrypted"/>
        <Member Name="missingEncryptedFormData"/>
      </EnumType>
      <EnumType Name="ReviewState">
        <Member Name="hasIssues"/>
        <Member Name="edited"/>
        <Member Name="rejected"/>
        <Member Name="approved"/>
      </EnumType>
    </Schema>
`;

/** The capability annotations of a primary entity set (Submissions, Entities), as Central writes them. */
export const primaryAnnotations = (nonFilterable: string[]) => `          <Annotation Term="Org.OData.Capabilities.V1.ConformanceLevel" EnumMember="Org.OData.Capabilities.V1.ConformanceLevelType/Minimal"/>
          <Annotation Term="Org.OData.Capabilities.V1.BatchSupported" Bool="false"/>
          <Annotation Term="Org.OData.Capabilities.V1.CountRestrictions">
            <Record><PropertyValue Property="Countable" Bool="true"/></Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.FilterFunctions">
            <Record>
              <PropertyValue Property="NonCountableProperties">
                <Collection>
                  <String>eq</String>
                </Collection>
              </PropertyValue>
            </Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.FilterFunctions">
            <Record>
              <PropertyValue Property="Filterable" Bool="true"/>
              <PropertyValue Property="RequiresFilter" Bool="false"/>
              <PropertyValue Property="NonFilterableProperties">
                <Collection>
${nonFilterable.map((name) => `                  <PropertyPath>${escapeXml(name)}</PropertyPath>\n`).join('')}                </Collection>
              </PropertyValue>
            </Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.SortRestrictions">
            <Record><PropertyValue Property="Sortable" Bool="false"/></Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.ExpandRestrictions">
            <Record><PropertyValue Property="Expandable" Bool="false"/></Record>
          </Annotation>
`;

const propertyLines = (properties: EdmProperty[]) => properties.map((p) => p.navigation
  ? `        <NavigationProperty Name="${escapeXml(p.name)}" Type="${escapeXml(p.type)}"/>\n`
  : `        <Property Name="${escapeXml(p.name)}" Type="${escapeXml(p.type)}"/>\n`).join('');

/** The EDMX CSDL 4.0 metadata document, as Central generates it (groups → ComplexTypes, repeats → EntityTypes). */
export function metadataDocument(xmlFormId: string, schema: FormSchema): string {
  const base = `org.opendatakit.user.${sanitizeIdentifier(xmlFormId)}`;
  const submissions: EdmStructure = { name: 'Submissions', properties: [] };
  const entityTypes: EdmStructure[] = [submissions];
  const complexTypes: EdmStructure[] = [];
  const structures = new Map<SchemaNode | null, EdmStructure>([[null, submissions]]);
  for (const node of schema.nodes) {
    const owner = structures.get(node.parent)!;
    if (!owner) continue;
    const typeName = node.odataPath.slice(1).replace(/\//g, '.');
    if (isGroup(node)) {
      const complex: EdmStructure = { name: typeName, properties: [] };
      complexTypes.push(complex);
      structures.set(node, complex);
      owner.properties.push({ name: node.odataName, type: `${base}.${typeName}`, navigation: false });
    } else if (isRepeat(node)) {
      const entity: EdmStructure = { name: `Submissions.${typeName}`, properties: [{ name: parentKeyName(node), type: 'Edm.String', navigation: false }] };
      entityTypes.push(entity);
      structures.set(node, entity);
      owner.properties.push({ name: node.odataName, type: `Collection(${base}.Submissions.${typeName})`, navigation: true });
    } else {
      owner.properties.push({ name: node.odataName, type: edmTypes[node.field.type] ?? 'Edm.String', navigation: false });
    }
  }

  const entityTypeXml = entityTypes.map((e) => `      <EntityType Name="${escapeXml(e.name)}">
        <Key><PropertyRef Name="__id"/></Key>
        <Property Name="__id" Type="Edm.String"/>
${e === submissions ? '        <Property Name="__system" Type="org.opendatakit.submission.metadata"/>\n' : ''}${propertyLines(e.properties)}      </EntityType>
`).join('');
  const complexTypeXml = complexTypes.map((c) => `      <ComplexType Name="${escapeXml(c.name)}">
${propertyLines(c.properties)}      </ComplexType>
`).join('');
  const entitySetXml = entityTypes.map((e) => `        <EntitySet Name="${escapeXml(e.name)}" EntityType="${escapeXml(base)}.${escapeXml(e.name)}">
${e === submissions ? primaryAnnotations(e.properties.map((p) => p.name)) : ''}        </EntitySet>
`).join('');

  return `<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
  <edmx:DataServices>
${systemSchema}    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="${escapeXml(base)}">
${entityTypeXml}${complexTypeXml}      <EntityContainer Name="${escapeXml(xmlFormId)}">
${entitySetXml}      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>`;
}

////////////////////////////////////////////////////////////////////////////////
// $select

export const systemProperties = ['submissionDate', 'updatedAt', 'submitterId', 'submitterName', 'attachmentsPresent',
  'attachmentsExpected', 'status', 'reviewState', 'deviceId', 'edits', 'formVersion', 'deletedAt'] as const;
const systemPaths = new Set(['__system', ...systemProperties.map((p) => `__system/${p}`)]);

/** What a $select keeps: the schema nodes, and which metadata properties (`__id`, `__system/…`, parent key). */
export interface Selection {
  nodes: Set<SchemaNode>;
  metadata: Set<string>;
}

/**
 * Validates $select for a table (Central's rules): unknown properties are 400.23, properties inside a nested
 * repeat 400.24; a group brings its children; metadata is kept only when selected.
 */
export function selection(schema: FormSchema, table: ODataTable, select: string[] | undefined): Selection | undefined {
  if (!select) return undefined;
  const nodes = new Set<SchemaNode>(table.repeat ? lineage(table.repeat) : []);
  const metadata = new Set<string>();
  const prefix = table.repeat?.odataPath ?? '';
  const idKeys = new Set(['__id', ...(table.repeat ? [parentKeyName(table.repeat)] : [])]);
  for (const property of select) {
    if (idKeys.has(property) || (!table.repeat && systemPaths.has(property))) { metadata.add(property); continue; }
    const node = schema.byOdataPath.get(`${prefix}/${property}`);
    if (!node) throw oDataProblems.propertyNotFound(property);
    nodes.add(node);
    for (let n = node.parent; n && !nodes.has(n); n = n.parent) {
      if (isRepeat(n)) throw oDataProblems.unsupportedSelect(property);
      nodes.add(n);
    }
    if (isGroup(node)) {
      const addChildren = (n: SchemaNode) => n.children.forEach((c) => { nodes.add(c); if (isGroup(c)) addChildren(c); });
      addChildren(node);
    }
  }
  return { nodes, metadata };
}

////////////////////////////////////////////////////////////////////////////////
// Values

export interface ValueOptions { wkt: boolean }

function geoPoint(text: string): number[] | null {
  const [lat, lon, altitude] = text.split(/\s+/g).map(parseFloat);
  if (lat === undefined || lon === undefined || Number.isNaN(lat) || Number.isNaN(lon)) return null;
  return altitude === undefined || Number.isNaN(altitude) ? [lon, lat] : [lon, lat, altitude];
}

function accuracyOf(text: string): number | undefined {
  const accuracy = parseFloat(text.split(/\s+/g)[3]);
  return Number.isNaN(accuracy) ? undefined : accuracy;
}

function geoLine(type: 'geotrace' | 'geoshape', text: string, wkt: boolean): unknown {
  const pointTexts = text.split(/; ?/);
  const points: number[][] = [];
  const accuracies: Array<number | null> = [];
  for (const pointText of pointTexts) {
    const point = geoPoint(pointText);
    if (!point) {
      if (pointTexts.length === 1) return null;
      continue;
    }
    points.push(point);
    accuracies.push(accuracyOf(pointText) || null);
  }
  if (wkt) {
    const list = points.map((p) => p.join(' ')).join(',');
    return type === 'geotrace' ? `LINESTRING (${list})` : `POLYGON ((${list}))`;
  }
  const geo: Record<string, unknown> = type === 'geotrace'
    ? { type: 'LineString', coordinates: points }
    : { type: 'Polygon', coordinates: [points] };
  if (accuracies.some((a) => a != null)) geo.properties = { accuracies };
  return geo;
}

/** A leaf's text as Central's OData writes it: numbers, GeoJSON/WKT, normalised offsets; empty is null. */
export function leafValue(type: string, text: DataValue, options: ValueOptions): unknown {
  if (typeof text !== 'string' || text === '') return null;
  switch (type) {
    case 'int': { const n = parseInt(text, 10); return Number.isNaN(n) ? null : n; }
    case 'decimal': { const n = parseFloat(text); return Number.isNaN(n) ? null : n; }
    case 'geopoint': {
      const point = geoPoint(text);
      if (!point) return null;
      if (options.wkt) return `POINT (${point.join(' ')})`;
      const accuracy = accuracyOf(text);
      return accuracy === undefined ? { type: 'Point', coordinates: point } : { type: 'Point', coordinates: point, properties: { accuracy } };
    }
    case 'geotrace': case 'geoshape': return geoLine(type, text, options.wkt);
    case 'dateTime': { const trimmed = text.trim(); return /[+-]\d\d$/.test(trimmed) ? `${trimmed}:00` : trimmed; }
    default: return text;
  }
}

////////////////////////////////////////////////////////////////////////////////
// Entities

/** Central's stable id of a repeat instance: sha1 over the path of group names and repeat indexes. */
export function repeatInstanceId(instanceId: string, repeat: SchemaNode, indexes: Map<SchemaNode, number>): string {
  const parts = [`Submissions#${instanceId}`];
  for (const n of lineage(repeat)) parts.push(isRepeat(n) ? `${n.field.name}#${indexes.get(n)}` : `${n.field.name}#`);
  return crypto.createHash('sha1').update(parts.join('%%')).digest('hex');
}

function navigationLink(instanceId: string, repeat: SchemaNode, indexes: Map<SchemaNode, number>): string {
  const parts = [`Submissions('${encodeURIComponent(instanceId)}')`];
  for (const n of lineage(repeat)) {
    parts.push(isRepeat(n) && n !== repeat ? `${n.odataName}('${repeatInstanceId(instanceId, n, indexes)}')` : n.odataName);
  }
  return parts.join('/');
}

export interface EntityOptions extends ValueOptions {
  expand: boolean;
  selection?: Selection;
}

function asInstances(value: DataValue): DataTree[] {
  if (Array.isArray(value)) return value;
  if (value && typeof value === 'object') return [value];
  return [];
}

/** The properties of one context (the submission root, or one repeat instance) from its data. */
function frame(children: SchemaNode[], data: DataTree | null, instanceId: string, indexes: Map<SchemaNode, number>,
  options: EntityOptions, into: Record<string, unknown>): Record<string, unknown> {
  for (const node of children) {
    if (options.selection && !options.selection.nodes.has(node)) continue;
    const value = data?.[node.field.name];
    if (isGroup(node)) {
      into[node.odataName] = frame(node.children, value && typeof value === 'object' && !Array.isArray(value) ? value : null,
        instanceId, indexes, options, {});
    } else if (isRepeat(node)) {
      const instances = asInstances(value);
      if (instances.length === 0) continue;
      indexes.set(node, 0);
      into[`${node.odataName}@odata.navigationLink`] = navigationLink(instanceId, node, indexes);
      if (options.expand) {
        into[node.odataName] = instances.map((instance, i) => {
          indexes.set(node, i);
          return frame(node.children, instance, instanceId, indexes, options, { __id: repeatInstanceId(instanceId, node, indexes) });
        });
      }
      indexes.delete(node);
    } else {
      into[node.odataName] = leafValue(node.field.type, value, options);
    }
  }
  return into;
}

/** A submission's system properties (snake_case, as SQL gives them). */
export interface SubmissionSystem {
  created_at: Date | string;
  updated_at: Date | string | null;
  deleted_at: Date | string | null;
  submitter_id: number | null;
  submitter_name: string | null;
  attachments_present: number | null;
  attachments_expected: number | null;
  /** 'notDecrypted' / 'missingEncryptedFormData' for encrypted submissions, else null. */
  status: string | null;
  review_state: string | null;
  device_id: string | null;
  edits: number | null;
  form_version: string | null;
}

export interface SubmissionRow extends SubmissionSystem {
  instance_id: string;
  /** null for submissions whose data cannot be read (encrypted). */
  data: DataTree | null;
}

function systemObject(row: SubmissionSystem): Record<string, unknown> {
  return {
    submissionDate: row.created_at,
    updatedAt: row.updated_at,
    submitterId: row.submitter_id == null ? null : String(row.submitter_id),
    submitterName: row.submitter_name || null,
    attachmentsPresent: row.attachments_present ?? 0,
    attachmentsExpected: row.attachments_expected ?? 0,
    status: row.status,
    reviewState: row.review_state,
    deviceId: row.device_id || null,
    edits: row.edits ?? 0,
    formVersion: row.form_version,
    deletedAt: row.deleted_at,
  };
}

/** One row of the Submissions table. */
export function submissionEntity(schema: FormSchema, row: SubmissionRow, options: EntityOptions): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  const metadata = options.selection?.metadata;
  if (!metadata || metadata.has('__id')) result.__id = row.instance_id;
  const system = systemObject(row);
  if (!metadata || metadata.has('__system')) {
    result.__system = system;
  } else if ([...metadata].some((m) => m.startsWith('__system/'))) {
    result.__system = Object.fromEntries(Object.entries(system).filter(([k]) => metadata.has(`__system/${k}`)));
  }
  if (row.data === null) return result; // encrypted: no form data
  return frame(schema.top, row.data, row.instance_id, new Map(), options, result);
}

/** One row of a repeat table: an instance of table.repeat at the given 0-based indexes of table.repeats. */
export interface RepeatRow {
  instance_id: string;
  data: DataTree;
  indexes: number[];
}

export function repeatEntity(table: ODataTable, row: RepeatRow, options: EntityOptions): Record<string, unknown> {
  const repeat = table.repeat!;
  const indexes = new Map(table.repeats.map((r, i) => [r, row.indexes[i]]));
  const metadata = options.selection?.metadata;
  const result: Record<string, unknown> = {};
  if (!metadata || metadata.has('__id')) result.__id = repeatInstanceId(row.instance_id, repeat, indexes);
  frame(repeat.children, row.data, row.instance_id, indexes, options, result);
  const parentKey = parentKeyName(repeat);
  if (!metadata || metadata.has(parentKey)) {
    const parent = table.repeats.length > 1 ? table.repeats[table.repeats.length - 2] : null;
    result[parentKey] = parent ? repeatInstanceId(row.instance_id, parent, indexes) : row.instance_id;
  }
  return result;
}

////////////////////////////////////////////////////////////////////////////////
// Data documents

/** Opening of a data document; rows follow, comma-separated, then `dataDocumentEnd`. */
export const dataDocumentStart = '{"value":[';

export interface DocumentFooter {
  /** `…/forms/x.svc` as an absolute URL. */
  serviceUrl: string;
  table: string;
  nextLink?: string | null;
  count?: number | null;
}

export function dataDocumentEnd(footer: DocumentFooter): string {
  let tail = `],"@odata.context":${JSON.stringify(`${footer.serviceUrl}/$metadata#${footer.table}`)}`;
  if (footer.nextLink) tail += `,"@odata.nextLink":${JSON.stringify(footer.nextLink)}`;
  if (footer.count != null) tail += `,"@odata.count":${footer.count}`;
  return tail + '}';
}

/** The request URL with `$skip` dropped and `$skiptoken` set: Central's `@odata.nextLink`. */
export function nextLinkFor(absoluteUrl: string, skiptoken: string): string {
  const url = new URL(absoluteUrl);
  const params = new URLSearchParams(url.search);
  params.delete('$skip');
  params.delete('$skiptoken');
  params.set('$skiptoken', skiptoken);
  url.search = params.toString().replace(/%24/g, '$');
  return url.toString();
}

/** Every instance of a repeat table within one submission's data, in document order. */
export function repeatRowsOf(table: ODataTable, instanceId: string, data: DataTree | null): RepeatRow[] {
  const rows: RepeatRow[] = [];
  const walk = (level: number, context: DataTree, from: SchemaNode | null, indexes: number[]) => {
    const repeat = table.repeats[level];
    const names: string[] = [];
    for (let n: SchemaNode | null = repeat; n && n !== from; n = n.parent) names.unshift(n.field.name);
    let node: DataValue = context;
    for (const name of names.slice(0, -1)) node = node && typeof node === 'object' && !Array.isArray(node) ? node[name] : undefined;
    const holder = node && typeof node === 'object' && !Array.isArray(node) ? node : null;
    asInstances(holder?.[names[names.length - 1]]).forEach((instance, i) => {
      if (level === table.repeats.length - 1) rows.push({ instance_id: instanceId, data: instance, indexes: [...indexes, i] });
      else walk(level + 1, instance, repeat, [...indexes, i]);
    });
  };
  if (data && table.repeats.length > 0) walk(0, data, null, []);
  return rows;
}

/** The id of the ancestor instance (at `repeat`, one of table.repeats) of a repeat row. */
export function ancestorId(table: ODataTable, row: RepeatRow, repeat: SchemaNode): string {
  const indexes = new Map(table.repeats.map((r, i) => [r, row.indexes[i]]));
  return repeatInstanceId(row.instance_id, repeat, indexes);
}
