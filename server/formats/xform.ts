// XForms definitions as a pure function: xml text in, everything the server keeps about a form version out
// (id, version, title, encryption key, the flat field schema, expected attachments, entity declarations),
// or one of Central's problems. Field schema and attachment rules follow Central's /fields and
// form-attachment behaviour (see docs/ and ../shared/spec/).
import xml2js from 'xml2js';
import { Problem } from '../errors.ts';

/** One row of the field schema, in depth-first document order (app_public.form_fields). */
export interface FormField {
  name: string;
  path: string;
  type: string;
  binary: boolean;
  selectMultiple: boolean;
}

export type AttachmentType = 'image' | 'audio' | 'video' | 'file';

export interface ExpectedAttachment {
  name: string;
  type: AttachmentType;
}

export interface EntityDataset {
  name: string;
  actions: ('create' | 'update')[];
  /** Where the entity block's parent lives ('/' for the whole submission, '/household_member' for a repeat). */
  path: string;
}

export interface EntityProperty {
  path: string;
  property: string;
}

export interface FormWarning {
  type: string;
  details: unknown;
  reason?: string;
}

export interface EntityDeclarations {
  version: string;
  datasets: EntityDataset[];
  properties: EntityProperty[];
  warnings: FormWarning[];
}

export interface XForm {
  xmlFormId: string;
  version: string;
  title: string | null;
  base64RsaPublicKey: string | null;
  submissionUrl: string | null;
  fields: FormField[];
  attachments: ExpectedAttachment[];
  entities: EntityDeclarations | null;
}

// ---------------------------------------------------------------------------------------------
// A small namespace-aware element tree on top of xml2js (prefixes kept, names matched by local name).

interface RawAttr { name: string; value: string; local: string; uri: string }
interface RawNode {
  '#name': string;
  $?: Record<string, RawAttr>;
  $ns?: { uri: string; local: string };
  _?: string;
  $$?: RawNode[];
}

interface El {
  name: string;
  local: string;
  uri: string;
  attrs: RawAttr[];
  text: string;
  children: El[];
}

function toEl(raw: RawNode): El {
  const attrs = Object.values(raw.$ ?? {}).filter((a) => a.name !== 'xmlns' && !a.name.startsWith('xmlns:'));
  return {
    name: raw['#name'],
    local: raw.$ns?.local ?? stripPrefix(raw['#name']),
    uri: raw.$ns?.uri ?? '',
    attrs,
    text: raw._ ?? '',
    children: (raw.$$ ?? []).filter((c) => c && typeof c === 'object' && c['#name']).map(toEl),
  };
}

function stripPrefix(name: string): string {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(i + 1);
}

const stripPath = (path: string) => path.split('/').map(stripPrefix).join('/');

function attr(el: El | undefined, local: string): string | undefined {
  return el?.attrs.find((a) => a.local === local || stripPrefix(a.name) === local)?.value;
}

const child = (el: El | undefined, local: string) => el?.children.find((c) => c.local === local);
const childrenNamed = (el: El | undefined, local: string) => el?.children.filter((c) => c.local === local) ?? [];

function* descendants(el: El): Generator<El> {
  for (const c of el.children) {
    yield c;
    yield* descendants(c);
  }
}

export function parseXml(xml: string): El {
  let result: Record<string, RawNode> | undefined;
  let failure: unknown;
  const parser = new xml2js.Parser({
    explicitChildren: true, preserveChildrenOrder: true, explicitCharkey: true, xmlns: true,
    charsAsChildren: false, async: false, strict: true,
  });
  try {
    parser.parseString(xml, (err: unknown, r: Record<string, RawNode>) => { failure = err; result = r; });
  } catch (err) {
    failure = err;
  }
  const root = result && Object.values(result)[0];
  if (failure || !root || typeof root !== 'object') throw unparseableXml(xml);
  return toEl(root);
}

const unparseableXml = (xml: string) =>
  new Problem(400.1, `Could not parse the given data (${xml.length} chars) as xml.`, { format: 'xml', rawLength: xml.length });

const invalidEntityForm = (reason: string) =>
  new Problem(400.25, `The entity definition within the form is invalid. ${reason}`, { reason });

// ---------------------------------------------------------------------------------------------
// Field schema.

interface Bind { nodeset: string; type: string; saveto: string | undefined }

const absolutify = (path: string, root: string) => (path.startsWith('/') ? path : `/${root}/${path}`);

