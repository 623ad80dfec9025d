import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { createProject, createForm, submitOpenRosa, sampleSubmission, unzip } from './helpers.ts';

let f: Fixtures;
test.before(async () => { f = await withFixtures(); });
test.after.always(() => f?.server.close());

async function download(path: string) {
  const res = await fetch(f.server.url + path, { headers: { authorization: `Bearer ${f.alice.token}` } });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

const meta = 'KEY,SubmitterID,SubmitterName,AttachmentsPresent,AttachmentsExpected,Status,ReviewState,DeviceID,Edits,FormVersion';

test('nested repeats export a root CSV and one CSV per repeat with PARENT_KEY/KEY', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'nested');
  await createForm(f.server, f.alice.token, pid, 'repeats-nested-three-levels');
  const xml = sampleSubmission('repeats-nested-three-levels/briefcase-export-format.xml').toString().replace(' version="2018012404"', '');
  t.is((await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, xml, { token: f.alice.token })).status, 201);
  const res = await download(`/v1/projects/${pid}/forms/nested-repeats/submissions.csv.zip`);
  t.is(res.status, 200);
  t.is(res.headers.get('content-type'), 'application/zip');
  t.regex(res.headers.get('etag') ?? '', /^"[0-9a-f]{32}"$/);
  const files = unzip(res.body);
  t.deepEqual([...files.keys()], ['nested-repeats.csv', 'nested-repeats-g1.csv', 'nested-repeats-g2.csv', 'nested-repeats-g3.csv']);
  const id = 'uuid:0a1b861f-a5fd-4f49-846a-78dcf06cfc1b';
  const root = files.get('nested-repeats.csv')!.toString().trim().split('\n');
  t.is(root[0], `SubmissionDate,meta-instanceID,${meta}`);
  t.regex(root[1], new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[^,]+Z,${id},${id},${f.alice.id},Alice,0,0,,,,0,$`));
  const g3 = files.get('nested-repeats-g3.csv')!.toString().trim().split('\n');
  t.is(g3[0], 't3,PARENT_KEY,KEY');
  t.is(g3.length, 6);
  t.is(g3[1], `some text 1.1.1,${id}/g1[1]/g2[1],${id}/g1[1]/g2[1]/g3[1]`);
  const g2 = files.get('nested-repeats-g2.csv')!.toString().trim().split('\n');
  t.is(g2[1], `some text 1.1,${id}/g1[1],${id}/g1[1]/g2[1]`);
  const again = await fetch(`${f.server.url}/v1/projects/${pid}/forms/nested-repeats/submissions.csv.zip`,
    { headers: { authorization: `Bearer ${f.alice.token}`, 'if-none-match': res.headers.get('etag')! } });
  t.is(again.status, 304);
});

test('groups flatten into dash paths (or bare names with groupPaths=false), select multiples split on request', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'selects');
  await createForm(f.server, f.alice.token, pid, 'selects-choice-lists');
  t.is((await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, sampleSubmission('selects-choice-lists/briefcase-export-format.xml'), { token: f.alice.token })).status, 201);
  const b = `/v1/projects/${pid}/forms/choice-lists/submissions.csv`;
  const plain = (await download(b)).body.toString().split('\n');
  t.is(plain[0], `SubmissionDate,some_string,another_string,some_group-yet_another_string,meta-instanceID,${meta}`);
  const bare = (await download(`${b}?groupPaths=false`)).body.toString().split('\n');
  t.is(bare[0], `SubmissionDate,some_string,another_string,yet_another_string,instanceID,${meta}`);
  const split = (await download(`${b}?splitSelectMultiples=true`)).body.toString().split('\n');
  t.true(split[0].startsWith('SubmissionDate,some_string,some_string/CHOICE_1,another_string,'));
  t.true(split[1].includes(',CHOICE_1,1,CHOICE_2,'));
});

test('geopoints split into Latitude, Longitude, Altitude and Accuracy', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'geo');
  await createForm(f.server, f.alice.token, pid, 'datatypes-all-scalar-and-geo');
  t.is((await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, sampleSubmission('datatypes-all-scalar-and-geo/briefcase-export-format.xml'), { token: f.alice.token })).status, 201);
  const csv = (await download(`/v1/projects/${pid}/forms/all-data-types/submissions.csv`)).body.toString().split('\n');
  t.true(csv[0].includes(',some_geopoint-Latitude,some_geopoint-Longitude,some_geopoint-Altitude,some_geopoint-Accuracy,some_geotrace,'));
});

test('media files go into the zip unless attachments=false', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'media zip');
  await createForm(f.server, f.alice.token, pid, 'media-image-upload');
  await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, sampleSubmission('media-image-upload/collect-style.xml'),
    { token: f.alice.token, files: [{ name: '1556532531101.jpg', data: Buffer.from('jpeg'), type: 'image/jpeg' }] });
  const withMedia = unzip((await download(`/v1/projects/${pid}/forms/push-form-test/submissions.csv.zip`)).body);
  t.deepEqual([...withMedia.keys()], ['push-form-test.csv', 'media/1556532531101.jpg']);
  t.is(withMedia.get('media/1556532531101.jpg')!.toString(), 'jpeg');
  t.true(withMedia.get('push-form-test.csv')!.toString().split('\n')[1].includes(',1,1,'));
  const without = unzip((await download(`/v1/projects/${pid}/forms/push-form-test/submissions.csv.zip?attachments=false`)).body);
  t.deepEqual([...without.keys()], ['push-form-test.csv']);
});

test('encrypted submissions export their metadata with Status "not decrypted"', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'encrypted');
  await createForm(f.server, f.alice.token, pid, 'encrypted-simple');
  const res = await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, sampleSubmission('encrypted-simple/submission-manifest.xml'),
    { token: f.alice.token, files: [{ name: 'submission.xml.enc', data: sampleSubmission('encrypted-simple/submission.xml.enc') }] });
  t.is(res.status, 201, res.text);
  const csv = (await download(`/v1/projects/${pid}/forms/encrypted-form/submissions.csv`)).body.toString().split('\n');
  t.true(csv[1].includes(',not decrypted,'));
  const keys = await f.server.request(`/v1/projects/${pid}/forms/encrypted-form/submissions/keys`, { token: f.alice.token });
  t.is(keys.body.length, 1);
  t.is(typeof keys.body[0].public, 'string');
});
