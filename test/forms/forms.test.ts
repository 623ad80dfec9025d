import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { parseXForm } from '../../server/formats/xform.ts';
import { readForm, formNames, refused, createProject, upload } from './helpers.ts';

let f: Fixtures;
let projectId: number;
test.before(async () => {
  f = await withFixtures();
  projectId = await createProject(f.server, f.alice.token);
});
test.after.always(() => f?.server.close());

const formPath = (id: string) => `/v1/projects/${projectId}/forms/${encodeURIComponent(id)}`;

test.serial('every usable corpus form uploads, publishes and shows its fields; the others are refused with Central\'s code', async (t) => {
  const project = await createProject(f.server, f.alice.token, 'Corpus');
  const seen = new Set<string>();
  for (const name of formNames) {
    const xml = readForm(name);
    const res = await upload(f.server, f.alice.token, project, xml, '?publish=true&ignoreWarnings=true');
    if (name in refused) {
      t.is(res.status, 400, name);
      t.is(res.body.code, refused[name], name);
      continue;
    }
    const parsed = parseXForm(xml);
    if (seen.has(parsed.xmlFormId)) { // a second version of a form id already uploaded
      t.is(res.status, 409, name);
      t.is(res.body.code, 409.3, name);
      continue;
    }
    seen.add(parsed.xmlFormId);
    t.is(res.status, 200, `${name}: ${res.text}`);
    t.is(res.body.xmlFormId, parsed.xmlFormId);
    t.truthy(res.body.publishedAt, name);
    const fields = await f.server.request(`/v1/projects/${project}/forms/${encodeURIComponent(parsed.xmlFormId)}/fields`, { token: f.alice.token });
    t.is(fields.status, 200, name);
    t.deepEqual(fields.body, parsed.fields.map((x) => ({ name: x.name, path: x.path, type: x.type,
      binary: x.binary ? true : null, selectMultiple: x.selectMultiple ? true : null })), name);
  }
  t.is(seen.size, 35);
});

test.serial('creating a form returns Central\'s Form shape, as a draft by default', async (t) => {
  const xml = readForm('basic-one-question-v1');
  const res = await upload(f.server, f.alice.token, projectId, xml);
  t.is(res.status, 200);
  t.deepEqual(Object.keys(res.body).sort(), ['createdAt', 'draftToken', 'enketoId', 'enketoOnceId', 'hash', 'keyId', 'name',
    'projectId', 'publishedAt', 'sha', 'sha256', 'state', 'updatedAt', 'version', 'webformsEnabled', 'xmlFormId']);
  t.like(res.body, { projectId, xmlFormId: 'one_question', name: 'One Question', version: '1', state: 'open', publishedAt: null, keyId: null });
  t.regex(res.body.draftToken, /^[A-Za-z0-9!$]{64}$/);
  const crypto = await import('node:crypto');
  t.is(res.body.hash, crypto.createHash('md5').update(xml).digest('hex'));
  t.is(res.body.sha256, crypto.createHash('sha256').update(xml).digest('hex'));
  // A draft-only form is not published: the published XML does not exist yet, the draft XML is byte-exact.
  const draftXml = await f.server.request(`${formPath('one_question')}/draft.xml`, { token: f.alice.token });
  t.is(draftXml.status, 200);
  t.is(draftXml.text, xml);
  t.regex(draftXml.headers.get('content-type') ?? '', /^application\/xml/);
  const again = await upload(f.server, f.alice.token, projectId, xml);
  t.is(again.status, 409);
  t.deepEqual(again.body, { code: 409.3, message: `A resource already exists with projectId,xmlFormId value(s) of ${projectId},one_question.`,
    details: { fields: ['projectId', 'xmlFormId'], values: [projectId, 'one_question'] } });
});

