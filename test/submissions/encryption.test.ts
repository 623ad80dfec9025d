// Project managed encryption and decrypting exports, through HTTP.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { createProject, createForm, submitOpenRosa, sampleSubmission, unzip, encryptAsCollect } from './helpers.ts';
import { sealPrivateKey } from '../../server/formats/decrypt.ts';

let f: Fixtures;
test.before(async () => { f = await withFixtures(); });
test.after.always(() => f?.server.close());

async function download(url: string, init: RequestInit = {}) {
  const res = await fetch(f.server.url + url, { ...init, headers: { authorization: `Bearer ${f.alice.token}`, ...init.headers } });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

test('POST /projects/:id/key enables managed encryption: forms re-published with the key and a suffixed version', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'managed');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  const short = await f.server.request(`/v1/projects/${pid}/key`, { method: 'POST', token: f.alice.token, body: { passphrase: 'short' } });
  t.is(short.status, 400);
  t.is(short.body.code, 400.21);
  const missing = await f.server.request(`/v1/projects/${pid}/key`, { method: 'POST', token: f.alice.token, body: {} });
  t.is(missing.body.code, 400.2);
  const forbidden = await f.server.request(`/v1/projects/${pid}/key`, { method: 'POST', token: f.bob.token, body: { passphrase: 'supersecret passphrase' } });
  t.is(forbidden.status, 403);

  const res = await f.server.request(`/v1/projects/${pid}/key`, { method: 'POST', token: f.alice.token,
    body: { passphrase: 'supersecret passphrase', hint: 'the usual' } });
  t.is(res.status, 200);
  t.is(res.body.id, pid);
  t.is(typeof res.body.keyId, 'number');
  const form = await f.server.request(`/v1/projects/${pid}/forms/one_question`, { token: f.alice.token });
  t.is(form.body.keyId, res.body.keyId);
  t.regex(form.body.version, /^1\[encrypted:[A-Za-z0-9+/]{8}\]$/);
  const xml = await f.server.request(`/v1/projects/${pid}/forms/one_question.xml`, { token: f.alice.token });
  t.regex(xml.text, /<submission base64RsaPublicKey="[A-Za-z0-9+/=]+"\/>/);
  const versions = await f.server.request(`/v1/projects/${pid}/forms/one_question/versions`, { token: f.alice.token });
  t.deepEqual(versions.body.map((v: { version: string }) => v.version.slice(0, 1)), ['1', '1']);

  const again = await f.server.request(`/v1/projects/${pid}/key`, { method: 'POST', token: f.alice.token, body: { passphrase: 'another passphrase' } });
  t.is(again.status, 409);
  t.is(again.body.code, 409.4);

  // Forms uploaded later carry the project's key too.
  const other = fs.readFileSync(path.resolve('../shared/forms/selects-choice-lists.xml'), 'utf8');
  await createForm(f.server, f.alice.token, pid, other);
  const later = await f.server.request(`/v1/projects/${pid}/forms/choice-lists`, { token: f.alice.token });
  t.is(later.body.keyId, res.body.keyId);
});

test('submissions encrypted under the managed key decrypt in CSV exports with the passphrase; without it they are "not decrypted"', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'roundtrip');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  const key = await f.server.request(`/v1/projects/${pid}/key`, { method: 'POST', token: f.alice.token, body: { passphrase: 'supersecret passphrase' } });
  const keyId: number = key.body.keyId;
  const form = await f.server.request(`/v1/projects/${pid}/forms/one_question`, { token: f.alice.token });
  const { rows: [k] } = await f.server.sql.query('select public from app_public.keys where id = $1', [keyId]);
  const instanceId = 'uuid:5c1b2a3e-0000-4000-8000-000000000001';
  const plainXml = `<data id="one_question" orx:version="${form.body.version}" xmlns:orx="http://openrosa.org/xforms"><age>37</age><meta><instanceID>${instanceId}</instanceID></meta></data>`;
  // Wrapped as Node's OAEP does (MGF1 with SHA-256); the repeat tests wrap as Java does (MGF1 with SHA-1).
  const { manifest, files: parts } = encryptAsCollect({ publicKey: k.public, formId: 'one_question', version: form.body.version,
    instanceId, xml: plainXml, mgf1Hash: 'sha256' });
  const sent = await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, manifest, { token: f.alice.token, files: parts });
  t.is(sent.status, 201);

  const keys = await f.server.request(`/v1/projects/${pid}/forms/one_question/submissions/keys`, { token: f.alice.token });
  t.deepEqual(keys.body.map((x: { id: number; managed: boolean }) => [x.id, x.managed]), [[keyId, true]]);

  const base = `/v1/projects/${pid}/forms/one_question/submissions.csv`;
  const locked = (await download(base)).body.toString().split('\n');
  t.is(locked[0].split(',').slice(0, 3).join(','), 'SubmissionDate,age,meta-instanceID');
  t.regex(locked[1], /^[^,]+,,,uuid:5c1b2a3e[^,]+,\d+,Alice,1,1,not decrypted,/);

  const open = (await download(`${base}?${keyId}=${encodeURIComponent('supersecret passphrase')}`)).body.toString().split('\n');
  t.regex(open[1], new RegExp(`^[^,]+,37,${instanceId},${instanceId},\\d+,Alice,1,1,,,`));

  const posted = await download(`${base}.zip`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ [keyId]: 'supersecret passphrase' }) });
  t.is(posted.status, 200);
  const files = unzip(posted.body);
  t.deepEqual([...files.keys()], ['one_question.csv']);
  t.true(files.get('one_question.csv')!.toString().includes(`,37,${instanceId},`));

  const form_ = await download(`${base}.zip`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `${keyId}=${encodeURIComponent('supersecret passphrase')}` });
  t.true(unzip(form_.body).get('one_question.csv')!.toString().includes(`,37,${instanceId},`));

  const wrong = await download(`${base}?${keyId}=wrong%20passphrase%20here`);
  t.is(wrong.status, 400);
  t.is(JSON.parse(wrong.body.toString()).code, 400.12);
});

