import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { createProject, createForm, submitOpenRosa, submitRest, sampleSubmission, formsDir } from './helpers.ts';

let f: Fixtures;
let projectId: number;
const id = 'uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d';
let base: string;
test.before(async () => {
  f = await withFixtures();
  projectId = await createProject(f.server, f.alice.token);
  await createForm(f.server, f.alice.token, projectId, 'basic-one-question-v1');
  base = `/v1/projects/${projectId}/forms/one_question/submissions`;
  const res = await submitRest(f.server, f.alice.token, projectId, 'one_question', sampleSubmission('basic-one-question-v1/original.xml'));
  if (res.status !== 200) throw new Error(res.text);
});
test.after.always(() => f?.server.close());

test('REST POST returns the Submission JSON; the same instanceID again is 409.3', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'rest');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  const res = await submitRest(f.server, f.alice.token, pid, 'one_question', sampleSubmission('basic-one-question-v1/original.xml'));
  t.is(res.status, 200);
  t.deepEqual(Object.keys(res.body).sort(), ['createdAt', 'currentVersion', 'deletedAt', 'deviceId', 'instanceId', 'reviewState', 'submitterId', 'updatedAt', 'userAgent']);
  t.deepEqual(Object.keys(res.body.currentVersion).sort(), ['createdAt', 'current', 'deviceId', 'instanceId', 'instanceName', 'submitterId', 'userAgent']);
  const again = await submitRest(f.server, f.alice.token, pid, 'one_question', sampleSubmission('basic-one-question-v1/original.xml'));
  t.is(again.status, 409);
  const other = await submitRest(f.server, f.alice.token, pid, 'other_form', sampleSubmission('basic-one-question-v1/original.xml'));
  t.is(other.status, 404);
  const json = await f.server.request(`/v1/projects/${pid}/forms/one_question/submissions`, { method: 'POST', token: f.alice.token, body: {} });
  t.is(json.status, 406);
});

test('a submission for another form than the URL names is 400.8', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'mismatch');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  await createForm(f.server, f.alice.token, pid, 'media-image-upload');
  const res = await submitRest(f.server, f.alice.token, pid, 'push-form-test', sampleSubmission('basic-one-question-v1/original.xml'));
  t.is(res.status, 400);
  t.is(res.body.code, 400.8);
});

test('extended listing carries submitter and attachment counts; chelsea (no role) gets 403.1', async (t) => {
  const res = await f.server.request(base, { token: f.alice.token, headers: { 'x-extended-metadata': 'true' } });
  t.is(res.status, 200);
  t.is(res.body[0].submitter.displayName, 'Alice');
  t.is(res.body[0].attachmentsExpected, 0);
  t.is(res.body[0].currentVersion.submitter.id, f.alice.id);
  const forbidden = await f.server.request(base, { token: f.chelsea.token });
  t.is(forbidden.status, 403);
  t.is(forbidden.body.code, 403.1);
  const missing = await f.server.request(`${base}/uuid:nope`, { token: f.alice.token });
  t.is(missing.status, 404);
});

test('review states: hasIssues, approved, rejected, edited; anything else 400; audited as submission.update', async (t) => {
  for (const state of ['hasIssues', 'approved', 'rejected', 'edited']) {
    const res = await f.server.request(`${base}/${id}`, { method: 'PATCH', token: f.alice.token, body: { reviewState: state } });
    t.is(res.status, 200);
    t.is(res.body.reviewState, state);
    t.truthy(res.body.updatedAt);
  }
  const bad = await f.server.request(`${base}/${id}`, { method: 'PATCH', token: f.alice.token, body: { reviewState: 'great' } });
  t.is(bad.status, 400);
  const audits = await f.server.request(`${base}/${id}/audits`, { token: f.alice.token });
  t.true(audits.body.filter((a: any) => a.action === 'submission.update').length >= 4);
  t.true(audits.body.some((a: any) => a.action === 'submission.create'));
});

test('comments: post and list', async (t) => {
  const posted = await f.server.request(`${base}/${id}/comments`, { method: 'POST', token: f.alice.token, body: { body: 'check the age' } });
  t.is(posted.status, 200);
  t.like(posted.body, { body: 'check the age', actorId: f.alice.id });
  const list = await f.server.request(`${base}/${id}/comments`, { token: f.alice.token, headers: { 'x-extended-metadata': 'true' } });
  t.is(list.body[0].body, 'check the age');
  t.is(list.body[0].actor.displayName, 'Alice');
});

