// Central's OData documents for a dataset (…/datasets/:name.svc), as pure functions of its name and property
// list: the service document, the EDMX $metadata, $select validation, and entity rows as OData JSON.
import { primaryAnnotations, sanitizeIdentifier } from './odata.ts';
import { oDataProblems } from './odata-query.ts';
import { xmlText } from './openrosa.ts';

/** A dataset property as OData names it (Central's sanitized identifier). */
export interface EntityProperty { name: string; odataName: string }

export function entityProperties(names: string[]): EntityProperty[] {
  return names.map((name) => ({ name, odataName: sanitizeIdentifier(name) }));
}

export function entityServiceDocument(serviceUrl: string) {
  return { '@odata.context': `${serviceUrl}/$metadata`, value: [{ name: 'Entities', kind: 'EntitySet', url: 'Entities' }] };
}

/** The system properties of an entity, in Central's order (deletedAt last, as the data documents give it). */
export const entitySystemProperties: Array<[string, string]> = [
  ['createdAt', 'Edm.DateTimeOffset'], ['creatorId', 'Edm.String'], ['creatorName', 'Edm.String'], ['updates', 'Edm.Int64'],
  ['updatedAt', 'Edm.DateTimeOffset'], ['version', 'Edm.Int64'], ['conflict', 'Edm.String'], ['deletedAt', 'Edm.DateTimeOffset'],
];

/** The EDMX CSDL 4.0 document for a dataset: one `Entities` type (every property a string), as Central generates it. */
export function entityMetadataDocument(datasetName: string, properties: EntityProperty[]): string {
  const namespace = `org.opendatakit.user.${sanitizeIdentifier(datasetName)}`;
  const system = entitySystemProperties.map(([name, type]) => `        <Property Name="${name}" Type="${type}"/>\n`).join('');
  const props = properties.map((p) => `        <Property Name="${xmlText(p.odataName)}" Type="Edm.String"/>\n`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.entity">
      <ComplexType Name="metadata">
${system}      </ComplexType>
    </Schema>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="${xmlText(namespace)}">
      <EntityType Name="Entities">
        <Key><PropertyRef Name="__id"/></Key>
        <Property Name="__id" Type="Edm.String"/>
        <Property Name="__system" Type="org.opendatakit.entity.metadata"/>
        <Property Name="label" Type="Edm.String"/>
${props}      </EntityType>
      <EntityContainer Name="${xmlText(datasetName)}">
        <EntitySet Name="Entities" EntityType="${xmlText(namespace)}.Entities">
${primaryAnnotations(properties.map((p) => p.odataName))}        </EntitySet>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>`;
}

/** What a $select keeps: `__id`, `label`, `__system` or some `__system/x`, and properties by OData name. */
export interface EntitySelection { fields: Set<string> }

/** Validates $select (400.23 for an unknown property); undefined keeps everything. */
export function entitySelection(select: string[] | undefined, properties: EntityProperty[]): EntitySelection | undefined {
  if (!select) return undefined;
  const known = new Set(['__id', 'label', '__system', ...entitySystemProperties.map(([p]) => `__system/${p}`),
    ...properties.map((p) => p.odataName)]);
  for (const field of select) if (!known.has(field)) throw oDataProblems.propertyNotFound(field);
  return { fields: new Set(select) };
}

/** An entity's current version as SQL gives it (snake_case). */
export interface EntityODataRow {
  uuid: string;
  label: string;
  data: Record<string, string>;
  created_at: Date | string;
  creator_id: number | null;
  creator_name: string | null;
  version: number;
  updated_at: Date | string | null;
  deleted_at: Date | string | null;
  conflict: string | null;
}

/** One row of the Entities table: __id, label, __system, then the properties (null when the entity has no value). */
export function entityODataJson(row: EntityODataRow, properties: EntityProperty[], selection?: EntitySelection): Record<string, unknown> {
  const keep = (field: string) => !selection || selection.fields.has(field);
  const result: Record<string, unknown> = {};
  if (keep('__id')) result.__id = row.uuid;
  if (keep('label')) result.label = row.label;
  const system: Record<string, unknown> = {
    createdAt: row.created_at,
    creatorId: row.creator_id === null ? null : String(row.creator_id),
    creatorName: row.creator_name,
    updates: row.version - 1,
    updatedAt: row.updated_at,
    version: row.version,
    conflict: row.conflict,
    deletedAt: row.deleted_at,
  };
  if (keep('__system')) result.__system = system;
  else if (selection && [...selection.fields].some((f) => f.startsWith('__system/')))
    result.__system = Object.fromEntries(Object.entries(system).filter(([k]) => selection.fields.has(`__system/${k}`)));
  for (const p of properties) if (keep(p.odataName)) result[p.odataName] = row.data[p.name] ?? null;
  return result;
}