test.serial('publishing, new drafts, version conflicts (409.6) and the versions list', async (t) => {
  const token = f.alice.token;
  t.deepEqual((await f.server.request(`${formPath('one_question')}/draft/publish`, { method: 'POST', token })).body, { success: true });
  const published = await f.server.request(formPath('one_question'), { token });
  t.truthy(published.body.publishedAt);
  t.is(published.body.draftToken, null);
  // An empty POST copies the published version into a new draft; publishing it unchanged conflicts.
  t.is((await f.server.request(`${formPath('one_question')}/draft`, { method: 'POST', token })).status, 200);
  const conflict = await f.server.request(`${formPath('one_question')}/draft/publish`, { method: 'POST', token });
  t.is(conflict.status, 409);
  t.is(conflict.body.code, 409.6);
  t.is(conflict.body.message, 'You tried to publish the form \'one_question\' with version \'1\', but a published form has already existed in this project with those identifiers.');
  const renamed = await f.server.request(`${formPath('one_question')}/draft/publish?version=2`, { method: 'POST', token });
  t.is(renamed.status, 200);
  const xml = await f.server.request(`${formPath('one_question')}.xml`, { token });
  t.is(parseXForm(xml.text).version, '2');
  const versions = await f.server.request(`${formPath('one_question')}/versions`, { token, headers: { 'x-extended-metadata': 'true' } });
  t.deepEqual(versions.body.map((v: any) => v.version), ['2', '1']);
  t.is(versions.body[0].publishedBy.displayName, 'Alice');
  const v1 = await f.server.request(`${formPath('one_question')}/versions/1.xml`, { token });
  t.is(v1.text, readForm('basic-one-question-v1'));
  t.is((await f.server.request(`${formPath('one_question')}/versions/1/fields`, { token })).body.length, 3);
  t.is((await f.server.request(`${formPath('one_question')}/versions/9`, { token })).status, 404);
  // A draft of another form id is refused.
  const other = await f.server.request(`${formPath('one_question')}/draft`, { method: 'POST', token, raw: readForm('calculate-simple'), headers: { 'content-type': 'application/xml' } });
  t.is(other.status, 400);
  t.is(other.body.code, 400.8);
  // Deleting the draft of a published form works once; a form never published cannot lose its draft (409.7).
  await f.server.request(`${formPath('one_question')}/draft`, { method: 'POST', token });
  t.is((await f.server.request(`${formPath('one_question')}/draft`, { method: 'DELETE', token })).status, 200);
  t.is((await f.server.request(`${formPath('one_question')}/draft`, { method: 'DELETE', token })).status, 404);
  await upload(f.server, token, projectId, readForm('calculate-simple'));
  const neverPublished = await f.server.request(`${formPath('calculate-simple')}/draft`, { method: 'DELETE', token });
  t.is(neverPublished.body.code, 409.7);
  const audits = await f.server.sql.query(
    `select action from app_public.audits where action like 'form.%' order by id`);
  t.true(['form.create', 'form.update.publish', 'form.update.draft.set', 'form.update.draft.delete'].every((a) => audits.rows.some((r) => r.action === a)));
});

test.serial('structural changes warn with 400.16 unless ignoreWarnings; changing a field type is 400.17', async (t) => {
  const token = f.alice.token;
  const v1 = readForm('datatypes-all-scalar-and-geo');
  t.is((await upload(f.server, token, projectId, v1, '?publish=true')).status, 200);
  const post = (xml: string, q = '') => f.server.request(`${formPath('all-data-types')}/draft${q}`,
    { method: 'POST', token, raw: xml, headers: { 'content-type': 'text/xml' } });
  const removed = v1.replace('<some_barcode/>', '');
  const warned = await post(removed);
  t.is(warned.status, 400);
  t.is(warned.body.code, 400.16);
  t.deepEqual(warned.body.details, { warnings: { workflowWarnings: [{ type: 'structureChanged', details: ['some_barcode'] }] } });
  t.is((await post(removed, '?ignoreWarnings=true')).status, 200);
  const retyped = v1.replace('nodeset="/data/some_string" type="string"', 'nodeset="/data/some_string" type="int"');
  const conflict = await post(retyped.replace('version=', 'x='));
  t.is(conflict.body.code, 400.17);
  t.deepEqual(conflict.body.details, { path: '/some_string', type: 'string' });
});