test('delete hides a submission, ?deleted=true lists it, restore brings it back, resubmission while deleted is 409', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'deletion');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  const b = `/v1/projects/${pid}/forms/one_question/submissions`;
  await submitRest(f.server, f.alice.token, pid, 'one_question', sampleSubmission('basic-one-question-v1/original.xml'));
  t.deepEqual((await f.server.request(`${b}/${id}`, { method: 'DELETE', token: f.alice.token })).body, { success: true });
  t.is((await f.server.request(b, { token: f.alice.token })).body.length, 0);
  const deleted = await f.server.request(`${b}?deleted=true`, { token: f.alice.token });
  t.is(deleted.body.length, 1);
  t.truthy(deleted.body[0].deletedAt);
  t.is((await f.server.request(`${b}/${id}`, { token: f.alice.token })).status, 404);
  const resubmit = await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, sampleSubmission('basic-one-question-v1/original.xml'), { token: f.alice.token });
  t.is(resubmit.status, 409);
  t.deepEqual((await f.server.request(`${b}/${id}/restore`, { method: 'POST', token: f.alice.token })).body, { success: true });
  t.is((await f.server.request(`${b}/${id}`, { token: f.alice.token })).status, 200);
  // Deleted 31 days ago: the purge removes it.
  await f.server.request(`${b}/${id}`, { method: 'DELETE', token: f.alice.token });
  await f.server.sql.query(`update app_public.submissions set deleted_at = now() - interval '31 days' where instance_id = $1 and form_id in (select id from app_public.forms where project_id = $2)`, [id, pid]);
  await f.server.sql.query(`select graphile_worker.add_job('submissions__purge', '{}')`);
  await f.server.drainJobs();
  t.is((await f.server.request(`${b}?deleted=true`, { token: f.alice.token })).body.length, 0);
});

test('PUT replaces the data with a new version and needs a deprecatedID', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'put');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  const b = `/v1/projects/${pid}/forms/one_question/submissions`;
  await submitRest(f.server, f.alice.token, pid, 'one_question', sampleSubmission('basic-one-question-v1/original.xml'));
  const noDeprecated = await f.server.request(`${b}/${id}`, { method: 'PUT', token: f.alice.token, raw: sampleSubmission('basic-one-question-v1/original.xml'), headers: { 'content-type': 'application/xml' } });
  t.is(noDeprecated.status, 400);
  t.is(noDeprecated.body.code, 400.19);
  const res = await f.server.request(`${b}/${id}`, { method: 'PUT', token: f.alice.token, raw: sampleSubmission('basic-one-question-v1/edit-with-deprecatedID.xml'), headers: { 'content-type': 'application/xml' } });
  t.is(res.status, 200);
  t.is(res.body.currentVersion.instanceId, 'uuid:5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d');
  t.is((await f.server.request(`${b}/${id}/versions`, { token: f.alice.token })).body.length, 2);
});

test('attachments uploaded and cleared over REST, audited as submission.attachment.update', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'attachments');
  await createForm(f.server, f.alice.token, pid, 'media-image-upload');
  const b = `/v1/projects/${pid}/forms/push-form-test/submissions/uuid:520e7b86-1572-45b1-a89e-7da26ad1624e`;
  await submitRest(f.server, f.alice.token, pid, 'push-form-test', sampleSubmission('media-image-upload/collect-style.xml'));
  const up = await f.server.request(`${b}/attachments/1556532531101.jpg`, { method: 'POST', token: f.alice.token, raw: Buffer.from('jpeg!'), headers: { 'content-type': 'image/jpeg' } });
  t.deepEqual(up.body, { success: true });
  const file = await f.server.request(`${b}/attachments/1556532531101.jpg`, { token: f.alice.token });
  t.is(file.text, 'jpeg!');
  t.regex(file.headers.get('content-disposition') ?? '', /^inline/);
  const unexpected = await f.server.request(`${b}/attachments/other.jpg`, { method: 'POST', token: f.alice.token, raw: Buffer.from('x'), headers: { 'content-type': 'image/jpeg' } });
  t.is(unexpected.status, 404);
  t.deepEqual((await f.server.request(`${b}/attachments/1556532531101.jpg`, { method: 'DELETE', token: f.alice.token })).body, { success: true });
  t.deepEqual((await f.server.request(`${b}/attachments`, { token: f.alice.token })).body, [{ name: '1556532531101.jpg', exists: false }]);
  t.is((await f.server.request(`${b}/attachments/1556532531101.jpg`, { token: f.alice.token })).status, 404);
  const audits = await f.server.request(`/v1/audits?action=submission.attachment.update`, { token: f.alice.token });
  t.true(audits.body.length >= 2);
});

