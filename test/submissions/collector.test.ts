// Submitters who cannot read submissions back still have their REST submissions kept.
import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { createProject, createForm, submitRest } from './helpers.ts';

let f: Fixtures;
let projectId: number;
test.before(async () => {
  f = await withFixtures();
  projectId = await createProject(f.server, f.alice.token);
  await createForm(f.server, f.alice.token, projectId, 'basic-one-question-v1');
  await f.server.request(`/v1/projects/${projectId}/assignments/formfill/${f.chelsea.id}`, { method: 'POST', token: f.alice.token });
});
test.after.always(() => f?.server.close());

test('a Data Collector\'s REST submission is stored and answered with success', async (t) => {
  const xml = '<data id="one_question" version="1"><age>7</age><meta><instanceID>uuid:collector-1</instanceID></meta></data>';
  const res = await submitRest(f.server, f.chelsea.token, projectId, 'one_question', xml);
  t.is(res.status, 200, res.text);
  const list = await f.server.request(`/v1/projects/${projectId}/forms/one_question/submissions`, { token: f.alice.token });
  t.true(list.body.some((s: any) => s.instanceId === 'uuid:collector-1'));
  t.is((await f.server.request(`/v1/projects/${projectId}/forms/one_question/submissions`, { token: f.chelsea.token })).status, 403);
});