test.serial('old entity spec versions warn (400.16) and unsupported ones are 400.25', async (t) => {
  const token = f.alice.token;
  const old = await upload(f.server, token, projectId, readForm('entities-2022.1-create-trees-spec-example'));
  t.is(old.status, 400);
  t.is(old.body.code, 400.16);
  t.is(old.body.details.warnings.workflowWarnings[0].type, 'oldEntityVersion');
  const bad = await upload(f.server, token, projectId, readForm('entities-invalid-future-version-2452.2'));
  t.deepEqual(bad.body, { code: 400.25, message: 'The entity definition within the form is invalid. Entities specification version [2452.2.0] is not supported.',
    details: { reason: 'Entities specification version [2452.2.0] is not supported.' } });
  const notXml = await upload(f.server, token, projectId, 'nope');
  t.deepEqual(notXml.body, { code: 400.1, message: 'Could not parse the given data (4 chars) as xml.', details: { format: 'xml', rawLength: 4 } });
});

test.serial('XLSForm uploads need a configured converter (501.3)', async (t) => {
  const res = await upload(f.server, f.alice.token, projectId, Buffer.from('PK fake'), '',
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
  t.is(res.status, 501);
  t.is(res.body.code, 501.3);
});

test.serial('state changes, extended metadata, soft delete and restore', async (t) => {
  const token = f.alice.token;
  const patched = await f.server.request(formPath('one_question'), { method: 'PATCH', token, body: { state: 'closing' } });
  t.is(patched.body.state, 'closing');
  const bad = await f.server.request(formPath('one_question'), { method: 'PATCH', token, body: { state: 'nope' } });
  t.is(bad.body.code, 400.8);
  const ext = await f.server.request(formPath('one_question'), { token, headers: { 'x-extended-metadata': 'true' } });
  t.like(ext.body, { submissions: 0, reviewStates: { received: 0, hasIssues: 0, edited: 0 }, lastSubmission: null, publicLinks: 0, entityRelated: false });
  t.is(ext.body.createdBy.displayName, 'Alice');
  const list = await f.server.request(`/v1/projects/${projectId}/forms`, { token });
  t.true(list.body.some((x: any) => x.xmlFormId === 'one_question'));
  t.deepEqual((await f.server.request(formPath('one_question'), { method: 'DELETE', token })).body, { success: true });
  t.is((await f.server.request(formPath('one_question'), { token })).status, 404);
  const trash = await f.server.request(`/v1/projects/${projectId}/forms?deleted=true`, { token });
  t.is(trash.body.length, 1);
  t.truthy(trash.body[0].deletedAt);
  const numericId = trash.body[0].id;
  const warned = await upload(f.server, token, projectId, readForm('basic-one-question-v1'));
  t.deepEqual(warned.body.details, { warnings: { workflowWarnings: [{ type: 'deletedFormExists', details: { xmlFormId: 'one_question' } }] } });
  t.deepEqual((await f.server.request(`/v1/projects/${projectId}/forms/${numericId}/restore`, { method: 'POST', token })).body, { success: true });
  t.is((await f.server.request(formPath('one_question'), { token })).status, 200);
  const actions = (await f.server.sql.query(`select action from app_public.audits order by id`)).rows.map((r) => r.action);
  t.true(actions.includes('form.delete') && actions.includes('form.restore') && actions.includes('form.update'));
});

test.serial('people without rights get 403.1, unknown forms 404.1', async (t) => {
  t.is((await f.server.request(formPath('one_question'), { token: f.bob.token })).body.code, 403.1);
  t.is((await f.server.request(formPath('nothing-here'), { token: f.bob.token })).body.code, 404.1);
  t.is((await upload(f.server, f.bob.token, projectId, readForm('geo-geoshape'))).body.code, 403.1);
  t.is((await f.server.request(`/v1/projects/${projectId}/forms`, { token: f.bob.token })).body.code, 403.1);
  // A project viewer reads published forms but not drafts.
  await f.server.request(`/v1/projects/${projectId}/assignments/viewer/${f.bob.id}`, { method: 'POST', token: f.alice.token });
  t.is((await f.server.request(formPath('one_question'), { token: f.bob.token })).status, 200);
  t.is((await f.server.request(`${formPath('calculate-simple')}/draft`, { token: f.bob.token })).body.code, 403.1);
  t.is((await f.server.request(formPath('one_question'), { method: 'PATCH', token: f.bob.token, body: { state: 'open' } })).body.code, 403.1);
});

test.serial('draft attachments: list, upload with content type, download, clear; they carry over to new drafts', async (t) => {
  const token = f.alice.token;
  await upload(f.server, token, projectId, readForm('external-csv-and-geojson-map'));
  const id = 'select-one-from-map-external-files';
  const list = await f.server.request(`${formPath(id)}/draft/attachments`, { token });
  t.deepEqual(list.body, [
    { name: 'geodataCsv.csv', type: 'file', exists: false, blobExists: false, datasetExists: false, hash: null, updatedAt: null },
    { name: 'geodataGeoJson.geojson', type: 'file', exists: false, blobExists: false, datasetExists: false, hash: null, updatedAt: null }]);
  const csv = 'name,label\na,A\n';
  const up = await f.server.request(`${formPath(id)}/draft/attachments/geodataCsv.csv`, { method: 'POST', token, raw: csv, headers: { 'content-type': 'text/csv' } });
  t.is(up.status, 200);
  t.like(up.body, { name: 'geodataCsv.csv', exists: true, blobExists: true, size: csv.length });
  const crypto = await import('node:crypto');
  t.is(up.body.hash, crypto.createHash('md5').update(csv).digest('hex'));
  const got = await f.server.request(`${formPath(id)}/draft/attachments/geodataCsv.csv`, { token });
  t.is(got.text, csv);
  t.regex(got.headers.get('content-type') ?? '', /^text\/csv/);
  t.is((await f.server.request(`${formPath(id)}/draft/attachments/unknown.csv`, { method: 'POST', token, raw: 'x', headers: { 'content-type': 'text/csv' } })).status, 404);
  t.is((await f.server.request(`${formPath(id)}/draft/attachments/geodataGeoJson.geojson`, { method: 'DELETE', token })).status, 404);
  // Publishing keeps the file; a new draft carries it over.
  await f.server.request(`${formPath(id)}/draft/publish`, { method: 'POST', token });
  t.is((await f.server.request(`${formPath(id)}/attachments/geodataCsv.csv`, { token })).text, csv);
  await f.server.request(`${formPath(id)}/draft`, { method: 'POST', token });
  const carried = await f.server.request(`${formPath(id)}/draft/attachments`, { token });
  t.true(carried.body[0].blobExists);
  t.deepEqual((await f.server.request(`${formPath(id)}/draft/attachments/geodataCsv.csv`, { method: 'DELETE', token })).body, { success: true });
  t.false((await f.server.request(`${formPath(id)}/draft/attachments`, { token })).body[0].exists);
  const audit = await f.server.sql.query(`select details from app_public.audits where action = 'form.attachment.update' order by id`);
  t.is(audit.rows.length, 2);
  t.is(audit.rows[0].details.name, 'geodataCsv.csv');
});

test.serial('form assignments and public links', async (t) => {
  const token = f.alice.token;
  t.deepEqual((await f.server.request(`${formPath('one_question')}/assignments/formfill/${f.chelsea.id}`, { method: 'POST', token })).body, { success: true });
  const list = await f.server.request(`${formPath('one_question')}/assignments`, { token });
  t.deepEqual(list.body, [{ actorId: f.chelsea.id, roleId: 8 }]);
  t.is((await f.server.request(`${formPath('one_question')}/assignments/8`, { token })).body[0].displayName, 'Chelsea');
  t.is((await f.server.request(formPath('one_question'), { token: f.chelsea.token })).status, 200);
  t.deepEqual((await f.server.request(`${formPath('one_question')}/assignments/formfill/${f.chelsea.id}`, { method: 'DELETE', token })).body, { success: true });
  t.is((await f.server.request(formPath('one_question'), { token: f.chelsea.token })).status, 403);

  const created = await f.server.request(`${formPath('one_question')}/public-links`, { method: 'POST', token, body: { displayName: 'Survey link', once: false } });
  t.is(created.status, 200);
  t.like(created.body, { type: 'public_link', displayName: 'Survey link', once: false, deletedAt: null });
  t.regex(created.body.token, /^[A-Za-z0-9!$]{64}$/);
  const viaLink = await f.server.request(`${formPath('one_question')}?st=${encodeURIComponent(created.body.token)}`);
  t.is(viaLink.status, 200);
  t.is((await f.server.request(formPath('one_question'), { token, headers: { 'x-extended-metadata': 'true' } })).body.publicLinks, 1);
  const links = await f.server.request(`${formPath('one_question')}/public-links`, { token, headers: { 'x-extended-metadata': 'true' } });
  t.is(links.body[0].createdBy.displayName, 'Alice');
  t.deepEqual((await f.server.request(`${formPath('one_question')}/public-links/${created.body.id}`, { method: 'DELETE', token })).body, { success: true });
  t.is((await f.server.request(`${formPath('one_question')}?st=${encodeURIComponent(created.body.token)}`)).status, 401);
});

test.serial('extended metadata shows publishNotes (null when none) to those who may update the form, and who published a version', async (t) => {
  const token = f.alice.token;
  const pid = await createProject(f.server, token, 'Publish notes');
  t.is((await upload(f.server, token, pid, readForm('basic-one-question-v1'), '?publish=true')).status, 200);
  const form = `/v1/projects/${pid}/forms/one_question`;
  const ext = { 'x-extended-metadata': 'true' };
  const details = await f.server.request(form, { token, headers: ext });
  t.true('publishNotes' in details.body);
  t.is(details.body.publishNotes, null);
  const version1 = await f.server.request(`${form}/versions/1`, { token, headers: ext });
  t.is(version1.status, 200);
  t.like(version1.body, { version: '1', publishNotes: null, publishedBy: { id: f.alice.id, displayName: 'Alice' } });
  t.false('publishedBy' in (await f.server.request(`${form}/versions/1`, { token })).body);

  await f.server.request(`${form}/draft`, { method: 'POST', token });
  const published = await f.server.request(`${form}/draft/publish?version=2`, { method: 'POST', token, headers: { 'x-action-notes': 'Fixed the age question' } });
  t.is(published.status, 200);
  t.is((await f.server.request(form, { token, headers: ext })).body.publishNotes, 'Fixed the age question');
  const versions = await f.server.request(`${form}/versions`, { token, headers: ext });
  t.deepEqual(versions.body.map((v: any) => [v.version, v.publishNotes, v.publishedBy.displayName]),
    [['2', 'Fixed the age question', 'Alice'], ['1', null, 'Alice']]);
  t.like((await f.server.request(`${form}/versions/2`, { token, headers: ext })).body, { publishNotes: 'Fixed the age question', publishedBy: { id: f.alice.id } });

  // A viewer reads the form's extended metadata without the notes.
  await f.server.request(`/v1/projects/${pid}/assignments/viewer/${f.chelsea.id}`, { method: 'POST', token });
  const viewer = await f.server.request(form, { token: f.chelsea.token, headers: ext });
  t.is(viewer.status, 200);
  t.false('publishNotes' in viewer.body);
});
