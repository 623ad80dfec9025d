// Central's JSON and CSV shapes for datasets and entities: snake_case rows in, camelCase out.
// Also the per-version conflict details (baseDiff, serverDiff, conflict, resolved, lastGoodVersion,
// relevantToConflict) and the diffs between consecutive versions, computed from the version rows.
import { stringify } from 'csv-stringify/sync';
import { actorJson, type ActorRow } from './json.ts';
import { sanitizeIdentifier } from './odata.ts';

export interface DatasetRow {
  id: number;
  project_id: number;
  name: string;
  approval_required: boolean;
  owner_only: boolean;
  access_filter: unknown;
  created_at: Date;
  updated_at: Date | null;
  deleted_at: Date | null;
}

export interface DatasetStats { entities: number; conflicts: number; last_entity: Date | null }

export function datasetJson(d: DatasetRow, options: { withId?: boolean } = {}) {
  return {
    ...(options.withId ? { id: d.id } : {}),
    name: d.name,
    createdAt: d.created_at,
    projectId: d.project_id,
    approvalRequired: d.approval_required,
    ownerOnly: d.owner_only,
    accessFilter: d.access_filter ?? null,
    ...(d.deleted_at ? { deletedAt: d.deleted_at } : {}),
  };
}

export function extendedDatasetJson(d: DatasetRow & DatasetStats, options: { withId?: boolean } = {}) {
  return { ...datasetJson(d, options), entities: d.entities, conflicts: d.conflicts, lastEntity: d.last_entity };
}

export interface FormKey { xmlFormId: string; name: string }
export interface PropertyRow { name: string; published_at: Date | null; forms: FormKey[] }

/** A property's name in the dataset's OData service (Central's sanitized identifier, as its $metadata uses). */
export const odataName = sanitizeIdentifier;

export function datasetMetadataJson(d: DatasetRow, extra: { last_update: Date | null; source_forms: FormKey[];
  linked_forms: FormKey[]; properties: PropertyRow[] }) {
  return {
    ...datasetJson(d),
    lastUpdate: extra.last_update,
    sourceForms: extra.source_forms,
    linkedForms: extra.linked_forms,
    properties: extra.properties.map((p) => ({ name: p.name, odataName: odataName(p.name), publishedAt: p.published_at, forms: p.forms })),
  };
}

export interface EntityRow {
  id: number;
  uuid: string;
  creator_id: number | null;
  conflict: 'soft' | 'hard' | null;
  created_at: Date;
  updated_at: Date | null;
  deleted_at: Date | null;
}

export interface VersionRow {
  id: number;
  version: number;
  current: boolean;
  label: string;
  data: Record<string, string>;
  data_received: Record<string, string>;
  base_version: number | null;
  branch_id: string | null;
  trunk_version: number | null;
  branch_base_version: number | null;
  conflicting_properties: string[] | null;
  creator_id: number | null;
  user_agent: string | null;
  created_at: Date;
  creator?: ActorRow | null;
}

function versionFields(v: VersionRow) {
  return {
    label: v.label,
    current: v.current,
    createdAt: v.created_at,
    creatorId: v.creator_id,
    userAgent: v.user_agent,
    version: v.version,
    baseVersion: v.base_version,
    branchId: v.branch_id,
    trunkVersion: v.trunk_version,
    branchBaseVersion: v.branch_base_version,
    conflictingProperties: v.conflicting_properties,
  };
}

/** An entity version; with data (single entity) or metadata only (lists); creator when extended. */
export function versionJson(v: VersionRow, options: { data: boolean; extended: boolean }) {
  return {
    ...versionFields(v),
    ...(options.data ? { data: v.data, dataReceived: v.data_received } : {}),
    ...(options.extended ? { creator: v.creator ? actorJson(v.creator) : null } : {}),
  };
}

export function entityJson(e: EntityRow, current: VersionRow, options: { data: boolean; extended: boolean; creator?: ActorRow | null }) {
  return {
    uuid: e.uuid,
    creatorId: e.creator_id,
    conflict: e.conflict,
    createdAt: e.created_at,
    updatedAt: e.updated_at,
    deletedAt: e.deleted_at,
    ...(options.extended ? { creator: options.creator ? actorJson(options.creator) : null } : {}),
    currentVersion: versionJson(current, options),
  };
}

/** Keys of received that other lacks or holds another value for (label included by the caller). */
function diffKeys(received: Record<string, string>, other: Record<string, string>): string[] {
  return Object.keys(received).filter((k) => !(k in other) || received[k] !== other[k]);
}

export interface VersionSource { source_type: string | null; source_details: unknown; audit: unknown; submission: unknown }
export interface ResolveEvent { entity_def_id: number }

/**
 * Every version with its conflict details, as Central's versions endpoint: a version conflicts when its base is not the
 * version before it, or it continues an offline branch another update interrupted, or it is a create applied as an update.
 */
