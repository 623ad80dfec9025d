// Submission instances (the XML Collect, Enketo and scripts send), parsed once at ingestion:
// one saxes pass into a light element tree, from which come the metadata (form id and version,
// instanceID, deprecatedID, instanceName, encryption parts) and the structured data keyed by the
// form's field schema (group → object, repeat → array of objects, leaf → its text).
import { SaxesParser } from 'saxes';
import { Problem } from '../errors.ts';

export interface XmlElement {
  /** Local name: namespace prefixes are dropped, as Central does (orx:meta ≡ meta). */
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

export interface EncryptedParts {
  base64EncryptedKey: string;
  encryptedXmlFile: string | null;
  /** Encrypted media file names (`<media><file>…</file></media>`), in document order. */
  media: string[];
  base64EncryptedElementSignature: string | null;
}

export interface ParsedSubmission {
  formId: string;
  /** The root's version (or orx:version) attribute; '' when absent. */
  version: string;
  instanceId: string;
  deprecatedId: string | null;
  instanceName: string | null;
  encrypted: EncryptedParts | null;
  root: XmlElement;
}

/** One field of a form's schema, as the forms tables hold it (path like /group/question). */
export interface SchemaField {
  path: string;
  type: string;
  selectMultiple?: boolean | null;
  binary?: boolean | null;
}

export type StructuredValue = string | StructuredData | StructuredData[];
export interface StructuredData { [name: string]: StructuredValue }

export function localName(qualified: string): string {
  const colon = qualified.indexOf(':');
  return colon < 0 ? qualified : qualified.slice(colon + 1);
}

/** Parses XML into an element tree; malformed XML is Central's 400.1. */
export function parseXmlTree(xml: string): XmlElement {
  const parser = new SaxesParser({ xmlns: false });
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let failure: Error | null = null;
  parser.on('error', (err) => { failure ??= err; });
  parser.on('opentag', (tag) => {
    const attributes: Record<string, string> = {};
    for (const [key, value] of Object.entries(tag.attributes)) attributes[key] = String(value);
    const element: XmlElement = { name: localName(tag.name), attributes, children: [], text: '' };
    if (stack.length > 0) stack[stack.length - 1].children.push(element);
    else root = element;
    stack.push(element);
  });
  parser.on('text', (text) => { if (stack.length > 0) stack[stack.length - 1].text += text; });
  parser.on('cdata', (text) => { if (stack.length > 0) stack[stack.length - 1].text += text; });
  parser.on('closetag', () => { stack.pop(); });
  try {
    parser.write(xml).close();
  } catch (err) {
    failure ??= err as Error;
  }
  if (failure || !root) throw new Problem(400.1, `Could not parse the given data (${xml.length} chars) as xml.`, { format: 'xml', rawLength: xml.length });
  return root;
}

function attribute(element: XmlElement, name: string): string | undefined {
  if (element.attributes[name] !== undefined) return element.attributes[name];
  const key = Object.keys(element.attributes).find((k) => localName(k) === name && !k.startsWith('xmlns'));
  return key === undefined ? undefined : element.attributes[key];
}

function child(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name);
}

function textOf(element: XmlElement | undefined): string | null {
  if (!element) return null;
  const text = element.text.trim();
  return text === '' ? null : text;
}

