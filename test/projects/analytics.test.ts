// The usage report preview's form, submission and dataset metrics, computed from real data: forms (repeat,
// geopoint, client audit, a reused xmlFormId), submissions (approved, commented, edited, from an App User with a
// device id and client audit, from a Public Link) and an entity list fed by a submission, the API and a bulk upload.
import test from 'ava';
import crypto from 'node:crypto';
import { withProjects, keyPath, type ProjectFixtures } from './fixtures.ts';
import { submitOpenRosa, submitRest, createForm } from '../submissions/helpers.ts';
import { entityForm, entitySubmission, publishForm, submit } from '../entities/helpers.ts';

let f: ProjectFixtures;
let preview: any;

const surveyForm = `<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa">
  <h:head><h:title>Survey</h:title>
    <model>
      <instance><data id="survey" version="1"><location/><people jr:template=""><name/></people><meta><instanceID/><audit/></meta></data></instance>
      <bind nodeset="/data/location" type="geopoint"/>
      <bind nodeset="/data/people/name" type="string"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
      <bind nodeset="/data/meta/audit" type="binary"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/location"><label>Where</label></input>
    <repeat nodeset="/data/people"><input ref="/data/people/name"><label>Name</label></input></repeat>
  </h:body>
</h:html>`;

const simpleForm = `<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
  <h:head><h:title>Simple</h:title>
    <model><instance><data id="simple"><age/><meta><instanceID/></meta></data></instance>
      <bind nodeset="/data/age" type="int"/><bind nodeset="/data/meta/instanceID" type="string"/></model>
  </h:head>
  <h:body><input ref="/data/age"><label>Age</label></input></h:body>
</h:html>`;

function surveySubmission(id: string, { deprecated, audit }: { deprecated?: string; audit?: string } = {}) {
  return `<data id="survey" version="1"><location>12.5 -3.25 100 5</location><people><name>Ann</name></people>`
    + `<people><name>Bo</name></people><meta>${deprecated ? `<deprecatedID>${deprecated}</deprecatedID>` : ''}`
    + `<instanceID>${id}</instanceID>${audit ? `<audit>${audit}</audit>` : ''}</meta></data>`;
}

const clientAudit = 'event,node,start,end\nform start,,1700000000000,\nquestion,/data/location,1700000001000,1700000002000\n';

