// ODK encryption, pure functions on Node's crypto: Central's project-managed keys (an RSA key pair whose
// private half is sealed under a passphrase the server never stores), the public key written into a form's
// XML, and decryption of encrypted submissions as the ODK encryption spec describes them (the AES key
// unwrapped with RSA-OAEP/SHA-256, each file decrypted with AES-256-CFB and its own IV derived from
// md5(instanceID + key), PKCS#7 padding stripped).
import crypto, { type KeyObject } from 'node:crypto';
import { Problem } from '../errors.ts';

export const undecryptable = () =>
  new Problem(400.12, 'Could not perform decryption. Double check your passphrase and your data and try again.');

/** A managed private key as stored (app_public.keys.private): PKCS#8 DER sealed by AES-256-GCM under a PBKDF2 key. */
export interface SealedPrivateKey {
  kdf: 'pbkdf2-sha256';
  iterations: number;
  salt: string;
  iv: string;
  tag: string;
  data: string;
}

const iterations = 128_000;

function passphraseKey(passphrase: string, salt: Buffer, rounds: number): Buffer {
  return crypto.pbkdf2Sync(passphrase, salt, rounds, 32, 'sha256');
}

/** Seals a private key (any form Node reads: PEM, KeyObject) under a passphrase. */
export function sealPrivateKey(key: KeyObject | string | Buffer, passphrase: string): SealedPrivateKey {
  const keyObject = typeof key === 'object' && 'type' in key && !Buffer.isBuffer(key) ? key : crypto.createPrivateKey(key);
  const der = keyObject.export({ format: 'der', type: 'pkcs8' });
  const salt = crypto.randomBytes(16);
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', passphraseKey(passphrase, salt, iterations), iv);
  const data = Buffer.concat([cipher.update(der), cipher.final()]);
  return { kdf: 'pbkdf2-sha256', iterations, salt: salt.toString('base64'), iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
}

/** Opens a sealed private key; a wrong passphrase (or damaged key) is 400.12. */
export function unsealPrivateKey(sealed: SealedPrivateKey, passphrase: string): KeyObject {
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm',
      passphraseKey(passphrase, Buffer.from(sealed.salt, 'base64'), sealed.iterations), Buffer.from(sealed.iv, 'base64'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    const der = Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]);
    return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    throw undecryptable();
  }
}

/** The public key as forms carry it (base64RsaPublicKey): base64 of the SubjectPublicKeyInfo DER, no PEM envelope. */
export function publicKeyBase64(key: KeyObject): string {
  return key.export({ format: 'der', type: 'spki' }).toString('base64');
}

/** A new managed key pair (RSA 2048): the public key for forms and the private key sealed under the passphrase. */
export function generateManagedKey(passphrase: string): { publicKey: string; sealed: SealedPrivateKey } {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { publicKey: publicKeyBase64(publicKey), sealed: sealPrivateKey(privateKey, passphrase) };
}

/** Central's version suffix for forms re-published under a managed key: [encrypted:<6 bytes of epoch ms, base64>]. */
export function versionSuffix(now = new Date()): string {
  const bytes = Buffer.alloc(6);
  bytes.writeUIntBE(now.getTime(), 0, 6);
  return `[encrypted:${bytes.toString('base64')}]`;
}

/**
 * Writes the public key into the form's <submission> element (creating it at the end of the model when there
 * is none), as Central does when it turns managed encryption on.
 */
