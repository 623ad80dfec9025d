import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { createProject, createForm, submitOpenRosa, sampleSubmission, multipart } from './helpers.ts';

let f: Fixtures;
let projectId: number;
test.before(async () => {
  f = await withFixtures();
  projectId = await createProject(f.server, f.alice.token);
  await createForm(f.server, f.alice.token, projectId, 'basic-one-question-v1');
  await createForm(f.server, f.alice.token, projectId, 'media-image-upload');
});
test.after.always(() => f?.server.close());

const success = '<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">\n'
  + '  <message nature="">full submission upload was successful!</message>\n</OpenRosaResponse>';

test('HEAD on the submission URL is 204 with the OpenRosa headers', async (t) => {
  const res = await f.server.request(`/v1/projects/${projectId}/submission`, { method: 'HEAD', token: f.alice.token });
  t.is(res.status, 204);
  t.is(res.headers.get('x-openrosa-version'), '1.0');
  t.is(res.headers.get('x-openrosa-accept-content-length'), '104857600');
  t.truthy(res.headers.get('date'));
});

test('a Collect submission is 201 with the OpenRosaResponse byte for byte, and is stored once', async (t) => {
  const res = await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission?deviceID=collect%3Aabc`,
    sampleSubmission('basic-one-question-v1/original.xml'), { token: f.alice.token, headers: { 'user-agent': 'org.odk.collect.android/v2024.1' } });
  t.is(res.status, 201);
  t.is(res.text, success);
  t.is(res.headers.get('x-openrosa-version'), '1.0');
  t.regex(res.headers.get('content-type') ?? '', /^text\/xml/);
  const list = await f.server.request(`/v1/projects/${projectId}/forms/one_question/submissions`, { token: f.alice.token });
  t.is(list.body.length, 1);
  t.like(list.body[0], { instanceId: 'uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d', submitterId: f.alice.id, deviceId: 'collect:abc',
    userAgent: 'org.odk.collect.android/v2024.1', reviewState: null });
  const xml = await f.server.request(`/v1/projects/${projectId}/forms/one_question/submissions/uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d.xml`, { token: f.alice.token });
  t.is(xml.text, sampleSubmission('basic-one-question-v1/original.xml').toString('utf8'));
  const { rows } = await f.server.sql.query(`select data from app_public.submission_defs where instance_id = $1`, ['uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d']);
  t.deepEqual(rows[0].data, { age: '42', meta: { instanceID: 'uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d' } });
  const audits = await f.server.sql.query(`select details from app_public.audits where action = 'submission.create'
    and actee_id = (select actee_id from app_public.forms where project_id = $1 and xml_form_id = 'one_question')`, [projectId]);
  t.is(audits.rows.length, 1);
  t.is(audits.rows[0].details.instanceId, 'uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d');
  // The identical XML again is fine (it could add attachments); different XML with the same instanceID is 409.1.
  const again = await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission`, sampleSubmission('basic-one-question-v1/original.xml'), { token: f.alice.token });
  t.is(again.status, 201);
  const changed = sampleSubmission('basic-one-question-v1/original.xml').toString().replace('<age>42</age>', '<age>41</age>');
  const conflict = await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission`, changed, { token: f.alice.token });
  t.is(conflict.status, 409);
  t.true(conflict.text.includes('<message nature="error">A submission already exists with this ID, but with different XML.'));
});

test('a deprecatedID makes a new version: edits chain, reviewState edited, old copy 409.9', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'edits');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  const url = `/v1/projects/${pid}/submission`;
  t.is((await submitOpenRosa(f.server, url, sampleSubmission('basic-one-question-v1/original.xml'), { token: f.alice.token })).status, 201);
  const edit = await submitOpenRosa(f.server, url, sampleSubmission('basic-one-question-v1/edit-with-deprecatedID.xml'), { token: f.alice.token });
  t.is(edit.status, 201);
  const base = `/v1/projects/${pid}/forms/one_question/submissions/uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d`;
  const s = await f.server.request(base, { token: f.alice.token });
  t.is(s.body.reviewState, 'edited');
  t.is(s.body.currentVersion.instanceId, 'uuid:5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d');
  const versions = await f.server.request(`${base}/versions`, { token: f.alice.token });
  t.deepEqual(versions.body.map((v: any) => [v.instanceId, v.current]),
    [['uuid:5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d', true], ['uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d', false]]);
  const diffs = await f.server.request(`${base}/diffs`, { token: f.alice.token });
  t.deepEqual(diffs.body['uuid:5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d'], [
    { old: '42', new: '43', path: ['age'] },
    { old: 'uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d', new: 'uuid:5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d', path: ['meta', 'instanceID'] },
    { old: null, new: 'uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d', path: ['meta', 'deprecatedID'] },
  ]);
  const oldXml = await f.server.request(`${base}/versions/uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d.xml`, { token: f.alice.token });
  t.true(oldXml.text.includes('<age>42</age>'));
  // Editing the replaced copy again is refused.
  const stale = sampleSubmission('basic-one-question-v1/edit-with-deprecatedID.xml').toString().replace('uuid:5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d', 'uuid:99999999-1e0f-4a9b-8c7d-6e5f4a3b2c1d');
  const res = await submitOpenRosa(f.server, url, stale, { token: f.alice.token });
  t.is(res.status, 409);
  t.true(res.text.includes('is now out of date'));
  const audits = await f.server.sql.query(`select count(*)::int as n from app_public.audits where action = 'submission.update.version'`);
  t.is(audits.rows[0].n, 1);
});

test('unknown versions are 404.6, unknown forms 404.1, closed forms 409.2, all as OpenRosa XML', async (t) => {
  const wrong = await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission`, sampleSubmission('basic-one-question-v1/wrong-version.xml'), { token: f.alice.token });
  t.is(wrong.status, 404);
  t.true(wrong.text.includes(`<message nature="error">The form version specified in this submission '99' does not exist.</message>`));
  const unknown = await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission`, '<data id="nope"><meta><instanceID>uuid:x</instanceID></meta></data>', { token: f.alice.token });
  t.is(unknown.status, 404);
  const pid = await createProject(f.server, f.alice.token, 'closed');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  await f.server.sql.query(`update app_public.forms set state = 'closed' where project_id = $1`, [pid]);
  const closed = await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, sampleSubmission('basic-one-question-v1/original.xml'), { token: f.alice.token });
  t.is(closed.status, 409);
  t.true(closed.text.includes('This form is not currently accepting submissions.'));
});

test('bad input: malformed XML 400, no xml_submission_file 400, broken multipart 400; nothing stored', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'bad input');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  const url = `/v1/projects/${pid}/submission`;
  const malformed = await submitOpenRosa(f.server, url, '<data id="one_question"><age>1</data>', { token: f.alice.token });
  t.is(malformed.status, 400);
  t.true(malformed.text.includes('as xml.'));
  const { body, contentType } = multipart([{ name: 'other', data: 'x' }]);
  const missing = await f.server.request(url, { method: 'POST', token: f.alice.token, raw: body, headers: { 'content-type': contentType } });
  t.is(missing.status, 400);
  t.true(missing.text.includes('Required multipart POST field xml_submission_file missing.'));
  const broken = await f.server.request(url, { method: 'POST', token: f.alice.token, raw: '--x\r\nnonsense', headers: { 'content-type': 'multipart/form-data; boundary=x' } });
  t.is(broken.status, 400);
  const { rows } = await f.server.sql.query(`select count(*)::int as n from app_public.submissions s join app_public.forms f on f.id = s.form_id where f.project_id = $1`, [pid]);
  t.is(rows[0].n, 0);
});

test('anonymous submissions get a 401 challenge; App Users submit through /v1/key/', async (t) => {
  const anon = await submitOpenRosa(f.server, `/v1/projects/${projectId}/submission`, sampleSubmission('media-image-upload/collect-style.xml'));
  t.is(anon.status, 401);
  t.truthy(anon.headers.get('www-authenticate'));
  const appUser = await f.server.request(`/v1/projects/${projectId}/app-users`, { method: 'POST', token: f.alice.token, body: { displayName: 'collector' } });
  t.is(appUser.status, 200);
  await f.server.request(`/v1/projects/${projectId}/forms/push-form-test/assignments/app-user/${appUser.body.id}`, { method: 'POST', token: f.alice.token });
  const res = await submitOpenRosa(f.server, `/v1/key/${appUser.body.token}/projects/${projectId}/submission`, sampleSubmission('media-image-upload/collect-style.xml'));
  t.is(res.status, 201);
  const s = await f.server.request(`/v1/projects/${projectId}/forms/push-form-test/submissions/uuid:520e7b86-1572-45b1-a89e-7da26ad1624e`, { token: f.alice.token, headers: { 'x-extended-metadata': 'true' } });
  t.is(s.body.submitterId, appUser.body.id);
  t.is(s.body.submitter.type, 'field_key');
  t.is(s.body.attachmentsExpected, 1);
  t.is(s.body.attachmentsPresent, 0);
});

test('attachments can follow in a later request with the identical XML', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'media');
  await createForm(f.server, f.alice.token, pid, 'media-image-upload');
  const xml = sampleSubmission('media-image-upload/collect-style.xml');
  const url = `/v1/projects/${pid}/submission`;
  t.is((await submitOpenRosa(f.server, url, xml, { token: f.alice.token })).status, 201);
  const base = `/v1/projects/${pid}/forms/push-form-test/submissions/uuid:520e7b86-1572-45b1-a89e-7da26ad1624e`;
  t.deepEqual((await f.server.request(`${base}/attachments`, { token: f.alice.token })).body, [{ name: '1556532531101.jpg', exists: false }]);
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
  const res = await submitOpenRosa(f.server, url, xml, { token: f.alice.token, files: [{ name: '1556532531101.jpg', data: jpeg, type: 'image/jpeg' }, { name: 'unexpected.txt', data: 'x' }] });
  t.is(res.status, 201);
  t.deepEqual((await f.server.request(`${base}/attachments`, { token: f.alice.token })).body, [{ name: '1556532531101.jpg', exists: true }]);
  const file = await fetch(`${f.server.url}${base}/attachments/1556532531101.jpg`, { headers: { authorization: `Bearer ${f.alice.token}` } });
  t.is(file.status, 200);
  t.is(file.headers.get('content-type'), 'image/jpeg');
  t.deepEqual(Buffer.from(await file.arrayBuffer()), jpeg);
  const etag = file.headers.get('etag')!;
  t.regex(etag, /^"[0-9a-f]{32}"$/);
  const cached = await f.server.request(`${base}/attachments/1556532531101.jpg`, { token: f.alice.token, headers: { 'if-none-match': etag } });
  t.is(cached.status, 304);
});

test('draft submissions go to the draft through the test token, and vanish when the draft is published', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'drafts');
  const draft = await f.server.request(`/v1/projects/${pid}/forms`, { method: 'POST', token: f.alice.token,
    raw: (await import('./helpers.ts')).sampleForm('basic-one-question-v1'), headers: { 'content-type': 'application/xml' } });
  t.is(draft.status, 200);
  const { rows: [d] } = await f.server.sql.query(`select fd.draft_token from app_public.form_defs fd join app_public.forms fo on fo.draft_def_id = fd.id where fo.project_id = $1`, [pid]);
  t.truthy(d?.draft_token);
  const url = `/v1/test/${d.draft_token}/projects/${pid}/forms/one_question/draft/submission`;
  const res = await submitOpenRosa(f.server, url, sampleSubmission('basic-one-question-v1/original.xml'));
  t.is(res.status, 201);
  const list = await f.server.request(`/v1/projects/${pid}/forms/one_question/draft/submissions`, { token: f.alice.token });
  t.is(list.body.length, 1);
  const bad = await submitOpenRosa(f.server, `/v1/test/${'x'.repeat(64)}/projects/${pid}/forms/one_question/draft/submission`, sampleSubmission('basic-one-question-v1/original.xml'));
  t.is(bad.status, 404);
  const published = await f.server.request(`/v1/projects/${pid}/forms/one_question/draft/publish`, { method: 'POST', token: f.alice.token });
  t.is(published.status, 200);
  const { rows } = await f.server.sql.query(`select count(*)::int as n from app_public.submissions s join app_public.forms fo on fo.id = s.form_id where fo.project_id = $1`, [pid]);
  t.is(rows[0].n, 0);
});

test('two concurrent submissions with the same instanceID leave exactly one', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'race');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  const xml = sampleSubmission('basic-one-question-v1/original.xml');
  const results = await Promise.all(Array.from({ length: 6 }, () => submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, xml, { token: f.alice.token })));
  t.true(results.every((r) => r.status === 201));
  const { rows } = await f.server.sql.query(`select count(*)::int as n from app_public.submissions s join app_public.forms fo on fo.id = s.form_id where fo.project_id = $1`, [pid]);
  t.is(rows[0].n, 1);
});
