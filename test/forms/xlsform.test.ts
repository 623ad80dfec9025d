// XLSForm uploads through a pyxform-http–compatible converter. The converter is a test double (an HTTP server on
// 127.0.0.1 answering as pyxform-http's POST /api/v1/convert does); the database is real.
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, type TestServer } from '../helpers/server.ts';
import { readForm, createProject } from './helpers.ts';

const xlsx = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
const xls = 'application/vnd.ms-excel';
const oneQuestion = readForm('basic-one-question-v1');
const withItemsets = oneQuestion.replace('</instance>', '</instance>\n            <instance id="itemsets" src="jr://file-csv/itemsets.csv"/>')
  .replace('id="one_question"', 'id="with_itemsets"');
const itemsetsCsv = 'list_name,name,label\ncities,a,A\n';

/** What the fake converter answers, chosen by a marker in the uploaded bytes. */
const answers: Record<string, { status: number; body: Record<string, unknown> }> = {
  'MARK-OK': { status: 200, body: { result: oneQuestion, itemsets: null, warnings: [] } },
  'MARK-V2': { status: 200, body: { result: oneQuestion.replace('orx:version="1"', 'orx:version="2"'), itemsets: null, warnings: [] } },
  'MARK-WARN': { status: 200, body: { result: oneQuestion.replace('id="one_question"', 'id="warned"'), itemsets: null,
    warnings: ['[row : 3] Question has no label'] } },
  'MARK-WARN-REMOVED': { status: 200, body: { result: oneQuestion.replace('<age/>', '').replace('orx:version="1"', 'orx:version="3"'),
    itemsets: null, warnings: ['[row : 2] Something to check'] } },
  'MARK-ITEMSETS': { status: 200, body: { result: withItemsets, itemsets: itemsetsCsv, warnings: [] } },
  'MARK-ERROR': { status: 400, body: { result: null, itemsets: null, warnings: null,
    error: "Unknown question type 'integr'." } },
};

let server: TestServer;
let converter: http.Server;
let token: string;
let projectId: number;
const received: { body: Buffer; fallback: string | undefined }[] = [];

test.before(async () => {
  converter = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ body, fallback: req.headers['x-xlsform-formid-fallback'] as string | undefined });
      const marker = Object.keys(answers).sort((a, b) => b.length - a.length).find((m) => body.includes(m));
      const answer = req.method === 'POST' && req.url === '/api/v1/convert' && marker ? answers[marker]
        : { status: 400, body: { error: 'unexpected request' } };
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify({ status: answer.status, ...answer.body }));
    });
  });
  await new Promise<void>((resolve) => converter.listen(0, '127.0.0.1', resolve));
  server = await startServer({ xlsformUrl: `http://127.0.0.1:${(converter.address() as AddressInfo).port}` });
  await server.createUser('alice@getodk.org', { admin: true, displayName: 'Alice' });
  token = await server.login('alice@getodk.org');
  projectId = await createProject(server, token, 'XLSForms');
});
test.after.always(async () => {
  await server?.close();
  if (converter.listening) await new Promise((resolve) => converter.close(resolve));
});

/** A fake spreadsheet: a zip signature, a marker for the converter, and bytes that are not UTF-8. */
const sheet = (marker: string) => Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.from(marker), Buffer.from([0xff, 0x00, 0xfe])]);
const post = (path: string, body: Buffer, type = xlsx, headers: Record<string, string> = {}) =>
  server.request(path, { method: 'POST', token, raw: body, headers: { 'content-type': type, ...headers } });
const formPath = (id: string) => `/v1/projects/${projectId}/forms/${id}`;