/** Paths of body elements with a given local name (repeat nodesets, select refs), namespaces stripped. */
function bodyRefs(body: El | undefined, local: string): Set<string> {
  const refs = new Set<string>();
  if (!body) return refs;
  for (const el of descendants(body)) {
    if (el.local !== local) continue;
    const ref = attr(el, 'nodeset') ?? attr(el, 'ref');
    if (ref) refs.add(stripPath(ref.trim()));
  }
  return refs;
}

interface SchemaContext {
  envelope: string;
  binds: Map<string, Bind>;
  repeats: Set<string>;
  selectMultiples: Set<string>;
  rejectEntityRepeats: boolean;
  properties: EntityProperty[];
}

function walkFields(parent: El, basePath: string[], ctx: SchemaContext, out: FormField[]) {
  const seenRepeats = new Set<string>();
  for (const tag of parent.children) {
    const path = basePath.concat(tag.name);
    const joined = `/${path.join('/')}`;
    const bindingPath = `/${ctx.envelope}${joined}`;
    const strippedBindingPath = stripPath(bindingPath);
    const field: FormField = { name: stripPrefix(tag.name), path: stripPath(joined), type: 'unknown', binary: false, selectMultiple: false };

    if (ctx.repeats.has(strippedBindingPath)) {
      if (seenRepeats.has(strippedBindingPath)) continue; // jr:template and its instances describe one repeat
      seenRepeats.add(strippedBindingPath);
      field.type = 'repeat';
    } else {
      const bind = ctx.binds.get(bindingPath);
      if (bind) {
        field.type = bind.type;
        if (bind.saveto !== undefined) {
          if (ctx.rejectEntityRepeats && [...ctx.repeats].some((r) => strippedBindingPath.startsWith(`${r}/`)))
            throw invalidEntityForm('Currently, entities cannot be populated from fields in repeat groups.');
          ctx.properties.push({ path: field.path, property: bind.saveto });
        }
      } else if (tag.children.length > 0 || (tag.local === 'entity' && joined.includes('/meta/'))) {
        field.type = 'structure';
      }
    }
    if (field.type === 'binary' || field.path === '/meta/audit') field.binary = true;
    if (ctx.selectMultiples.has(strippedBindingPath)) field.selectMultiple = true;
    out.push(field);
    if ((field.type === 'repeat' || field.type === 'structure') && tag.children.length > 0) walkFields(tag, path, ctx, out);
  }
}

// ---------------------------------------------------------------------------------------------
// Expected form attachments.

const jrPathName = (value: string): string | null =>
  /^jr:\/\/(?:images|audio|video|file|file-csv)\/([^/]+)$/.exec(value.trim())?.[1] ?? null;

const mediaForms: Record<string, AttachmentType> = { image: 'image', audio: 'audio', video: 'video', 'big-image': 'image' };

