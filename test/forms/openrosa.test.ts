import test from 'ava';
import crypto from 'node:crypto';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { readForm, createProject, upload, createAppUser } from './helpers.ts';

let f: Fixtures;
let projectId: number;
test.before(async () => {
  f = await withFixtures();
  projectId = await createProject(f.server, f.alice.token);
});
test.after.always(() => f?.server.close());

const md5 = (data: string | Buffer) => crypto.createHash('md5').update(data).digest('hex');
const tags = (xml: string, tag: string) => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]);

test.serial('an App User lists exactly its assigned open forms, downloads them and their media with matching hashes', async (t) => {
  const token = f.alice.token;
  for (const name of ['basic-one-question-v1', 'external-csv-and-geojson-map', 'geo-geoshape'])
    t.is((await upload(f.server, token, projectId, readForm(name))).status, 200, name);
  const withMedia = `/v1/projects/${projectId}/forms/select-one-from-map-external-files`;
  const csv = 'name,label,geometry\na,A,0 0\n';
  const geojson = '{"type":"FeatureCollection","features":[]}';
  await f.server.request(`${withMedia}/draft/attachments/geodataCsv.csv`, { method: 'POST', token, raw: csv, headers: { 'content-type': 'text/csv' } });
  await f.server.request(`${withMedia}/draft/attachments/geodataGeoJson.geojson`, { method: 'POST', token, raw: geojson, headers: { 'content-type': 'application/geo+json' } });
  for (const id of ['one_question', 'select-one-from-map-external-files', 'geoshape_test'])
    t.is((await f.server.request(`/v1/projects/${projectId}/forms/${id}/draft/publish`, { method: 'POST', token })).status, 200);

  const appUser = await createAppUser(f.server, token, projectId, 'Collect phone');
  for (const id of ['one_question', 'select-one-from-map-external-files'])
    t.is((await f.server.request(`/v1/projects/${projectId}/forms/${id}/assignments/app-user/${appUser.id}`, { method: 'POST', token })).status, 200);

  const keyBase = `/v1/key/${appUser.token}/projects/${projectId}`;
  const list = await f.server.request(`${keyBase}/formList`, { headers: { 'x-openrosa-version': '1.0' } });
  t.is(list.status, 200);
  t.is(list.headers.get('x-openrosa-version'), '1.0');
  t.truthy(list.headers.get('date'));
  t.regex(list.headers.get('content-type') ?? '', /^text\/xml/);
  t.deepEqual(tags(list.text, 'formID'), ['one_question', 'select-one-from-map-external-files']);
  t.deepEqual(tags(list.text, 'name'), ['One Question', 'select-one-from-map-external-files']);
  const urls = tags(list.text, 'downloadUrl');
  t.is(urls[0], `${f.server.url}${keyBase}/forms/one_question.xml`);
  const manifests = tags(list.text, 'manifestUrl');
  t.deepEqual(manifests, [`${f.server.url}${keyBase}/forms/select-one-from-map-external-files/manifest`]);

  // Each form's hash is the md5 of the bytes served.
  const hashes = tags(list.text, 'hash');
  for (const [i, url] of urls.entries()) {
    const form = await fetch(url);
    t.is(form.status, 200);
    t.is(`md5:${md5(Buffer.from(await form.arrayBuffer()))}`, hashes[i]);
  }
  const manifest = await fetch(manifests[0], { headers: { 'x-openrosa-version': '1.0' } });
  t.is(manifest.headers.get('x-openrosa-version'), '1.0');
  const manifestXml = await manifest.text();
  t.deepEqual(tags(manifestXml, 'filename'), ['geodataCsv.csv', 'geodataGeoJson.geojson']);
  const fileHashes = tags(manifestXml, 'hash');
  for (const [i, url] of tags(manifestXml, 'downloadUrl').entries()) {
    const file = await fetch(url);
    t.is(file.status, 200, url);
    t.is(`md5:${md5(Buffer.from(await file.arrayBuffer()))}`, fileHashes[i]);
  }

  // Closing a form takes it off the list; the admin sees every open form.
  await f.server.request(`/v1/projects/${projectId}/forms/one_question`, { method: 'PATCH', token, body: { state: 'closing' } });
  const after = await f.server.request(`${keyBase}/formList`);
  t.deepEqual(tags(after.text, 'formID'), ['select-one-from-map-external-files']);
  const admin = await f.server.request(`/v1/projects/${projectId}/formList`, { token });
  t.deepEqual(tags(admin.text, 'formID'), ['geoshape_test', 'select-one-from-map-external-files']);
  const anonymous = await f.server.request(`/v1/projects/${projectId}/formList`);
  t.is(anonymous.status, 401);
});