export function versionsWithConflicts(versions: (VersionRow & VersionSource)[], lastResolve: ResolveEvent | null,
  options: { extended: boolean; relevantOnly: boolean }) {
  const byVersion = new Map(versions.map((v) => [v.version, v]));
  const withLabel = (v: VersionRow | undefined) => (v ? { ...v.data, label: v.label } : {});
  const lastContiguous = new Map<string, number>();
  const relevantBases = new Set<number>();
  let lastGood = 0;
  const out = versions.map((v) => ({
    ...versionJson(v, { data: true, extended: options.extended }),
    source: v.submission ? { event: v.audit, submission: v.submission } : { event: v.audit, ...(v.source_details ? { details: v.source_details } : {}) },
    baseDiff: [] as string[], serverDiff: [] as string[], conflict: null as 'soft' | 'hard' | null,
    resolved: false, lastGoodVersion: false, relevantToConflict: false,
  }));
  for (const [i, v] of versions.entries()) {
    if (v.branch_id !== null) {
      const known = lastContiguous.get(v.branch_id);
      if (known === undefined) {
        lastContiguous.set(v.branch_id, v.trunk_version !== null
          ? (v.version === v.trunk_version + 1 ? v.version : 0)
          : (v.version === 2 ? 2 : 1));
      } else if (v.base_version === known && v.version === (v.base_version ?? 0) + 1) {
        lastContiguous.set(v.branch_id, v.version);
      }
    }
    if (v.version <= 1 || v.base_version === null) continue;
    const interrupted = v.branch_id !== null && (lastContiguous.get(v.branch_id) ?? 0) < v.base_version;
    const createAsUpdate = (v.source_details as { action?: string } | null)?.action === 'create';
    const o = out[i];
    o.baseDiff = diffKeys(v.data_received, withLabel(byVersion.get(v.base_version)));
    o.serverDiff = diffKeys(v.data_received, withLabel(byVersion.get(v.version - 1)));
    if (v.version !== v.base_version + 1 || interrupted || createAsUpdate) {
      o.conflict = (v.conflicting_properties?.length ?? 0) > 0 ? 'hard' : 'soft';
      o.resolved = lastResolve !== null && lastResolve.entity_def_id >= v.id;
      if (!o.resolved && lastGood === 0) {
        lastGood = v.version - 1;
        if (i > 0) out[i - 1].lastGoodVersion = true;
      }
    }
    if (lastGood > 0) relevantBases.add(v.base_version);
  }
  for (const o of out) o.relevantToConflict = lastGood > 0 && (o.version >= lastGood || relevantBases.has(o.version));
  if (lastGood === 0 && out.length > 0) out[out.length - 1].lastGoodVersion = true;
  return options.relevantOnly ? out.filter((o) => o.relevantToConflict) : out;
}

/** Changes between consecutive versions: [{old, new, propertyName}] per step, label last. */
export function versionDiffs(versions: VersionRow[]) {
  const diffs = [];
  for (let i = 1; i < versions.length; i++) {
    const prev: Record<string, string> = { ...versions[i - 1].data, label: versions[i - 1].label };
    const curr: Record<string, string> = { ...versions[i].data, label: versions[i].label };
    diffs.push(Object.keys(curr).filter((k) => curr[k] !== prev[k]).map((k) => ({ old: prev[k] ?? null, new: curr[k], propertyName: k })));
  }
  return diffs;
}

export interface ExportRow {
  uuid: string;
  label: string;
  data: Record<string, string>;
  created_at: Date;
  creator_id: number | null;
  creator_name: string | null;
  version: number;
  updated_at: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : '');

export function csvLine(cells: (string | number | null | undefined)[]): string {
  return stringify([cells.map((c) => (c === null || c === undefined ? '' : String(c)))]);
}

/** The API's entities.csv: __id, label, properties, then system columns. */
export function exportHeader(properties: string[]): string {
  return csvLine(['__id', 'label', ...properties, '__createdAt', '__creatorId', '__creatorName', '__updates', '__updatedAt', '__version']);
}

export function exportLine(r: ExportRow, properties: string[]): string {
  return csvLine([r.uuid, r.label, ...properties.map((p) => r.data[p]), iso(r.created_at), r.creator_id, r.creator_name,
    r.version - 1, iso(r.updated_at), r.version]);
}

/** A geometry property (ODK geopoint/geotrace/geoshape text) as GeoJSON, or null when it is not one. */
export function odkGeometry(text: string | undefined): { type: string; coordinates: unknown } | null {
  if (!text || text.trim() === '') return null;
  const points: number[][] = [];
  for (const part of text.split(';').map((p) => p.trim()).filter(Boolean)) {
    const nums = part.split(/\s+/).map(Number);
    if (nums.length < 2 || nums.some((n) => Number.isNaN(n))) return null;
    const [lat, lon, alt] = nums;
    if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
    points.push(alt === undefined ? [lon, lat] : [lon, lat, alt]);
  }
  if (points.length === 1) return { type: 'Point', coordinates: points[0] };
  const closed = points.length >= 4 && points[0].join() === points[points.length - 1].join();
  return closed ? { type: 'Polygon', coordinates: [points] } : { type: 'LineString', coordinates: points };
}

export function featureCollection(rows: { uuid: string; geometry: string | undefined }[]) {
  const features = [];
  for (const r of rows) {
    const geometry = odkGeometry(r.geometry);
    if (geometry) features.push({ type: 'Feature', id: r.uuid, properties: null, geometry });
  }
  return { type: 'FeatureCollection', features };
}