export function injectPublicKey(xml: string, publicKey: string): string {
  const submission = /<((?:[\w.-]+:)?submission)\b([^>]*?)(\/?)>/.exec(xml);
  if (submission) {
    const attributes = submission[2].replace(/\s+base64RsaPublicKey\s*=\s*("[^"]*"|'[^']*')/, '');
    const tag = `<${submission[1]}${attributes} base64RsaPublicKey="${publicKey}"${submission[3]}>`;
    return xml.slice(0, submission.index) + tag + xml.slice(submission.index + submission[0].length);
  }
  const modelEnd = /<\/((?:[\w.-]+:)?)model\s*>/.exec(xml);
  if (!modelEnd) throw new Problem(400.1, `Could not parse the given data (${xml.length} chars) as xml.`, { format: 'xml', rawLength: xml.length });
  const tag = `<${modelEnd[1]}submission base64RsaPublicKey="${publicKey}"/>`;
  return xml.slice(0, modelEnd.index) + tag + xml.slice(modelEnd.index);
}

// ---------------------------------------------------------------------------------------------
// Submissions

function mgf1(seed: Buffer, length: number, hash: string): Buffer {
  const out: Buffer[] = [];
  for (let counter = 0; Buffer.concat(out).length < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    out.push(crypto.createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(out).subarray(0, length);
}

/** OAEP decoding with SHA-256 and MGF1-SHA-1 (Java's default for OAEPWithSHA-256AndMGF1Padding), which Node cannot select. */
function oaepSha256Mgf1Sha1(privateKey: KeyObject, encrypted: Buffer): Buffer {
  const em = crypto.privateDecrypt({ key: privateKey, padding: crypto.constants.RSA_NO_PADDING }, encrypted);
  const hLen = 32;
  const maskedSeed = em.subarray(1, 1 + hLen);
  const maskedDb = em.subarray(1 + hLen);
  const seedMask = mgf1(maskedDb, hLen, 'sha1');
  const seed = Buffer.from(maskedSeed.map((b, i) => b ^ seedMask[i]));
  const mask = mgf1(seed, maskedDb.length, 'sha1');
  const db = Buffer.from(maskedDb.map((b, i) => b ^ mask[i]));
  const labelHash = crypto.createHash('sha256').digest();
  if (em[0] !== 0 || !db.subarray(0, hLen).equals(labelHash)) throw undecryptable();
  const one = db.indexOf(1, hLen);
  if (one < 0 || db.subarray(hLen, one).some((b) => b !== 0)) throw undecryptable();
  return db.subarray(one + 1);
}

/** Unwraps a submission's AES key (base64EncryptedKey) with the private key: RSA-OAEP with SHA-256. */
export function decryptSymmetricKey(privateKey: KeyObject, base64EncryptedKey: string): Buffer {
  const encrypted = Buffer.from(base64EncryptedKey, 'base64');
  try {
    return crypto.privateDecrypt({ key: privateKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, encrypted);
  } catch {
    try { return oaepSha256Mgf1Sha1(privateKey, encrypted); } catch { throw undecryptable(); }
  }
}

/** The IV of the n-th file (0-based) of a submission: md5(instanceID ‖ key) with byte n mod 16 bumped once per file so far. */
export function fileIv(instanceId: string, symmetricKey: Buffer, index: number): Buffer {
  const seed = crypto.createHash('md5').update(instanceId, 'utf8').update(symmetricKey).digest();
  for (let i = 0; i <= index; i++) seed[i % 16] = (seed[i % 16] + 1) & 0xff;
  return seed;
}

/** Decrypts one file of a submission (AES-256-CFB, PKCS#7 padding removed). */
export function decryptFile(symmetricKey: Buffer, instanceId: string, index: number, content: Buffer): Buffer {
  try {
    const decipher = crypto.createDecipheriv('aes-256-cfb', symmetricKey, fileIv(instanceId, symmetricKey, index));
    const plain = Buffer.concat([decipher.update(content), decipher.final()]);
    const pad = plain[plain.length - 1];
    if (plain.length === 0 || pad < 1 || pad > 16 || plain.subarray(plain.length - pad).some((b) => b !== pad)) throw undecryptable();
    return plain.subarray(0, plain.length - pad);
  } catch {
    throw undecryptable();
  }
}

/** The order files were encrypted in: media files as the manifest lists them, then the XML file. */
export function encryptionOrder(media: string[], encryptedXmlFile: string | null): string[] {
  return [...media, ...(encryptedXmlFile ? [encryptedXmlFile] : [])];
}

/** A decrypted media file's name: the encrypted part's name without `.enc`. */
export function plainName(name: string): string {
  return name.endsWith('.enc') ? name.slice(0, -4) : name;
}
