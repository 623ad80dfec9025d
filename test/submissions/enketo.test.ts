// Enketo integration through HTTP, against a small fake Enketo API on 127.0.0.1 (a test double of the
// external service): survey ids on publish and on drafts, form-links, and submission edit redirects.
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, withFixtures, type TestServer } from '../helpers/server.ts';
import { createProject, createForm, submitRest } from './helpers.ts';

interface Seen { path: string; auth: string | undefined; fields: URLSearchParams }

const seen: Seen[] = [];
let fake: http.Server;
let fakeUrl: string;
let server: TestServer;
let token: string;
let counter = 0;

test.before(async () => {
  fake = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c) => { text += c; });
    req.on('end', () => {
      const fields = new URLSearchParams(text);
      seen.push({ path: req.url ?? '', auth: req.headers.authorization, fields });
      res.setHeader('content-type', 'application/json');
      if (req.url === '/api/v2/survey/all') {
        counter += 1;
        res.statusCode = 201;
        res.end(JSON.stringify({ enketo_id: `enk${counter}`, single_once_url: `http://enketo.test/single/once${counter}`, code: 201 }));
      } else if (req.url === '/api/v2/instance') {
        if (fields.get('instance_id') === 'uuid:busy') {
          res.statusCode = 405;
          res.end(JSON.stringify({ message: 'Not allowed. Record is already being edited' }));
          return;
        }
        res.statusCode = 201;
        res.end(JSON.stringify({ edit_url: `http://enketo.test:8005/edit/i/enk1?instance_id=${fields.get('instance_id')}` }));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}/`;
  // The worker reads its settings from the environment, the app from its config.
  process.env.ENKETO_URL = fakeUrl;
  process.env.ENKETO_API_KEY = 'enketokey';
  process.env.FIELDBASE_BASE_URL = 'https://central.example';
  server = await startServer({ enketo: { url: fakeUrl, apiKey: 'enketokey' }, baseUrl: 'https://central.example' });
  await server.createUser('alice@getodk.org', { admin: true, displayName: 'Alice' });
  token = await server.login('alice@getodk.org');
});
test.after.always(async () => {
  await server?.close();
  fake?.close();
});

test.serial('publishing gets enketoId and enketoOnceId from Enketo (Basic auth, server_url, form_id); a draft gets its own enketoId', async (t) => {
  const pid = await createProject(server, token, 'enketo');
  await createForm(server, token, pid, 'basic-one-question-v1');
  await server.drainJobs();
  const create = seen.filter((s) => s.path === '/api/v2/survey/all');
  t.is(create.length, 1);
  t.is(create[0].auth, `Basic ${Buffer.from('enketokey:').toString('base64')}`);
  t.is(create[0].fields.get('server_url'), `https://central.example/v1/projects/${pid}`);
  t.is(create[0].fields.get('form_id'), 'one_question');
  const form = await server.request(`/v1/projects/${pid}/forms/one_question`, { token });
  t.is(form.body.enketoId, 'enk1');
  t.is(form.body.enketoOnceId, 'once1');

  // A draft is served to Enketo from its draft-testing URL.
  t.is((await server.request(`/v1/projects/${pid}/forms/one_question/draft`, { method: 'POST', token })).status, 200);
  await server.drainJobs();
  const draft = await server.request(`/v1/projects/${pid}/forms/one_question/draft`, { token });
  t.is(draft.body.enketoId, 'enk2');
  const last = seen.filter((s) => s.path === '/api/v2/survey/all').at(-1)!;
  t.is(last.fields.get('server_url'), `https://central.example/v1/test/${draft.body.draftToken}/projects/${pid}/forms/one_question/draft`);
  // The published form keeps its ids.
  t.is((await server.request(`/v1/projects/${pid}/forms/one_question`, { token })).body.enketoId, 'enk1');
});

