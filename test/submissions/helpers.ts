// Helpers for submission tests: sample forms and submissions from ../shared/forms, projects and forms
// created through the API, and OpenRosa multipart bodies built the way Collect sends them.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import type { TestServer } from '../helpers/server.ts';

export const formsDir = path.resolve('../shared/forms');
export const sampleForm = (name: string) => fs.readFileSync(path.join(formsDir, `${name}.xml`), 'utf8');
export const sampleSubmission = (file: string) => fs.readFileSync(path.join(formsDir, 'submissions', file));

export async function createProject(server: TestServer, token: string, name = 'Submissions'): Promise<number> {
  const res = await server.request('/v1/projects', { method: 'POST', token, body: { name } });
  if (res.status !== 200) throw new Error(`project: ${res.status} ${res.text}`);
  return res.body.id;
}

/** Uploads and publishes a form from ../shared/forms (or given XML); returns its xmlFormId. */
export async function createForm(server: TestServer, token: string, projectId: number, nameOrXml: string): Promise<string> {
  const xml = nameOrXml.startsWith('<') ? nameOrXml : sampleForm(nameOrXml);
  const res = await server.request(`/v1/projects/${projectId}/forms?publish=true&ignoreWarnings=true`,
    { method: 'POST', token, raw: xml, headers: { 'content-type': 'application/xml' } });
  if (res.status !== 200) throw new Error(`form ${nameOrXml.slice(0, 40)}: ${res.status} ${res.text}`);
  return res.body.xmlFormId;
}

export interface Part { name: string; filename?: string; type?: string; data: string | Buffer }