test.before(async () => {
  f = await withProjects();
  const { server, alice, projectA } = f;
  const p = `/v1/projects/${projectA}`;
  const ok = async (res: Promise<{ status: number; text: string }>, what: string, status = 200) => {
    const r = await res;
    if (r.status !== status) throw new Error(`${what}: ${r.status} ${r.text}`);
    return r;
  };

  // Forms: the survey (repeat, geopoint, client audit, web forms), a form deleted and uploaded again under the
  // same xmlFormId (then closing), and an entity registration form plus its follow-up form.
  await createForm(server, alice.token, projectA, surveyForm);
  await ok(server.request(`${p}/forms/survey`, { method: 'PATCH', token: alice.token, body: { webformsEnabled: true } }), 'webforms');
  await createForm(server, alice.token, projectA, simpleForm);
  await ok(server.request(`${p}/forms/simple`, { method: 'DELETE', token: alice.token }), 'delete simple');
  await createForm(server, alice.token, projectA, simpleForm);
  await ok(server.request(`${p}/forms/simple`, { method: 'PATCH', token: alice.token, body: { state: 'closing' } }), 'closing');
  await publishForm(server, alice.token, projectA, entityForm('entities-2024.1-create-people'));
  await publishForm(server, alice.token, projectA, entityForm('entities-2024.1-update-people'));

  // Submissions: by a web user (approved; commented then edited), an App User (device id, client audit) and a Public Link.
  await ok(submitRest(server, alice.token, projectA, 'survey', surveySubmission('uuid:s1')), 's1');
  await ok(server.request(`${p}/forms/survey/submissions/uuid:s1`, { method: 'PATCH', token: alice.token, body: { reviewState: 'approved' } }), 'approve');
  await ok(submitRest(server, alice.token, projectA, 'survey', surveySubmission('uuid:s2')), 's2');
  await ok(server.request(`${p}/forms/survey/submissions/uuid:s2/comments`, { method: 'POST', token: alice.token, body: { body: 'Check Bo' } }), 'comment');
  await ok(submitOpenRosa(server, `${p}/submission`, surveySubmission('uuid:s2-fixed', { deprecated: 'uuid:s2' }), { token: alice.token }), 'edit', 201);
  await ok(server.request(`${p}/forms/survey/assignments/app-user/${f.appUser.id}`, { method: 'POST', token: alice.token }), 'assign app user');
  await ok(submitOpenRosa(server, keyPath(f.appUser.token, `${p}/submission?deviceID=collect:abc123`),
    surveySubmission('uuid:s3', { audit: 'audit.csv' }), { files: [{ name: 'audit.csv', data: clientAudit, type: 'text/csv' }] }), 'app user', 201);
  const link = await ok(server.request(`${p}/forms/survey/public-links`, { method: 'POST', token: alice.token, body: { displayName: 'Link' } }), 'link');
  await ok(server.request(keyPath((link as any).body.token, `${p}/forms/survey/submissions`),
    { method: 'POST', raw: surveySubmission('uuid:s4'), headers: { 'content-type': 'application/xml' } }), 'public link');

  // Entities: one from a submission (by Dana, a Data Collector), two through the API (one with a geometry,
  // one then updated) and two from a bulk upload.
  await submit(server, f.dana.token, projectA, 'one_question_entity', entitySubmission('entities-2024.1-create-people', 'create.xml'));
  const people = `${p}/datasets/people`;
  await ok(server.request(`${people}/properties`, { method: 'POST', token: alice.token, body: { name: 'geometry' } }), 'geometry property');
  const apiUuid = crypto.randomUUID();
  await ok(server.request(`${people}/entities`, { method: 'POST', token: alice.token, body: { uuid: apiUuid, label: 'Api', data: { full_name: 'Api' } } }), 'api entity');
  await ok(server.request(`${people}/entities`, { method: 'POST', token: alice.token,
    body: { uuid: crypto.randomUUID(), label: 'Here', data: { geometry: '12.5 -3.25 0 0' } } }), 'geo entity');
  await ok(server.request(`${people}/entities/${apiUuid}?baseVersion=1`, { method: 'PATCH', token: alice.token, body: { data: { full_name: 'Api 2' } } }), 'update');
  await ok(server.request(`${people}/entities`, { method: 'POST', token: alice.token,
    body: { entities: [{ label: 'Bulk 1', data: { full_name: 'B1' } }, { label: 'Bulk 2', data: { full_name: 'B2' } }], source: { name: 'more.csv', size: 40 } } }), 'bulk');

  const res = await server.request('/v1/analytics/preview', { token: alice.token });
  if (res.status !== 200) throw new Error(`preview: ${res.status} ${res.text}`);
  preview = res.body;
});
test.after.always(() => f?.server.close());

const projectA = () => preview.projects.find((p: { id: number }) => p.id === f.projectA);
const recentAndTotal = (n: number) => ({ recent: n, total: n });

test('form metrics count repeats, geo fields, client audits, states, web forms, reused ids and entity forms', (t) => {
  const { forms } = projectA();
  // Five forms as Central counts them: the deleted "simple" too. Two received a submission recently.
  t.deepEqual(forms.num_forms, { total: 5, recent: 2 });
  t.deepEqual(forms.num_forms_with_repeats, recentAndTotal(1));
  t.deepEqual(forms.num_forms_with_geospatial, recentAndTotal(1));
  t.deepEqual(forms.num_forms_with_audits, recentAndTotal(1));
  t.deepEqual(forms.num_forms_with_encryption, recentAndTotal(0));
  t.is(forms.num_forms_webforms_enabled, 1);
  t.is(forms.num_reused_form_ids, 1);
  t.deepEqual(forms.num_open_forms, { total: 4, recent: 2 });
  t.deepEqual(forms.num_closing_forms, { total: 1, recent: 0 });
  t.deepEqual(forms.num_closed_forms, recentAndTotal(0));
  t.like(forms, { num_entity_create_forms: 1, num_entity_update_forms: 1, num_repeat_entity_create_forms: 0,
    num_repeat_entity_update_forms: 0, num_entity_create_update_forms: 0 });
});

