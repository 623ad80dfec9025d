// Decrypting encrypted submissions for CSV exports (Central's managed encryption): the passphrases come as
// `?{keyId}={passphrase}` or, for POST, as a JSON or form-encoded body of the same pairs. Each managed key
// named is opened with its passphrase before anything streams (a wrong one fails the whole request, 400.12);
// then each encrypted submission is decrypted as its row comes from the export's cursor (which carries the
// encrypted XML, the cursor holding the connection), its XML structured by the form's schema like any other
// submission's, so that memory stays flat however many there are. Media files are decrypted as the zip reads them.
import type { Request } from 'express';
import type { KeyObject } from 'node:crypto';
import type { Db } from '../db.ts';
import { many } from '../http.ts';
import { parseXmlTree, structureSubmission, type EncryptedParts, type SchemaField, type StructuredData } from '../formats/submission.ts';
import {
  unsealPrivateKey, decryptSymmetricKey, decryptFile, encryptionOrder, plainName, type SealedPrivateKey,
} from '../formats/decrypt.ts';
import { readBody } from './submission-common.ts';

/** What an export's query selects (through Decryption.columns) for its rows to be decrypted. */
export interface EncryptedColumns {
  /** The current version's instanceID, from which the files' IVs derive. */
  def_instance_id: string;
  key_id: number | null;
  encryption: EncryptedParts | null;
  /** The encrypted XML part's content; null when the row is not under an opened key or the part has not arrived. */
  encrypted_xml: Buffer | null;
}

/** A stored attachment of the export, with what is needed to decrypt it (selected by Decryption.fileColumns). */
export interface ExportedFile { name: string; blob_id: number; def_instance_id: string; key_id: number | null; encryption: EncryptedParts | null }

/** How a stored file goes into the zip: under this name, its content transformed. */
export interface ZipMedia { name: string; content(stored: Buffer): Buffer }

export interface Decryption {
  /** Select-list columns over aliases d (submission_defs) and fd (form_defs) that give EncryptedColumns. */
  columns: string;
  /** Select-list columns over aliases d and fd that give an ExportedFile's decryption fields. */
  fileColumns: string;
  /** An encrypted row's data and status, decrypted; undefined when its key was not opened. */
  row(r: EncryptedColumns): { data: StructuredData; status: string | null } | undefined;
  /** A file's zip entry: decrypted under its plain name, or null for an encrypted XML part (left out). */
  file(f: ExportedFile): ZipMedia | null;
}

const passphrasePairs = (source: Record<string, unknown>) => Object.entries(source)
  .filter(([k, v]) => /^\d+$/.test(k) && typeof v === 'string')
  .map(([k, v]) => [Number(k), v as string] as const);

/** The {keyId → passphrase} pairs of the request (query string, or a JSON / form-encoded POST body). */
export async function passphrasesOf(req: Request): Promise<Map<number, string>> {
  const pairs = new Map(passphrasePairs(req.query as Record<string, unknown>));
  if (req.method === 'POST') {
    const type = (req.get('content-type') ?? '').toLowerCase();
    if (type.startsWith('application/x-www-form-urlencoded') && !req.readableEnded) {
      const text = (await readBody(req, 1024 * 1024)).toString('utf8');
      for (const [k, v] of passphrasePairs(Object.fromEntries(new URLSearchParams(text)))) pairs.set(k, v);
    } else if (req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body)) {
      for (const [k, v] of passphrasePairs(req.body as Record<string, unknown>)) pairs.set(k, v);
    }
  }
  return pairs;
}

/** A file that goes into the zip as stored. */
export const asStored = (name: string): ZipMedia => ({ name, content: (stored) => stored });

/** Unwrapped submission keys, by wrapped key: bounded, so that a long export does not grow it. */
function symmetricKeys(limit = 1024) {
  const cache = new Map<string, Buffer>();
  return (privateKey: KeyObject, wrapped: string): Buffer => {
    let key = cache.get(wrapped);
    if (!key) {
      key = decryptSymmetricKey(privateKey, wrapped);
      if (cache.size >= limit) cache.delete(cache.keys().next().value!);
      cache.set(wrapped, key);
    }
    return key;
  };
}

/** Opens the named managed keys (400.12 on a wrong passphrase); null when no passphrase was given. */
export async function prepareDecryption(db: Db, passphrases: Map<number, string>, fields: SchemaField[]): Promise<Decryption | null> {
  if (passphrases.size === 0) return null;
  const keys = new Map<number, KeyObject>();
  const sealed = await many<{ id: number; private: SealedPrivateKey }>(db,
    'select * from app_hidden.managed_private_keys($1::int[])', [[...passphrases.keys()]]);
  for (const k of sealed) keys.set(k.id, unsealPrivateKey(k.private, passphrases.get(k.id)!));
  const opened = `fd.key_id = any ('{${[...keys.keys()].join(',')}}'::int[])`;
  const symmetricKey = symmetricKeys();
  const keyOf = (r: { key_id: number | null; encryption: EncryptedParts | null }) =>
    r.key_id === null || !r.encryption ? undefined : keys.get(r.key_id);
  return {
    columns: `d.instance_id as def_instance_id, fd.key_id, d.encryption,
      case when d.encryption is not null and ${opened} then (
        select b.content from app_public.submission_attachments xa join app_public.blobs b on b.id = xa.blob_id
        where xa.submission_def_id = d.id and xa.name = d.encryption->>'encryptedXmlFile') end as encrypted_xml`,
    fileColumns: 'd.instance_id as def_instance_id, fd.key_id, d.encryption',
    row(r) {
      const key = keyOf(r);
      if (!key) return undefined;
      const { base64EncryptedKey, media, encryptedXmlFile } = r.encryption!;
      if (!r.encrypted_xml) return { data: {}, status: 'missing encrypted form data' };
      const index = encryptionOrder(media, encryptedXmlFile).length - 1;
      const plain = decryptFile(symmetricKey(key, base64EncryptedKey), r.def_instance_id, index, r.encrypted_xml).toString('utf8');
      return { data: structureSubmission(parseXmlTree(plain), fields), status: null };
    },
    file(f) {
      const key = keyOf(f);
      if (!key) return asStored(f.name);
      const { base64EncryptedKey, media, encryptedXmlFile } = f.encryption!;
      const index = encryptionOrder(media, encryptedXmlFile).indexOf(f.name);
      if (index < 0) return asStored(f.name);
      if (f.name === encryptedXmlFile) return null;
      return { name: plainName(f.name),
        content: (stored) => decryptFile(symmetricKey(key, base64EncryptedKey), f.def_instance_id, index, stored) };
    },
  };
}
