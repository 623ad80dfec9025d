// CSV export options through HTTP: $filter on submission metadata, deletedFields; and the smaller submission
// gaps: clearing an older version's attachment, comments audited as comment.create.
import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { createProject, createForm, submitRest, sampleForm, submitOpenRosa } from './helpers.ts';

let f: Fixtures;
let pid: number;
test.before(async () => {
  f = await withFixtures();
  pid = await createProject(f.server, f.alice.token, 'options');
  await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
  for (const [id, age] of [['uuid:a', '1'], ['uuid:b', '2'], ['uuid:c', '3']]) {
    await submitRest(f.server, f.alice.token, pid, 'one_question',
      `<data id="one_question" orx:version="1" xmlns:orx="http://openrosa.org/xforms"><age>${age}</age><meta><instanceID>${id}</instanceID></meta></data>`);
  }
  await f.server.request(`/v1/projects/${pid}/forms/one_question/submissions/uuid:b`, { method: 'PATCH', token: f.alice.token, body: { reviewState: 'approved' } });
});
test.after.always(() => f?.server.close());

async function csv(query: string) {
  const res = await fetch(`${f.server.url}/v1/projects/${pid}/forms/one_question/submissions.csv${query}`,
    { headers: { authorization: `Bearer ${f.alice.token}` } });
  const text = await res.text();
  return { status: res.status, text, lines: text.trim().split('\n'), etag: res.headers.get('etag') };
}
const keys = (lines: string[]) => lines.slice(1).map((l) => l.split(',')[2]);

test.serial('$filter narrows CSV exports by submission metadata', async (t) => {
  t.deepEqual(keys((await csv('')).lines), ['uuid:c', 'uuid:b', 'uuid:a']);
  t.deepEqual(keys((await csv(`?$filter=${encodeURIComponent("__system/reviewState eq 'approved'")}`)).lines), ['uuid:b']);
  t.deepEqual(keys((await csv(`?$filter=${encodeURIComponent('__system/reviewState eq null')}`)).lines), ['uuid:c', 'uuid:a']);
  t.deepEqual(keys((await csv(`?$filter=${encodeURIComponent(`__system/submitterId eq ${f.alice.id} and __id ne 'uuid:a'`)}`)).lines), ['uuid:c', 'uuid:b']);
  t.deepEqual(keys((await csv(`?$filter=${encodeURIComponent('year(__system/submissionDate) lt 2000')}`)).lines), []);
  t.deepEqual(keys((await csv(`?$filter=${encodeURIComponent('__system/submissionDate le now()')}`)).lines).length, 3);
  const bad = await csv(`?$filter=${encodeURIComponent("__system/reviewState eq 'approved' and")}`);
  t.is(bad.status, 400);
  t.is(JSON.parse(bad.text).code, 400.18);
  const field = await csv(`?$filter=${encodeURIComponent('age eq 1')}`);
  t.is(field.status, 501);
  t.is(JSON.parse(field.text).code, 501.5);
  // Filters make different exports: different ETags.
  t.not((await csv('')).etag, (await csv(`?$filter=${encodeURIComponent("__id eq 'uuid:a'")}`)).etag);
  const zip = await fetch(`${f.server.url}/v1/projects/${pid}/forms/one_question/submissions.csv.zip?$filter=${encodeURIComponent("__id eq 'uuid:a'")}`,
    { headers: { authorization: `Bearer ${f.alice.token}` } });
  t.is(zip.status, 200);
});