test('the sample encrypted submissions decrypt in the export with their test key, media files included', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'samples');
  const pem = fs.readFileSync(path.resolve('../shared/forms/submissions/encrypted-with-media/TEST-ONLY-private-key.pem'));
  const publicKey = /base64RsaPublicKey="([^"]+)"/.exec(fs.readFileSync(path.resolve('../shared/forms/encrypted-simple.xml'), 'utf8'))![1];
  // The samples' key pair, held as a managed key under a passphrase of ours.
  const { rows: [k] } = await f.server.sql.query(
    `insert into app_public.keys (public, private, managed, hint) values ($1, $2, true, 'test key') returning id`,
    [publicKey, JSON.stringify(sealPrivateKey(pem, 'test key passphrase'))]);
  await createForm(f.server, f.alice.token, pid, 'encrypted-simple');
  await createForm(f.server, f.alice.token, pid, 'encrypted-with-media');

  const simple = 'encrypted-simple';
  t.is((await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, sampleSubmission(`${simple}/submission-manifest.xml`),
    { token: f.alice.token, files: [{ name: 'submission.xml.enc', data: sampleSubmission(`${simple}/submission.xml.enc`) }] })).status, 201);
  const media = 'encrypted-with-media';
  t.is((await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, sampleSubmission(`${media}/submission-manifest.xml`), {
    token: f.alice.token,
    files: ['1538040007350.jpg.enc', '1538040019351.jpg.enc', 'submission.xml.enc'].map((name) => ({ name, data: sampleSubmission(`${media}/${name}`) })),
  })).status, 201);

  const one = (await download(`/v1/projects/${pid}/forms/encrypted-form/submissions.csv?${k.id}=test%20key%20passphrase`)).body.toString().split('\n');
  t.is(one[0], 'SubmissionDate,name,meta-instanceID,KEY,SubmitterID,SubmitterName,AttachmentsPresent,AttachmentsExpected,Status,ReviewState,DeviceID,Edits,FormVersion');
  t.regex(one[1], /^[^,]+,Guillermo,uuid:494cd080-3bf4-47be-b40f-c706a950d58a,uuid:494cd080/);

  const zip = await download(`/v1/projects/${pid}/forms/encrypted-form-media/submissions.csv.zip?${k.id}=test%20key%20passphrase`);
  t.is(zip.status, 200);
  const files = unzip(zip.body);
  t.deepEqual([...files.keys()].sort(), ['encrypted-form-media.csv', 'media/1538040007350.jpg', 'media/1538040019351.jpg']);
  t.is(files.get('media/1538040007350.jpg')!.length, 1326907);
  t.is(files.get('media/1538040019351.jpg')!.length, 1383729);
  const csv = files.get('encrypted-form-media.csv')!.toString();
  t.true(csv.includes(',My name,1538040019351.jpg,1538040007350.jpg,'));

  const locked = unzip((await download(`/v1/projects/${pid}/forms/encrypted-form-media/submissions.csv.zip`)).body);
  t.true([...locked.keys()].includes('media/1538040007350.jpg.enc'));
  t.true(locked.get('encrypted-form-media.csv')!.toString().includes('not decrypted'));
});