test('draft test submissions take and clear their expected files over REST, as published ones do', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'draft attachments');
  const xml = fs.readFileSync(path.join(formsDir, 'media-image-upload.xml'));
  t.is((await f.server.request(`/v1/projects/${pid}/forms?ignoreWarnings=true`, { method: 'POST', token: f.alice.token, raw: xml, headers: { 'content-type': 'application/xml' } })).status, 200);
  const d = `/v1/projects/${pid}/forms/push-form-test/draft/submissions`;
  const created = await f.server.request(d, { method: 'POST', token: f.alice.token, raw: sampleSubmission('media-image-upload/collect-style.xml'), headers: { 'content-type': 'application/xml' } });
  t.is(created.status, 200);
  const b = `${d}/uuid:520e7b86-1572-45b1-a89e-7da26ad1624e`;
  t.is((await f.server.request(`${b}.xml`, { token: f.alice.token })).headers.get('content-type'), 'application/xml; charset=utf-8');
  const up = await f.server.request(`${b}/attachments/1556532531101.jpg`, { method: 'POST', token: f.alice.token, raw: Buffer.from('jpeg!'), headers: { 'content-type': 'image/jpeg' } });
  t.is(up.status, 200);
  t.deepEqual(up.body, { success: true });
  t.is((await f.server.request(`${b}/attachments/1556532531101.jpg`, { token: f.alice.token })).text, 'jpeg!');
  t.is((await f.server.request(`${b}/attachments/other.jpg`, { method: 'POST', token: f.alice.token, raw: Buffer.from('x'), headers: { 'content-type': 'image/jpeg' } })).body.code, 404.1);
  t.is((await f.server.request(`${b}/attachments/1556532531101.jpg`, { method: 'POST', token: f.bob.token, raw: Buffer.from('x'), headers: { 'content-type': 'image/jpeg' } })).body.code, 403.1);
  const cleared = await f.server.request(`${b}/attachments/1556532531101.jpg`, { method: 'DELETE', token: f.alice.token });
  t.deepEqual(cleared.body, { success: true });
  t.deepEqual((await f.server.request(`${b}/attachments`, { token: f.alice.token })).body, [{ name: '1556532531101.jpg', exists: false }]);
  // The published form has no such submission: the draft's stays the draft's.
  t.is((await f.server.request(`/v1/projects/${pid}/forms/push-form-test/submissions/uuid:520e7b86-1572-45b1-a89e-7da26ad1624e/attachments/1556532531101.jpg`,
    { method: 'POST', token: f.alice.token, raw: Buffer.from('x'), headers: { 'content-type': 'image/jpeg' } })).status, 404);
});

test('submission XML is served as application/xml', async (t) => {
  const res = await f.server.request(`${base}/${id}.xml`, { token: f.alice.token });
  t.is(res.status, 200);
  t.is(res.headers.get('content-type'), 'application/xml; charset=utf-8');
  t.true(res.text.includes('<age>42</age>'));
});