test.serial('deletedFields=true brings back the fields only older versions had, with their data', async (t) => {
  const draft = await f.server.request(`/v1/projects/${pid}/forms/one_question/draft?ignoreWarnings=true`,
    { method: 'POST', token: f.alice.token, raw: sampleForm('basic-one-question-v2-no-meta'), headers: { 'content-type': 'application/xml' } });
  t.is(draft.status, 200);
  t.is((await f.server.request(`/v1/projects/${pid}/forms/one_question/draft/publish`, { method: 'POST', token: f.alice.token })).status, 200);
  const now = await csv('');
  t.true(now.lines[0].startsWith('SubmissionDate,age,KEY,'));
  const all = await csv('?deletedFields=true');
  t.true(all.lines[0].startsWith('SubmissionDate,age,meta-instanceID,KEY,'));
  t.regex(all.lines[3], /^[^,]+,1,uuid:a,uuid:a,/);
  t.not(now.etag, all.etag);
});

test.serial('DELETE …/versions/:versionId/attachments/:name clears that version\'s file only', async (t) => {
  const p2 = await createProject(f.server, f.alice.token, 'media');
  await createForm(f.server, f.alice.token, p2, 'media-image-upload');
  const form = sampleForm('media-image-upload');
  const imageField = /nodeset="\/data\/([^"]+)" type="binary"/.exec(form)![1].split('/');
  const wrap = (inner: string) => imageField.slice(0, -1).reduceRight((acc, g) => `<${g}>${acc}</${g}>`, inner);
  const leaf = imageField[imageField.length - 1];
  const original = `<data id="push-form-test">${wrap(`<${leaf}>a.jpg</${leaf}>`)}<meta><instanceID>uuid:m1</instanceID></meta></data>`;
  const edited = `<data id="push-form-test">${wrap(`<${leaf}>a.jpg</${leaf}>`)}<meta><instanceID>uuid:m2</instanceID><deprecatedID>uuid:m1</deprecatedID></meta></data>`;
  const url = `/v1/projects/${p2}/submission`;
  t.is((await submitOpenRosa(f.server, url, original, { token: f.alice.token, files: [{ name: 'a.jpg', data: 'jpeg', type: 'image/jpeg' }] })).status, 201);
  t.is((await submitOpenRosa(f.server, url, edited, { token: f.alice.token })).status, 201);
  const base = `/v1/projects/${p2}/forms/push-form-test/submissions/uuid:m1`;
  const cleared = await f.server.request(`${base}/versions/uuid:m1/attachments/a.jpg`, { method: 'DELETE', token: f.alice.token });
  t.is(cleared.status, 200);
  t.deepEqual(cleared.body, { success: true });
  t.deepEqual((await f.server.request(`${base}/versions/uuid:m1/attachments`, { token: f.alice.token })).body, [{ name: 'a.jpg', exists: false }]);
  t.deepEqual((await f.server.request(`${base}/versions/uuid:m2/attachments`, { token: f.alice.token })).body, [{ name: 'a.jpg', exists: true }]);
  t.is((await f.server.request(`${base}/versions/uuid:m1/attachments/nope.jpg`, { method: 'DELETE', token: f.alice.token })).status, 404);
  t.is((await f.server.request(`${base}/versions/uuid:m1/attachments/a.jpg`, { method: 'DELETE', token: f.bob.token })).status, 403);
  const audits = await f.server.request(`${base}/audits`, { token: f.alice.token });
  const update = audits.body.find((a: { action: string; details: { submissionDefId: number } }) => a.action === 'submission.attachment.update');
  t.truthy(update);
  t.is(update.details.name, 'a.jpg');
  t.is(update.details.newBlobId, null);
});

test.serial('comments are audited as comment.create on the submission', async (t) => {
  const base = `/v1/projects/${pid}/forms/one_question/submissions/uuid:c`;
  t.is((await f.server.request(`${base}/comments`, { method: 'POST', token: f.alice.token, body: { body: 'looks fine' } })).status, 200);
  const audits = await f.server.request(`${base}/audits`, { token: f.alice.token });
  const comment = audits.body.find((a: { action: string }) => a.action === 'comment.create');
  t.truthy(comment);
  t.is(comment.actorId, f.alice.id);
  t.is(comment.details.instanceId, 'uuid:c');
});