test('submission metrics count review states, edits, comments and who submitted', (t) => {
  const { submissions } = projectA();
  t.deepEqual(submissions, {
    num_submissions_received: recentAndTotal(5),
    num_submissions_approved: recentAndTotal(1),
    num_submissions_has_issues: recentAndTotal(0),
    num_submissions_rejected: recentAndTotal(0),
    num_submissions_edited: recentAndTotal(1),
    num_submissions_with_edits: recentAndTotal(1),
    num_submissions_with_comments: recentAndTotal(1),
    num_submissions_from_app_users: recentAndTotal(1),
    num_submissions_from_public_links: recentAndTotal(1),
    // Alice's two and Dana's entity registration.
    num_submissions_from_web_users: recentAndTotal(3),
  });
});

test('user metrics count device ids and Public Links that submitted', (t) => {
  const { users } = projectA();
  t.deepEqual(users.num_device_ids, recentAndTotal(1));
  t.deepEqual(users.num_public_access_links, recentAndTotal(1));
  t.deepEqual(users.num_app_users, recentAndTotal(1));
});

test('dataset metrics count entities by source, updates, properties, geometry and linked forms', (t) => {
  const { datasets } = projectA();
  t.is(datasets.length, 1);
  t.true(Number.isInteger(datasets[0].id));
  t.deepEqual(datasets[0], {
    id: datasets[0].id,
    num_properties: 2,
    num_entities: recentAndTotal(5),
    num_entities_with_geometry: recentAndTotal(1),
    // The registration and the follow-up form versions write to it; the follow-up form reads it as people.csv.
    num_creation_forms: 2,
    num_followup_forms: 1,
    num_failed_entities: recentAndTotal(0),
    num_entity_updates: recentAndTotal(1),
    num_entity_updates_sub: recentAndTotal(0),
    num_entity_updates_api: recentAndTotal(1),
    num_entities_updated: recentAndTotal(1),
    num_entity_conflicts: 0,
    num_entity_conflicts_resolved: 0,
    num_bulk_create_events: recentAndTotal(1),
    biggest_bulk_upload: 2,
    num_entity_creates_sub: recentAndTotal(1),
    num_entity_creates_api: recentAndTotal(2),
    num_entity_creates_bulk: recentAndTotal(2),
  });
});

test('a project without forms reports zeros and no datasets', (t) => {
  const b = preview.projects.find((p: { id: number }) => p.id === f.projectB);
  t.deepEqual(b.forms.num_forms, recentAndTotal(0));
  t.deepEqual(b.submissions.num_submissions_received, recentAndTotal(0));
  t.deepEqual(b.users.num_device_ids, recentAndTotal(0));
  t.deepEqual(b.datasets, []);
});

test('system metrics measure the biggest form, geo values, client audits, entity delays, datasets and blobs', async (t) => {
  const { system } = preview;
  // The form version with the most fields, groups and repeats not counted (meta/instanceID is).
  const forms = await f.server.request(`/v1/projects/${f.projectA}/forms`, { token: f.alice.token });
  const questions = await Promise.all(forms.body.map(async ({ xmlFormId }: { xmlFormId: string }) => {
    const fields = await f.server.request(`/v1/projects/${f.projectA}/forms/${xmlFormId}/fields`, { token: f.alice.token });
    return fields.body.filter((x: { type: string }) => !['structure', 'repeat'].includes(x.type)).length;
  }));
  t.is(forms.body.length, 4);
  t.is(system.num_questions_biggest_form, Math.max(...questions));
  // The survey's four live submissions each have a location.
  t.is(system.max_geo_per_form, 4);
  t.is(system.num_client_audit_attachments, 1);
  t.is(system.num_client_audit_attachments_failures, 0);
  t.is(system.num_client_audit_rows, 2);
  t.like(system, {
    num_offline_entity_branches: 0, num_offline_entity_interrupted_branches: 0,
    num_offline_entity_submissions_reprocessed: 0, num_offline_entity_submissions_force_processed: 0,
    max_entity_branch_delay: 0, num_owner_only_datasets: 0, num_datasets_with_geometry: 1, num_blob_files_on_s3: 0,
  });
  // One entity came from a submission: its delay is a non-negative number of seconds.
  t.is(typeof system.max_entity_submission_delay, 'number');
  t.true(system.max_entity_submission_delay >= 0);
  t.is(system.avg_entity_submission_delay, system.max_entity_submission_delay);
  // Five XForm uploads (the deleted one too), none from an XLSForm nor encrypted.
  t.is(system.num_xml_only_form_defs, 5);
  t.is(system.num_blob_files, 1);
});
