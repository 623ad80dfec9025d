// Related datasets of a form version: …/dataset-diff (published) and …/draft/dataset-diff (what publishing creates).
import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { readForm, createProject, upload } from './helpers.ts';

let f: Fixtures;
let projectId: number;
test.before(async () => {
  f = await withFixtures();
  projectId = await createProject(f.server, f.alice.token, 'Dataset diffs');
  await f.server.request(`/v1/projects/${projectId}/assignments/viewer/${f.chelsea.id}`, { method: 'POST', token: f.alice.token });
});
test.after.always(() => f?.server.close());

const diff = (xmlFormId: string, draft: boolean, token = f.alice.token) =>
  f.server.request(`/v1/projects/${projectId}/forms/${xmlFormId}${draft ? '/draft' : ''}/dataset-diff`, { token });

test.serial('a draft\'s diff marks the datasets and properties publishing will create; the published diff lists every published property', async (t) => {
  t.is((await upload(f.server, f.alice.token, projectId, readForm('entities-2024.1-create-people'))).status, 200);
  t.deepEqual((await diff('one_question_entity', true)).body,
    [{ name: 'people', isNew: true, properties: [{ name: 'full_name', isNew: true, inForm: true }] }]);
  t.deepEqual((await diff('one_question_entity', false)).body, [], 'never published: no published diff');

  await f.server.request(`/v1/projects/${projectId}/forms/one_question_entity/draft/publish`, { method: 'POST', token: f.alice.token });
  t.deepEqual((await diff('one_question_entity', false)).body, [{ name: 'people', properties: [{ name: 'full_name', inForm: true }] }]);
  t.is((await diff('one_question_entity', true)).status, 404, 'no draft');

  // A property added to the dataset, which this form does not fill, comes first with inForm false.
  t.is((await f.server.request(`/v1/projects/${projectId}/datasets/people/properties`, { method: 'POST', token: f.alice.token, body: { name: 'age' } })).status, 200);
  t.deepEqual((await diff('one_question_entity', false)).body,
    [{ name: 'people', properties: [{ name: 'age', inForm: false }, { name: 'full_name', inForm: true }] }]);

  // A draft of another form writing to the existing dataset: nothing new.
  t.is((await upload(f.server, f.alice.token, projectId, readForm('entities-2024.1-update-people'))).status, 200);
  t.deepEqual((await diff('one_question_entity_update', true)).body, [{ name: 'people', isNew: false, properties: [
    { name: 'age', isNew: false, inForm: false }, { name: 'full_name', isNew: false, inForm: true }] }]);
});

test.serial('a form writing two datasets lists each with its own properties, in field order', async (t) => {
  t.is((await upload(f.server, f.alice.token, projectId, readForm('entities-2025.1-multi-list-households-members'))).status, 200);
  t.deepEqual((await diff('household_members_entities', true)).body, [
    { name: 'members', isNew: true, properties: [{ name: 'phone', isNew: true, inForm: true }, { name: 'hhid', isNew: true, inForm: true }] },
    { name: 'households', isNew: true, properties: [{ name: 'hhid', isNew: true, inForm: true }, { name: 'geometry', isNew: true, inForm: true }] },
  ]);
});

test.serial('forms without entities have empty diffs; the diffs need form.update', async (t) => {
  t.is((await upload(f.server, f.alice.token, projectId, readForm('basic-one-question-v1'), '?publish=true')).status, 200);
  t.deepEqual((await diff('one_question', false)).body, []);
  for (const draft of [false, true]) {
    const res = await diff('one_question_entity', draft, f.chelsea.token);
    t.is(res.status, 403);
    t.is(res.body.code, 403.1);
    t.is((await diff('one_question_entity', draft, f.bob.token)).status, 403);
  }
  t.is((await diff('no_such_form', false)).body.code, 404.1);
});
