// Decrypting encrypted submissions for CSV exports (Central's managed encryption): the passphrases come as
// `?{keyId}={passphrase}` or, for POST, as a JSON or form-encoded body of the same pairs. Each managed key
// named is opened with its passphrase (a wrong one fails the whole request, 400.12); then every encrypted
// submission under those keys is decrypted before the rows stream (the cursor holds the connection while
// streaming), its XML structured by the form's schema like any other submission, and its media files are
// remembered so the zip carries them decrypted.
import type { Request } from 'express';
import type { KeyObject } from 'node:crypto';
import type { Db } from '../db.ts';
import { many } from '../http.ts';
import { parseXmlTree, structureSubmission, type EncryptedParts, type SchemaField, type StructuredData } from '../formats/submission.ts';
import {
  unsealPrivateKey, decryptSymmetricKey, decryptFile, encryptionOrder, plainName, type SealedPrivateKey,
} from '../formats/decrypt.ts';
import { readBody } from './submission-common.ts';

export interface DecryptedMedia { name: string; symmetricKey: Buffer; instanceId: string; index: number }

export interface Decryption {
  /** Root-row fields to override for an encrypted submission: its data and status. */
  row(instanceId: string): { data: StructuredData; status: string | null } | undefined;
  /** Encrypted media parts by blob id, to be written decrypted under their plain names. */
  media: Map<number, DecryptedMedia>;
  /** Blob ids of encrypted XML parts, which a decrypted export leaves out. */
  xmlBlobs: Set<number>;
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

interface EncryptedRow { instance_id: string; def_id: number; key_id: number; encryption: EncryptedParts }

/** Opens the named managed keys and decrypts the form's encrypted submissions under them; null when no passphrase was given. */
export async function prepareDecryption(db: Db, passphrases: Map<number, string>, formId: number, draft: boolean,
  fields: SchemaField[]): Promise<Decryption | null> {
  if (passphrases.size === 0) return null;
  const keys = new Map<number, KeyObject>();
  const sealed = await many<{ id: number; private: SealedPrivateKey }>(db,
    'select * from app_hidden.managed_private_keys($1::int[])', [[...passphrases.keys()]]);
  for (const k of sealed) keys.set(k.id, unsealPrivateKey(k.private, passphrases.get(k.id)!));
  const rows = new Map<string, { data: StructuredData; status: string | null }>();
  const media = new Map<number, DecryptedMedia>();
  const xmlBlobs = new Set<number>();
  if (keys.size > 0) {
    const encrypted = await many<EncryptedRow>(db,
      `select s.instance_id, d.id as def_id, fd.key_id, d.encryption
       from app_public.submissions s
       join app_public.submission_defs d on d.submission_id = s.id and d.current
       join app_public.form_defs fd on fd.id = d.form_def_id
       where s.form_id = $1 and s.draft = $2 and s.deleted_at is null and d.encryption is not null and fd.key_id = any ($3::int[])`,
      [formId, draft, [...keys.keys()]]);
    for (const e of encrypted) {
      const symmetricKey = decryptSymmetricKey(keys.get(e.key_id)!, e.encryption.base64EncryptedKey);
      const order = encryptionOrder(e.encryption.media, e.encryption.encryptedXmlFile);
      const parts = await many<{ name: string; blob_id: number | null; content: Buffer | null }>(db,
        `select a.name, a.blob_id, case when a.name = $2 then b.content end as content
         from app_public.submission_attachments a left join app_public.blobs b on b.id = a.blob_id
         where a.submission_def_id = $1`, [e.def_id, e.encryption.encryptedXmlFile]);
      for (const part of parts) {
        const index = order.indexOf(part.name);
        if (part.blob_id === null || index < 0) continue;
        if (part.name === e.encryption.encryptedXmlFile) xmlBlobs.add(part.blob_id);
        else media.set(part.blob_id, { name: plainName(part.name), symmetricKey, instanceId: e.instance_id, index });
      }
      const xml = parts.find((p) => p.name === e.encryption.encryptedXmlFile)?.content;
      if (!xml) { rows.set(e.instance_id, { data: {}, status: 'missing encrypted form data' }); continue; }
      const plain = decryptFile(symmetricKey, e.instance_id, order.length - 1, xml).toString('utf8');
      rows.set(e.instance_id, { data: structureSubmission(parseXmlTree(plain), fields), status: null });
    }
  }
  return { row: (instanceId) => rows.get(instanceId), media, xmlBlobs };
}

/** A media entry's content, decrypted. */
export function decryptMedia(m: DecryptedMedia, content: Buffer): Buffer {
  return decryptFile(m.symmetricKey, m.instanceId, m.index, content);
}