test.serial('GET /v1/form-links/:enketoId/form gives the form by its Enketo ids; unknown ids are 404', async (t) => {
  const byId = await server.request('/v1/form-links/enk1/form', { token });
  t.is(byId.status, 200);
  t.is(byId.body.xmlFormId, 'one_question');
  t.is(byId.body.enketoId, 'enk1');
  t.is((await server.request('/v1/form-links/once1/form', { token })).body.xmlFormId, 'one_question');
  const draft = await server.request('/v1/form-links/enk2/form', { token });
  t.is(draft.body.enketoId, 'enk2');
  t.is(draft.body.publishedAt, null);
  t.is((await server.request('/v1/form-links/nope/form', { token })).status, 404);
  t.is((await server.request('/v1/form-links/enk1/form')).status, 403);
});

test.serial('…/submissions/:instanceId/edit redirects to the edit URL Enketo gives, moved onto this server', async (t) => {
  const { rows: [p] } = await server.sql.query(`select project_id from app_public.forms where enketo_id = 'enk1'`);
  const pid = p.project_id;
  const instance = '<data id="one_question" orx:version="1" xmlns:orx="http://openrosa.org/xforms"><age>3</age><meta><instanceID>uuid:e1</instanceID></meta></data>';
  t.is((await submitRest(server, token, pid, 'one_question', instance)).status, 200);
  const res = await fetch(`${server.url}/v1/projects/${pid}/forms/one_question/submissions/uuid:e1/edit`,
    { headers: { authorization: `Bearer ${token}` }, redirect: 'manual' });
  t.is(res.status, 302);
  t.is(res.headers.get('location'), 'https://central.example/edit/i/enk1?instance_id=uuid:e1');
  const call = seen.filter((s) => s.path === '/api/v2/instance').at(-1)!;
  t.is(call.fields.get('server_url'), `https://central.example/v1/projects/${pid}`);
  t.is(call.fields.get('form_id'), 'one_question');
  t.is(call.fields.get('instance'), instance);
  t.is(call.fields.get('return_url'), `https://central.example/#/projects/${pid}/forms/one_question/submissions/uuid%3Ae1`);

  const busy = '<data id="one_question" orx:version="1" xmlns:orx="http://openrosa.org/xforms"><age>4</age><meta><instanceID>uuid:busy</instanceID></meta></data>';
  await submitRest(server, token, pid, 'one_question', busy);
  const limited = await server.request(`/v1/projects/${pid}/forms/one_question/submissions/uuid:busy/edit`, { token });
  t.is(limited.status, 409);
  t.is(limited.body.code, 409.13);

  await server.request(`/v1/projects/${pid}/forms/one_question`, { method: 'PATCH', token, body: { state: 'closing' } });
  const closing = await server.request(`/v1/projects/${pid}/forms/one_question/submissions/uuid:e1/edit`, { token });
  t.is(closing.body.code, 409.12);
});

test.serial('without Enketo configured, editing answers 501.8 and forms carry null Enketo ids', async (t) => {
  const saved = process.env.ENKETO_URL;
  delete process.env.ENKETO_URL;
  const f = await withFixtures();
  try {
    const pid = await createProject(f.server, f.alice.token, 'no enketo');
    await createForm(f.server, f.alice.token, pid, 'basic-one-question-v1');
    await f.server.drainJobs();
    const form = await f.server.request(`/v1/projects/${pid}/forms/one_question`, { token: f.alice.token });
    t.is(form.body.enketoId, null);
    t.is(form.body.enketoOnceId, null);
    const instance = '<data id="one_question" orx:version="1"><age>3</age><meta><instanceID>uuid:x</instanceID></meta></data>';
    await submitRest(f.server, f.alice.token, pid, 'one_question', instance);
    const res = await f.server.request(`/v1/projects/${pid}/forms/one_question/submissions/uuid:x/edit`, { token: f.alice.token });
    t.is(res.status, 501);
    t.deepEqual(res.body, { code: 501.8, message: 'This ODK Central has not been configured to use Enketo. Please contact your server administrator.' });
    t.is((await f.server.request(`/v1/projects/${pid}/forms/one_question/submissions/uuid:nope/edit`, { token: f.alice.token })).status, 404);
  } finally {
    process.env.ENKETO_URL = saved;
    await f.server.close();
  }
});