test('versions carry formVersion (plain and extended); extended submission audits carry the actee', async (t) => {
  const pid = await createProject(f.server, f.alice.token, 'versions');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  const b = `/v1/projects/${pid}/forms/one_question/submissions/${id}`;
  await submitRest(f.server, f.alice.token, pid, 'one_question', sampleSubmission('basic-one-question-v1/original.xml'));
  await f.server.request(b, { method: 'PUT', token: f.alice.token, raw: sampleSubmission('basic-one-question-v1/edit-with-deprecatedID.xml'), headers: { 'content-type': 'application/xml' } });
  const { body: form } = await f.server.request(`/v1/projects/${pid}/forms/one_question`, { token: f.alice.token });
  const plain = await f.server.request(`${b}/versions`, { token: f.alice.token });
  t.deepEqual(plain.body.map((v: any) => Object.keys(v).sort()), [0, 1].map(() =>
    ['createdAt', 'current', 'deviceId', 'formVersion', 'instanceId', 'instanceName', 'submitterId', 'userAgent']));
  t.deepEqual(plain.body.map((v: any) => v.formVersion), [form.version, form.version]);
  const ext = await f.server.request(`${b}/versions`, { token: f.alice.token, headers: { 'x-extended-metadata': 'true' } });
  t.is(ext.body[0].formVersion, form.version);
  t.is(ext.body[0].submitter.displayName, 'Alice');
  const one = await f.server.request(`${b}/versions/${id}`, { token: f.alice.token });
  t.like(one.body, { instanceId: id, current: false, formVersion: form.version });
  const oneExt = await f.server.request(`${b}/versions/${id}`, { token: f.alice.token, headers: { 'x-extended-metadata': 'true' } });
  t.like(oneExt.body, { instanceId: id, formVersion: form.version, submitter: { id: f.alice.id } });

  const audits = await f.server.request(`${b}/audits`, { token: f.alice.token, headers: { 'x-extended-metadata': 'true' } });
  t.is(audits.status, 200);
  t.true(audits.body.length >= 2);
  for (const a of audits.body) {
    t.like(a.actee, { projectId: pid, xmlFormId: 'one_question' });
    t.like(a.actor, { id: f.alice.id, displayName: 'Alice' });
  }
  const plainAudits = await f.server.request(`${b}/audits`, { token: f.alice.token });
  t.false('actee' in plainAudits.body[0]);
});

test('submitters lists who submitted; the Enketo edit URL is a clear 501 without Enketo', async (t) => {
  const submitters = await f.server.request(`${base}/submitters`, { token: f.alice.token });
  t.deepEqual(submitters.body.map((a: any) => a.displayName), ['Alice']);
  const edit = await f.server.request(`${base}/${id}/edit`, { token: f.alice.token });
  t.is(edit.status, 501);
  const keys = await f.server.request(`${base}/keys`, { token: f.alice.token });
  t.deepEqual(keys.body, []);
});

// Every sample submission whose form is valid is accepted (each in a project of its own: some share instanceIDs).
const sampleDir = path.join(formsDir, 'submissions');
for (const formName of fs.readdirSync(sampleDir)) {
  for (const file of fs.readdirSync(path.join(sampleDir, formName)).filter((x) => x.endsWith('.xml') && !x.startsWith('wrong-') && !x.includes('deprecated'))) {
    test(`sample ${formName}/${file} is accepted over OpenRosa`, async (t) => {
      const pid = await createProject(f.server, f.alice.token, `${formName} ${file}`);
      await createForm(f.server, f.alice.token, pid, formName);
      const isManifest = file === 'submission-manifest.xml';
      const files: { name: string; data: Buffer; type?: string }[] = isManifest
        ? fs.readdirSync(path.join(sampleDir, formName)).filter((x) => x.endsWith('.enc')).map((x) => ({ name: x, data: sampleSubmission(`${formName}/${x}`) }))
        : fs.readdirSync(path.join(sampleDir, formName)).filter((x) => x.endsWith('.csv')).map((x) => ({ name: x, data: sampleSubmission(`${formName}/${x}`), type: 'text/csv' }));
      if (formName === 'media-image-upload') files.push({ name: '1556532531101.jpg', data: Buffer.from([0xff, 0xd8, 0xff]), type: 'image/jpeg' });
      // Briefcase exports carry version="2018012404" for forms that have no version; like Central, a version the
      // server does not know is 404.6, so these are sent as Collect would have sent them (without it).
      let xml = sampleSubmission(`${formName}/${file}`).toString('utf8');
      if (xml.includes(' version="2018012404"')) {
        const unknown = await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, xml, { token: f.alice.token });
        t.is(unknown.status, 404);
        xml = xml.replace(' version="2018012404"', '');
      }
      const res = await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, xml, { token: f.alice.token, files });
      t.is(res.status, 201, res.text);
      const list = await f.server.request(`/v1/projects/${pid}/forms`, { token: f.alice.token });
      const xmlFormId = list.body[0].xmlFormId;
      const subs = await f.server.request(`/v1/projects/${pid}/forms/${encodeURIComponent(xmlFormId)}/submissions`, { token: f.alice.token, headers: { 'x-extended-metadata': 'true' } });
      t.is(subs.body.length, 1);
      t.is(subs.body[0].attachmentsPresent, subs.body[0].attachmentsExpected);
      const csv = await f.server.request(`/v1/projects/${pid}/forms/${encodeURIComponent(xmlFormId)}/submissions.csv`, { token: f.alice.token });
      t.is(csv.status, 200);
      t.is(csv.text.trim().split('\n').length >= 2, true);
    });
  }
}