/** Reads a submission's metadata; 400.2 when the form id or instanceID is missing. */
export function parseSubmission(xml: string): ParsedSubmission {
  const root = parseXmlTree(xml);
  const formId = attribute(root, 'id')?.trim();
  if (!formId) throw new Problem(400.2, 'Required parameter form ID xml attribute missing.', { field: 'form ID xml attribute' });
  const meta = child(root, 'meta');
  const instanceId = textOf(child(meta, 'instanceID')) ?? attribute(root, 'instanceID')?.trim() ?? null;
  if (!instanceId) throw new Problem(400.2, 'Required parameter instanceID missing.', { field: 'instanceID' });
  const encryptedKey = textOf(child(root, 'base64EncryptedKey'));
  const encrypted: EncryptedParts | null = encryptedKey === null ? null : {
    base64EncryptedKey: encryptedKey,
    encryptedXmlFile: textOf(child(root, 'encryptedXmlFile')),
    media: root.children.filter((c) => c.name === 'media').map((m) => textOf(child(m, 'file'))).filter((f): f is string => f !== null),
    base64EncryptedElementSignature: textOf(child(root, 'base64EncryptedElementSignature')),
  };
  return {
    formId,
    version: attribute(root, 'version') ?? '',
    instanceId,
    deprecatedId: textOf(child(meta, 'deprecatedID')),
    instanceName: textOf(child(meta, 'instanceName')),
    encrypted,
    root,
  };
}

interface SchemaNode {
  field: SchemaField;
  children: Map<string, SchemaNode>;
}

/** Trees already built, by schema (ingestion reuses one field list per form version). */
const trees = new WeakMap<SchemaField[], Map<string, SchemaNode>>();

/** The schema as a tree of names, for walking an instance alongside it (built once per field list). */
export function schemaTree(fields: SchemaField[]): Map<string, SchemaNode> {
  let tree = trees.get(fields);
  if (!tree) { tree = buildSchemaTree(fields); trees.set(fields, tree); }
  return tree;
}

function buildSchemaTree(fields: SchemaField[]): Map<string, SchemaNode> {
  const top = new Map<string, SchemaNode>();
  const byPath = new Map<string, SchemaNode>();
  for (const field of fields) {
    const slash = field.path.lastIndexOf('/');
    const parentPath = field.path.slice(0, slash);
    const name = field.path.slice(slash + 1);
    const node: SchemaNode = { field, children: new Map() };
    byPath.set(field.path, node);
    (parentPath === '' ? top : byPath.get(parentPath)?.children)?.set(name, node);
  }
  return top;
}

export const isGroup = (type: string) => type === 'structure';
export const isRepeat = (type: string) => type === 'repeat';

function structureInto(target: StructuredData, element: XmlElement, schema: Map<string, SchemaNode>): void {
  for (const el of element.children) {
    const node = schema.get(el.name);
    if (!node) continue; // not part of the form: Central ignores it too
    if (isRepeat(node.field.type)) {
      const instance: StructuredData = {};
      structureInto(instance, el, node.children);
      const list = target[el.name];
      if (Array.isArray(list)) list.push(instance); else target[el.name] = [instance];
    } else if (isGroup(node.field.type)) {
      const existing = target[el.name];
      const group = existing && typeof existing === 'object' && !Array.isArray(existing) ? existing : {};
      structureInto(group, el, node.children);
      target[el.name] = group;
    } else {
      const previous = target[el.name];
      target[el.name] = typeof previous === 'string' ? previous + el.text : el.text;
    }
  }
}

/** The instance's data keyed by the form's schema; elements outside the schema are left out. */
export function structureSubmission(root: XmlElement, fields: SchemaField[]): StructuredData {
  const data: StructuredData = {};
  structureInto(data, root, schemaTree(fields));
  return data;
}

/** Leaf values of binary fields: the attachment file names the submission refers to. */
export function expectedAttachments(data: StructuredData, fields: SchemaField[]): string[] {
  const names = new Set<string>();
  const walk = (value: StructuredValue | undefined, schema: Map<string, SchemaNode>) => {
    if (value === undefined || typeof value === 'string') return;
    for (const item of Array.isArray(value) ? value : [value]) {
      for (const [name, node] of schema) {
        const v = item[name];
        if (node.field.binary && typeof v === 'string' && v.trim() !== '') names.add(v.trim());
        else if (node.children.size > 0) walk(v, node.children);
      }
    }
  };
  walk(data, schemaTree(fields));
  return [...names];
}