test.serial('draft testing endpoints under /v1/test/:token serve the draft without other credentials', async (t) => {
  const token = f.alice.token;
  const created = await upload(f.server, token, projectId, readForm('external-xml-cascading-select'));
  const draftToken = created.body.draftToken;
  const base = `/v1/test/${draftToken}/projects/${projectId}/forms/external-select-xml/draft`;
  const list = await f.server.request(`${base}/formList`);
  t.is(list.status, 200);
  t.deepEqual(tags(list.text, 'downloadUrl'), [`${f.server.url}/v1/test/${draftToken}/projects/${projectId}/forms/external-select-xml/draft.xml`]);
  t.deepEqual(tags(list.text, 'manifestUrl'), [`${f.server.url}${base}/manifest`]);
  const xml = await f.server.request(`${base}.xml`);
  t.is(xml.text, readForm('external-xml-cascading-select'));
  await f.server.request(`/v1/projects/${projectId}/forms/external-select-xml/draft/attachments/external-data.xml`,
    { method: 'POST', token, raw: '<root/>', headers: { 'content-type': 'application/xml' } });
  const manifest = await f.server.request(`${base}/manifest`);
  t.deepEqual(tags(manifest.text, 'hash'), [`md5:${md5('<root/>')}`]);
  t.is((await f.server.request(`${base}/attachments/external-data.xml`)).text, '<root/>');
  const wrong = await f.server.request(`/v1/test/${'x'.repeat(64)}/projects/${projectId}/forms/external-select-xml/draft/formList`);
  t.is(wrong.status, 404);
  t.regex(wrong.text, /draft testing endpoint/);
  // Once published, the draft token stops working.
  await f.server.request(`/v1/projects/${projectId}/forms/external-select-xml/draft/publish`, { method: 'POST', token });
  t.is((await f.server.request(`${base}.xml`)).status, 404);
});

test.serial('a generated 250-question form and the 65 KB vaccination form upload and publish with all their fields', async (t) => {
  const questions = Array.from({ length: 250 }, (_, i) => i);
  const types = ['string', 'int', 'decimal', 'date', 'geopoint'];
  const xml = `<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">
  <h:head><h:title>Big</h:title><model>
    <instance><data id="big" orx:version="1">${questions.map((i) => `<q${i}/>`).join('')}<meta><instanceID/></meta></data></instance>
    ${questions.map((i) => `<bind nodeset="/data/q${i}" type="${types[i % types.length]}"/>`).join('\n    ')}
    <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
  </model></h:head>
  <h:body>${questions.map((i) => `<input ref="/data/q${i}"><label>Question ${i}</label></input>`).join('')}</h:body>
</h:html>`;
  for (const [i, source] of [xml, readForm('realistic-child-vaccination-large')].entries()) {
    const res = await upload(f.server, f.alice.token, projectId, source, '?publish=true');
    t.is(res.status, 200, res.text);
    if (i === 0) t.is((await f.server.request(`/v1/projects/${projectId}/forms/big/fields`, { token: f.alice.token })).body.length, 252);
  }
});