export function multipart(parts: Part[]): { body: Buffer; contentType: string } {
  const boundary = '----fieldbase' + Math.random().toString(16).slice(2);
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`));
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** POSTs an OpenRosa submission (the XML part, then one part per file) as Collect does. */
export async function submitOpenRosa(server: TestServer, url: string, xml: string | Buffer, options: {
  token?: string | null; files?: { name: string; data: Buffer | string; type?: string }[]; headers?: Record<string, string>;
} = {}) {
  const { body, contentType } = multipart([
    { name: 'xml_submission_file', filename: 'submission.xml', type: 'text/xml', data: xml },
    ...(options.files ?? []).map((f) => ({ name: f.name, filename: f.name, type: f.type ?? 'application/octet-stream', data: f.data })),
  ]);
  return server.request(url, { method: 'POST', token: options.token, raw: body,
    headers: { 'content-type': contentType, 'x-openrosa-version': '1.0', ...options.headers } });
}

/** Submits XML over REST. */
export function submitRest(server: TestServer, token: string, projectId: number, xmlFormId: string, xml: string | Buffer, query = '') {
  return server.request(`/v1/projects/${projectId}/forms/${encodeURIComponent(xmlFormId)}/submissions${query}`,
    { method: 'POST', token, raw: xml, headers: { 'content-type': 'application/xml' } });
}

/** Reads a zip's entries (stored or deflated) through its central directory: enough to check exports. */
export function unzip(zip: Buffer): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  for (let i = 0; i < count; i++) {
    const method = zip.readUInt16LE(offset + 10);
    const size = zip.readUInt32LE(offset + 20);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extra = zip.readUInt16LE(offset + 30);
    const comment = zip.readUInt16LE(offset + 32);
    const local = zip.readUInt32LE(offset + 42);
    const name = zip.subarray(offset + 46, offset + 46 + nameLength).toString('utf8');
    const dataStart = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(dataStart, dataStart + size);
    entries.set(name, method === 8 ? zlib.inflateRawSync(raw) : Buffer.from(raw));
    offset += 46 + nameLength + extra + comment;
  }
  return entries;
}

export interface EncryptedSubmission { manifest: string; files: { name: string; data: Buffer }[] }

/** MGF1 mask of length bytes over seed. */
function mgf1(seed: Buffer, length: number, hash: string): Buffer {
  const blocks: Buffer[] = [];
  for (let counter = 0; blocks.length * crypto.createHash(hash).digest().length < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    blocks.push(crypto.createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ b[i]));

/**
 * RSA/NONE/OAEPWithSHA256AndMGF1Padding as Java (and so Collect) does it: OAEP with SHA-256, but MGF1 with
 * Java's default SHA-1 (mgf1Hash 'sha256' gives what Node's publicEncrypt with oaepHash sha256 does).
 */
export function oaepEncrypt(publicKey: crypto.KeyObject, message: Buffer, mgf1Hash = 'sha1'): Buffer {
  const k = publicKey.asymmetricKeyDetails!.modulusLength! / 8;
  const hLen = 32;
  const db = Buffer.concat([crypto.createHash('sha256').digest(), Buffer.alloc(k - message.length - 2 * hLen - 2), Buffer.from([1]), message]);
  const seed = crypto.randomBytes(hLen);
  const maskedDb = xor(db, mgf1(seed, db.length, mgf1Hash));
  const maskedSeed = xor(seed, mgf1(maskedDb, hLen, mgf1Hash));
  return crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_NO_PADDING }, Buffer.concat([Buffer.from([0]), maskedSeed, maskedDb]));
}

/** The IV of a submission's n-th file (0-based): md5(instanceID ‖ key), one byte bumped per file so far. */
function fileIv(instanceId: string, key: Buffer, index: number): Buffer {
  const iv = crypto.createHash('md5').update(instanceId).update(key).digest();
  for (let i = 0; i <= index; i++) iv[i % 16] = (iv[i % 16] + 1) & 0xff;
  return iv;
}

/**
 * Encrypts an instance as Collect does (ODK XForms encryption spec): a fresh AES-256 key wrapped with the form's RSA
 * key; the media files, then the XML, each AES-256-CFB with PKCS#7 padding and its own IV; the manifest with the
 * element signature. The files come back in encryption order, ready to send with the manifest.
 */
export function encryptAsCollect(o: { publicKey: string; formId: string; version?: string; instanceId: string; xml: string;
  media?: { name: string; data: Buffer }[]; mgf1Hash?: string }): EncryptedSubmission {
  const rsa = crypto.createPublicKey({ key: Buffer.from(o.publicKey, 'base64'), format: 'der', type: 'spki' });
  const aes = crypto.randomBytes(32);
  const wrapped = oaepEncrypt(rsa, aes, o.mgf1Hash).toString('base64');
  const plain = [...(o.media ?? []), { name: 'submission.xml', data: Buffer.from(o.xml) }];
  const files = plain.map((p, index) => {
    const pad = 16 - (p.data.length % 16);
    const cipher = crypto.createCipheriv('aes-256-cfb', aes, fileIv(o.instanceId, aes, index));
    return { name: `${p.name}.enc`, data: Buffer.concat([cipher.update(Buffer.concat([p.data, Buffer.alloc(pad, pad)])), cipher.final()]) };
  });
  const signed = [o.formId, ...(o.version ? [o.version] : []), wrapped, o.instanceId,
    ...plain.map((p) => `${p.name}::${crypto.createHash('md5').update(p.data).digest('hex')}`)].join('\n') + '\n';
  const signature = oaepEncrypt(rsa, crypto.createHash('md5').update(signed).digest(), o.mgf1Hash).toString('base64');
  const manifest = `<data xmlns="http://opendatakit.org/submissions" id="${o.formId}"${o.version ? ` version="${o.version}"` : ''} encrypted="yes">`
    + `<base64EncryptedKey>${wrapped}</base64EncryptedKey>`
    + `<encryptedXmlFile>submission.xml.enc</encryptedXmlFile>`
    + (o.media ?? []).map((m) => `<media><file>${m.name}.enc</file></media>`).join('')
    + `<base64EncryptedElementSignature>${signature}</base64EncryptedElementSignature>`
    + `<orx:meta xmlns:orx="http://openrosa.org/xforms"><orx:instanceID>${o.instanceId}</orx:instanceID></orx:meta></data>`;
  return { manifest, files };
}