function searchAppearanceFile(appearance: string): string | null {
  const match = /^\s*(?:\w*\s+)?search\s*\(\s*("|')(.+)\)\s*$/.exec(appearance);
  if (!match) return null;
  const [, quote, args] = match;
  const end = args.indexOf(quote);
  if (end < 0) throw new Problem(400.8, `Unexpected search() appearance value ${appearance}; broken syntax, maybe unmatched quotes?`,
    { field: 'search() appearance', value: appearance, reason: 'broken syntax, maybe unmatched quotes?' });
  const base = args.slice(0, end);
  if (base === '' || /^\s|\s$/.test(base)) return null;
  return base.endsWith('.csv') ? base : `${base}.csv`;
}

function expectedAttachments(model: El, body: El | undefined): ExpectedAttachment[] {
  const found: ExpectedAttachment[] = [];
  for (const instance of childrenNamed(model, 'instance')) {
    const src = attr(instance, 'src');
    const name = src ? jrPathName(src) : null;
    if (name) found.push({ name, type: 'file' });
  }
  for (const itext of childrenNamed(model, 'itext'))
    for (const translation of childrenNamed(itext, 'translation'))
      for (const text of childrenNamed(translation, 'text'))
        for (const value of childrenNamed(text, 'value')) {
          const type = mediaForms[attr(value, 'form') ?? ''];
          const name = jrPathName(value.text);
          if (type && name) found.push({ name, type });
        }
  for (const instance of childrenNamed(model, 'instance'))
    for (const el of descendants(instance))
      if (/^jr:\/\/images\/./.test(el.text)) {
        const name = jrPathName(el.text);
        if (name) found.push({ name, type: 'image' });
      }
  if (body) {
    const all = [...descendants(body)];
    if (all.some((el) => el.local === 'input' && attr(el, 'query') !== undefined)) found.push({ name: 'itemsets.csv', type: 'file' });
    for (const el of all) {
      if (el.local !== 'select' && el.local !== 'select1') continue;
      const appearance = attr(el, 'appearance');
      if (!appearance || !appearance.includes('search')) continue;
      const name = searchAppearanceFile(appearance);
      if (name) found.push({ name, type: 'file' });
    }
  }
  // One expectation per (name, type), in discovery order.
  const seen = new Map<string, AttachmentType>();
  const result: ExpectedAttachment[] = [];
  for (const a of found) {
    if (seen.get(a.name) !== a.type) result.push(a);
    seen.set(a.name, a.type);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Entities (https://getodk.github.io/xforms-spec/entities).

function versionParts(version: string): number[] | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(version.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null;
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

const validDatasetName = (name: string) => /^(?!__)[\p{L}:_][\p{L}:\d_-]*$/u.test(name);
const validPropertyName = (name: string) => /^(?!__)(?!name$)(?!label$)[\p{L}_][\p{L}\d._-]*$/u.test(name.toLowerCase());

function entityBlocks(el: El, path: string[], out: { el: El; path: string }[]) {
  for (const c of el.children) {
    if (c.local === 'meta') {
      for (const e of childrenNamed(c, 'entity')) out.push({ el: e, path: `/${path.map(stripPrefix).join('/')}` });
    }
    entityBlocks(c, path.concat(c.name), out);
  }
}

function entityDeclarations(version: string | undefined, dataRoot: El, properties: EntityProperty[]): EntityDeclarations | null {
  const blocks: { el: El; path: string }[] = [];
  entityBlocks(dataRoot, [], blocks);
  if (blocks.length === 0) return null;
  if (version === undefined || version.trim() === '') throw invalidEntityForm('Entities specification version is missing.');
  const parts = versionParts(version);
  if (!parts || compareVersions(parts, [2022, 1, 0]) < 0 || compareVersions(parts, [2025, 2, 0]) >= 0)
    throw invalidEntityForm(`Entities specification version [${version}] is not supported.`);
  const warnings: FormWarning[] = compareVersions(parts, [2024, 1, 0]) >= 0 ? [] : [{
    type: 'oldEntityVersion',
    details: { version },
    reason: `Entities specification version [${version}] is not compatible with Offline Entities. Please use version 2024.1.0 or later.`,
  }];

  const datasets: EntityDataset[] = [];
  for (const { el, path } of blocks) {
    const name = attr(el, 'dataset')?.trim();
    if (name === undefined) throw invalidEntityForm('Dataset name is missing.');
    if (!validDatasetName(name)) throw invalidEntityForm('Invalid dataset name.');
    const actions: EntityDataset['actions'] = [];
    if (attr(el, 'create') !== undefined) actions.push('create');
    if (attr(el, 'update') !== undefined) actions.push('update');
    if (actions.length === 0) throw invalidEntityForm('The form must specify at least one entity action, for example, create or update.');
    if (!datasets.some((d) => d.name === name && d.path === path)) datasets.push({ name, actions, path });
  }
  if (properties.some((p) => !validPropertyName(p.property))) throw invalidEntityForm('Invalid entity property name.');
  return { version: version.trim(), datasets, properties, warnings };
}

// ---------------------------------------------------------------------------------------------

/** Parses and checks an XForm; throws Central's problem (400.1, 400.2, 400.8, 400.25, 400.27) when it cannot be used. */
export function parseXForm(xml: string): XForm {
  const html = parseXml(xml);
  const head = html.local === 'html' ? child(html, 'head') : undefined;
  const model = child(head, 'model');
  const primary = child(model, 'instance');
  const dataRoot = primary?.children[0];
  const xmlFormId = attr(dataRoot, 'id')?.trim() ?? '';
  if (!dataRoot || xmlFormId === '') throw new Problem(400.2, 'Required parameter formId missing.', { field: 'formId' });
  if (/\.(xlsx?|xml)$/.test(xmlFormId)) {
    const reason = 'The Form ID cannot end in .xls, .xlsx, or .xml. Please either specify an allowed ID in the form itself, or rename the file (eg change form.xls.xls to form.xls).';
    throw new Problem(400.8, `Unexpected formId value ${xmlFormId}; ${reason}`, { field: 'formId', value: xmlFormId, reason });
  }
  const titleEl = child(head, 'title');
  const submission = child(model, 'submission');
  const base64RsaPublicKey = attr(submission, 'base64RsaPublicKey')?.trim() || null;
  const body = html.children.find((c) => c.local === 'body');

  const entitiesVersion = attr(model, 'entities-version');
  const entityParts = entitiesVersion ? versionParts(entitiesVersion) : null;
  const binds = new Map<string, Bind>();
  for (const b of childrenNamed(model!, 'bind')) {
    const nodeset = attr(b, 'nodeset');
    const type = attr(b, 'type');
    if (!nodeset || type === undefined) continue;
    const key = absolutify(nodeset.trim(), dataRoot.name);
    if (!binds.has(key)) binds.set(key, { nodeset, type, saveto: attr(b, 'saveto') });
  }
  const ctx: SchemaContext = {
    envelope: dataRoot.name,
    binds,
    repeats: bodyRefs(body, 'repeat'),
    selectMultiples: bodyRefs(body, 'select'),
    rejectEntityRepeats: !entityParts || compareVersions(entityParts, [2025, 1, 0]) < 0,
    properties: [],
  };
  const fields: FormField[] = [];
  walkFields(dataRoot, [], ctx, fields);
  // Entity declarations live in meta, so only forms that declare entities need it (Collect adds instanceID anyway).
  if (entitiesVersion && !fields.some((f) => f.name === 'meta' && f.type === 'structure'))
    throw new Problem(400.27, 'The form does not contain a \'meta\' group.');

  return {
    xmlFormId,
    version: attr(dataRoot, 'version') ?? '',
    title: titleEl ? titleEl.text : null,
    base64RsaPublicKey,
    submissionUrl: attr(submission, 'action') ?? null,
    fields,
    attachments: expectedAttachments(model!, body),
    // Central does not read entity declarations of encrypted forms.
    entities: base64RsaPublicKey ? null : entityDeclarations(entitiesVersion, dataRoot, ctx.properties),
  };
}

/** Central's OData-safe identifiers, for /fields?odata=true. */
export function odataIdentifier(name: string): string {
  return name.replace(/^([^a-z_])/i, '_$1').replace(/([^a-z0-9_]+)/gi, '_');
}

export function odataFields(fields: FormField[]): FormField[] {
  return fields.map((f) => ({ ...f, name: odataIdentifier(f.name), path: f.path.split('/').map((s) => (s === '' ? s : odataIdentifier(s))).join('/') }));
}

/**
 * Sets the primary instance's version attribute (replacing version= / orx:version= or adding version=),
 * editing the text in place so the rest of the document stays byte-identical.
 */
export function setVersion(xml: string, version: string): string {
  const escaped = version.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const instanceAt = xml.search(/<(?:[\w.-]+:)?instance[\s>]/);
  if (instanceAt < 0) throw unparseableXml(xml);
  const rootStart = xml.indexOf('<', xml.indexOf('>', instanceAt) + 1);
  let cursor = rootStart;
  // Skip comments/processing instructions before the root element.
  while (xml.startsWith('<!--', cursor) || xml.startsWith('<?', cursor)) {
    const close = xml.startsWith('<!--', cursor) ? xml.indexOf('-->', cursor) + 3 : xml.indexOf('?>', cursor) + 2;
    cursor = xml.indexOf('<', close);
  }
  const tagEnd = findTagEnd(xml, cursor);
  const tag = xml.slice(cursor, tagEnd);
  const existing = /(\s(?:[\w.-]+:)?version\s*=\s*)("[^"]*"|'[^']*')/.exec(tag);
  const newTag = existing
    ? tag.slice(0, existing.index) + `${existing[1]}"${escaped}"` + tag.slice(existing.index + existing[0].length)
    : tag.replace(/\s*(\/?)$/, ` version="${escaped}"$1`);
  return xml.slice(0, cursor) + newTag + xml.slice(tagEnd);
}

/** Index of the closing '>' of the tag that starts at `start` (quotes respected). */
function findTagEnd(xml: string, start: number): number {
  let quote: string | null = null;
  for (let i = start; i < xml.length; i++) {
    const ch = xml[i];
    if (quote) { if (ch === quote) quote = null; } else if (ch === '"' || ch === '\'') quote = ch;
    else if (ch === '>') return i;
  }
  throw unparseableXml(xml);
}