test.serial('an .xlsx upload is converted, and the original spreadsheet is served back as .xlsx for the form, draft and version', async (t) => {
  const file = sheet('MARK-OK');
  const res = await post(`/v1/projects/${projectId}/forms`, file, xlsx, { 'X-XlsForm-FormId-Fallback': 'my_form' });
  t.is(res.status, 200, res.text);
  t.like(res.body, { xmlFormId: 'one_question', version: '1', name: 'One Question', publishedAt: null });
  // The converter got the bytes as uploaded and the form id fallback.
  const call = received.at(-1)!;
  t.true(call.body.equals(file));
  t.is(call.fallback, 'my_form');
  // The XForm is what the converter returned; the spreadsheet comes back byte for byte.
  t.is((await server.request(`${formPath('one_question')}/draft.xml`, { token })).text, oneQuestion);
  const draftXlsx = await server.request(`${formPath('one_question')}/draft.xlsx`, { token });
  t.is(draftXlsx.status, 200);
  t.is(draftXlsx.headers.get('content-type'), xlsx);
  t.regex(draftXlsx.headers.get('content-disposition') ?? '', /filename="one_question\.xlsx"/);
  const download = async (path: string) => Buffer.from(await (await fetch(server.url + path, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer());
  t.true((await download(`${formPath('one_question')}/draft.xlsx`)).equals(file));
  t.is((await server.request(`${formPath('one_question')}/draft.xls`, { token })).status, 404);
  const extendedDraft = await server.request(`${formPath('one_question')}/draft`, { token, headers: { 'x-extended-metadata': 'true' } });
  t.is(extendedDraft.body.excelContentType, xlsx);

  t.is((await server.request(`${formPath('one_question')}/draft/publish`, { method: 'POST', token })).status, 200);
  t.true((await download(`${formPath('one_question')}.xlsx`)).equals(file));
  t.true((await download(`${formPath('one_question')}/versions/1.xlsx`)).equals(file));
  t.is((await server.request(`${formPath('one_question')}.xls`, { token })).status, 404);
  t.is((await server.request(`${formPath('one_question')}/versions/1.xls`, { token })).status, 404);

  // A new draft from another spreadsheet; the published version keeps its own.
  const v2 = sheet('MARK-V2');
  t.is((await post(`${formPath('one_question')}/draft`, v2)).status, 200);
  t.true((await download(`${formPath('one_question')}/draft.xlsx`)).equals(v2));
  t.true((await download(`${formPath('one_question')}/versions/1.xlsx`)).equals(file));
  // A draft uploaded as XML has no spreadsheet.
  t.is((await server.request(`${formPath('one_question')}/draft`, { method: 'POST', token, raw: oneQuestion.replace('orx:version="1"', 'orx:version="9"'),
    headers: { 'content-type': 'application/xml' } })).status, 200);
  t.is((await server.request(`${formPath('one_question')}/draft.xlsx`, { token })).status, 404);
});

test.serial('an .xls upload is stored with its own content type and served as .xls only', async (t) => {
  const file = sheet('MARK-ITEMSETS');
  const res = await post(`/v1/projects/${projectId}/forms?publish=true`, file, xls);
  t.is(res.status, 200, res.text);
  const got = await server.request(`${formPath('with_itemsets')}.xls`, { token });
  t.is(got.status, 200);
  t.is(got.headers.get('content-type'), xls);
  t.is((await server.request(`${formPath('with_itemsets')}.xlsx`, { token })).status, 404);
  // The converter's itemsets.csv became the expected itemsets.csv attachment.
  const attachments = await server.request(`${formPath('with_itemsets')}/attachments`, { token });
  t.like(attachments.body, [{ name: 'itemsets.csv', type: 'file', exists: true, blobExists: true, size: itemsetsCsv.length }]);
  const csv = await server.request(`${formPath('with_itemsets')}/attachments/itemsets.csv`, { token });
  t.is(csv.text, itemsetsCsv);
  t.regex(csv.headers.get('content-type') ?? '', /^text\/csv/);
});

test.serial('converter warnings are 400.16 (with any workflow warnings) unless ?ignoreWarnings=true', async (t) => {
  const warned = await post(`/v1/projects/${projectId}/forms`, sheet('MARK-WARN'));
  t.is(warned.status, 400);
  t.deepEqual(warned.body, {
    code: 400.16,
    message: 'The Form is valid, but with warnings. Please check the warnings and if they are acceptable resubmit with ?ignoreWarnings=true',
    details: { warnings: { xlsFormWarnings: ['[row : 3] Question has no label'] } },
  });
  t.is((await server.request(formPath('warned'), { token })).status, 404, 'nothing was created');
  const accepted = await post(`/v1/projects/${projectId}/forms?ignoreWarnings=true`, sheet('MARK-WARN'));
  t.is(accepted.status, 200);
  t.is(accepted.body.xmlFormId, 'warned');

  // A new draft that also drops a published field: both kinds of warning come back together.
  const both = await post(`${formPath('one_question')}/draft`, sheet('MARK-WARN-REMOVED'));
  t.is(both.status, 400);
  t.deepEqual(both.body.details, { warnings: {
    xlsFormWarnings: ['[row : 2] Something to check'],
    workflowWarnings: [{ type: 'structureChanged', details: ['age'] }],
  } });
  t.is((await post(`${formPath('one_question')}/draft?ignoreWarnings=true`, sheet('MARK-WARN-REMOVED'))).status, 200);
});

test.serial('a converter error is 400.15 with the converter\'s error in details; nothing is stored', async (t) => {
  const { rows: [before] } = await server.sql.query('select count(*)::int as n from app_public.blobs');
  const res = await post(`/v1/projects/${projectId}/forms`, sheet('MARK-ERROR'));
  t.is(res.status, 400);
  t.deepEqual(res.body, {
    code: 400.15,
    message: 'The given XLSForm file was not valid. Please see the error details for more information.',
    details: { error: "Unknown question type 'integr'.", warnings: null },
  });
  const { rows: [after] } = await server.sql.query('select count(*)::int as n from app_public.blobs');
  t.is(after.n, before.n);
});

test.serial('XLSForm uploads need form.create first, and an unreachable converter is 502.2', async (t) => {
  await server.createUser('bob@getodk.org', { displayName: 'Bob' });
  const bob = await server.login('bob@getodk.org');
  const calls = received.length;
  const denied = await server.request(`/v1/projects/${projectId}/forms`, { method: 'POST', token: bob, raw: sheet('MARK-OK'), headers: { 'content-type': xlsx } });
  t.is(denied.status, 403);
  t.is(received.length, calls, 'the converter was not called for an unauthorized upload');

  await new Promise((resolve) => converter.close(resolve));
  const res = await post(`/v1/projects/${projectId}/forms`, sheet('MARK-OK'));
  t.is(res.status, 502);
  t.deepEqual(res.body, { code: 502.2, message: 'The XLSForm conversion service could not be contacted.' });
});
