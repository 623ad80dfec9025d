// Unit tests of server/formats/decrypt.ts against the sample encrypted submissions in ../shared/forms.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  sealPrivateKey, unsealPrivateKey, generateManagedKey, decryptSymmetricKey, decryptFile, fileIv, encryptionOrder,
  plainName, injectPublicKey, versionSuffix, publicKeyBase64,
} from '../../server/formats/decrypt.ts';
import { parseXForm } from '../../server/formats/xform.ts';

const samples = path.resolve('../shared/forms/submissions');
const read = (dir: string, file: string) => fs.readFileSync(path.join(samples, dir, file));
const testKey = () => crypto.createPrivateKey(read('encrypted-with-media', 'TEST-ONLY-private-key.pem'));
const manifestValue = (xml: string, tag: string) => new RegExp(`<(?:\\w+:)?${tag}>([^<]*)<`).exec(xml)![1];

test('the sample with media decrypts: XML last, the JPEGs first in manifest order', (t) => {
  const manifest = read('encrypted-with-media', 'submission-manifest.xml').toString();
  const instanceId = manifestValue(manifest, 'instanceID');
  const key = decryptSymmetricKey(testKey(), manifestValue(manifest, 'base64EncryptedKey'));
  t.is(key.length, 32);
  const order = encryptionOrder(['1538040007350.jpg.enc', '1538040019351.jpg.enc'], 'submission.xml.enc');
  t.deepEqual(order, ['1538040007350.jpg.enc', '1538040019351.jpg.enc', 'submission.xml.enc']);
  const xml = decryptFile(key, instanceId, 2, read('encrypted-with-media', 'submission.xml.enc')).toString();
  t.true(xml.includes('<name>My name</name>'));
  const jpeg = decryptFile(key, instanceId, 0, read('encrypted-with-media', '1538040007350.jpg.enc'));
  t.is(jpeg.length, 1326907);
  t.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
  t.is(plainName('1538040007350.jpg.enc'), '1538040007350.jpg');
});

test('the simple sample decrypts to Guillermo', (t) => {
  const manifest = read('encrypted-simple', 'submission-manifest.xml').toString();
  const key = decryptSymmetricKey(testKey(), manifestValue(manifest, 'base64EncryptedKey'));
  const xml = decryptFile(key, manifestValue(manifest, 'instanceID'), 0, read('encrypted-simple', 'submission.xml.enc')).toString();
  t.true(xml.includes('<name>Guillermo</name>'));
});

test('IVs bump one byte of md5(instanceID + key) per file, cycling over the 16 bytes', (t) => {
  const key = Buffer.alloc(32, 7);
  const seed = crypto.createHash('md5').update('uuid:x').update(key).digest();
  const first = fileIv('uuid:x', key, 0);
  t.is(first[0], (seed[0] + 1) & 0xff);
  t.deepEqual(first.subarray(1), seed.subarray(1));
  const seventeenth = fileIv('uuid:x', key, 16);
  t.is(seventeenth[0], (seed[0] + 2) & 0xff);
  t.is(seventeenth[15], (seed[15] + 1) & 0xff);
});

test('a sealed private key opens only with its passphrase (400.12 otherwise)', (t) => {
  const sealed = sealPrivateKey(testKey(), 'correct passphrase');
  t.is(sealed.kdf, 'pbkdf2-sha256');
  const opened = unsealPrivateKey(sealed, 'correct passphrase');
  t.is(publicKeyBase64(crypto.createPublicKey(opened)), publicKeyBase64(crypto.createPublicKey(testKey())));
  const err = t.throws(() => unsealPrivateKey(sealed, 'wrong passphrase')) as unknown as { code: number };
  t.is(err.code, 400.12);
});

test('a managed key pair round-trips an AES key wrapped with RSA-OAEP/SHA-256', (t) => {
  const { publicKey, sealed } = generateManagedKey('a long passphrase');
  const pub = crypto.createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
  const aes = crypto.randomBytes(32);
  const wrapped = crypto.publicEncrypt({ key: pub, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, aes);
  t.deepEqual(decryptSymmetricKey(unsealPrivateKey(sealed, 'a long passphrase'), wrapped.toString('base64')), aes);
  t.is((t.throws(() => decryptSymmetricKey(unsealPrivateKey(sealed, 'a long passphrase'), 'AAAA')) as unknown as { code: number }).code, 400.12);
});

test('the public key goes into the form\'s <submission> element (added when missing), and the version gets Central\'s suffix', (t) => {
  const plain = fs.readFileSync(path.resolve('../shared/forms/basic-one-question-v1.xml'), 'utf8');
  const keyed = parseXForm(injectPublicKey(plain, 'MIIBkey'));
  t.is(keyed.base64RsaPublicKey, 'MIIBkey');
  const already = fs.readFileSync(path.resolve('../shared/forms/encrypted-simple.xml'), 'utf8');
  const replaced = injectPublicKey(already, 'OTHER');
  t.is(parseXForm(replaced).base64RsaPublicKey, 'OTHER');
  t.is((replaced.match(/base64RsaPublicKey/g) ?? []).length, 1);
  t.regex(versionSuffix(new Date(0)), /^\[encrypted:[A-Za-z0-9+/]{8}\]$/);
});
