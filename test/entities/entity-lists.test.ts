// Entity lists delivered to Collect: a follow-up form's people.csv is linked to the people dataset, listed with
// datasetExists, offered in the OpenRosa manifest as an entityList whose hash is the md5 of the very bytes the
// download serves, filtered per actor (ownerOnly, accessFilter), with ETag/304; linking by PATCH on the draft.
import test from 'ava';
import crypto from 'node:crypto';
import { keyPath } from '../projects/fixtures.ts';
import { submitOpenRosa } from '../submissions/helpers.ts';
import { entityForm, entitySubmission, publishForm, withProjects, type ProjectFixtures } from './helpers.ts';

let f: ProjectFixtures;
let followUp: string;
let northUser: { id: number; token: string };
const ids = { bob: crypto.randomUUID(), dana: crypto.randomUUID(), app: crypto.randomUUID(), north: crypto.randomUUID() };

const md5 = (data: Buffer | string) => crypto.createHash('md5').update(data).digest('hex');
const tags = (xml: string, tag: string) => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]);
const people = () => `/v1/projects/${f.projectA}/datasets/people`;
const formPath = () => `/v1/projects/${f.projectA}/forms/${followUp}`;

/** A create-people submission for a new person (entity id and instanceID of our choosing). */
function personXml(entityId: string, name: string) {
  return entitySubmission('entities-2024.1-create-people', 'create.xml')
    .replace('4f3e2d1c-0b9a-4877-a665-544332211009', entityId)
    .replace(/<instanceID>[^<]*<\/instanceID>/, `<instanceID>uuid:${crypto.randomUUID()}</instanceID>`)
    .replaceAll('Shiv Roy', name);
}

async function submitAs(path: string, token: string | null, xml: string) {
  const res = await submitOpenRosa(f.server, path, xml, { token });
  if (res.status !== 201) throw new Error(`submitting: ${res.status} ${res.text}`);
  await f.server.drainJobs();
}

/** Fetches bytes exactly as served. */
async function download(path: string, token: string | null = null, headers: Record<string, string> = {}) {
  const res = await fetch(f.server.url + path, { headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

/** RFC 4180 records (quoted fields may hold commas, quotes and line breaks). */
function records(csv: Buffer): string[][] {
  const out: string[][] = [];
  let record: string[] = [];
  for (const m of csv.toString('utf8').matchAll(/("(?:[^"]|"")*"|[^,\n]*)(,|\n)/g)) {
    record.push(m[1].startsWith('"') ? m[1].slice(1, -1).replace(/""/g, '"') : m[1]);
    if (m[2] === '\n') { out.push(record); record = []; }
  }
  return out;
}
const names = (csv: Buffer) => records(csv).slice(1).map((r) => r[0]).sort();

/** The manifest's entity-list entry for people.csv, and the download it points at (followed as Collect would). */
async function manifestEntry(manifestPath: string, token: string | null = null) {
  const manifest = await f.server.request(manifestPath, { token, headers: { 'x-openrosa-version': '1.0' } });
  if (manifest.status !== 200) throw new Error(`manifest: ${manifest.status} ${manifest.text}`);
  const entry = /<mediaFile type="([^"]+)">([\s\S]*?)<\/mediaFile>/.exec(manifest.text)!;
  const url = tags(entry[2], 'downloadUrl')[0];
  const file = await download(url.slice(f.server.url.length), token);
  return { type: entry[1], hash: tags(entry[2], 'hash')[0], integrityUrl: tags(entry[2], 'integrityUrl')[0], url, file };
}

test.before(async () => {
  f = await withProjects();
  const registration = await publishForm(f.server, f.bob.token, f.projectA, entityForm('entities-2024.1-create-people'));
  followUp = await publishForm(f.server, f.bob.token, f.projectA, entityForm('entities-follow-up-uses-dataset-attachment'));
  const props = await f.server.request(`/v1/projects/${f.projectA}/actor-properties`, { method: 'POST', token: f.bob.token, body: { name: 'person' } });
  if (props.status !== 200) throw new Error(props.text);
  const north = await f.server.request(`/v1/projects/${f.projectA}/app-users`, { method: 'POST', token: f.bob.token,
    body: { displayName: 'North phone', properties: { person: 'Nora North' } } });
  northUser = { id: north.body.id, token: north.body.token };
  for (const actor of [f.appUser.id, northUser.id]) {
    for (const form of [followUp, registration]) {
      const res = await f.server.request(`/v1/projects/${f.projectA}/forms/${form}/assignments/app-user/${actor}`, { method: 'POST', token: f.bob.token });
      if (res.status !== 200) throw new Error(res.text);
    }
  }
  // One person created by each of: a manager (API), a data collector and two App Users (submissions).
  const created = await f.server.request(`${people()}/entities`, { method: 'POST', token: f.bob.token,
    body: { uuid: ids.bob, label: 'Bob, "the manager"', data: { full_name: 'Bob\nManager' } } });
  if (created.status !== 200) throw new Error(created.text);
  await submitAs(`/v1/projects/${f.projectA}/submission`, f.dana.token, personXml(ids.dana, 'Dana Collector'));
  await submitAs(keyPath(f.appUser.token, `/v1/projects/${f.projectA}/submission`), null, personXml(ids.app, 'Appy User'));
  await submitAs(keyPath(northUser.token, `/v1/projects/${f.projectA}/submission`), null, personXml(ids.north, 'Nora North'));
});
test.after.always(() => f?.server.close());

test.serial('a <dataset>.csv attachment is linked at publish and listed with datasetExists', async (t) => {
  const list = await f.server.request(`${formPath()}/attachments`, { token: f.bob.token });
  t.is(list.status, 200);
  t.like(list.body, [{ name: 'people.csv', type: 'file', exists: true, blobExists: false, datasetExists: true }]);
});

test.serial('an App User downloads the follow-up form\'s entity list: the manifest hash is the md5 of the bytes served', async (t) => {
  const base = keyPath(f.appUser.token, `/v1/projects/${f.projectA}`);
  const list = await f.server.request(`${base}/formList`, { headers: { 'x-openrosa-version': '1.0' } });
  t.deepEqual(tags(list.text, 'manifestUrl'), [`${f.server.url}${base}/forms/${followUp}/manifest`]);
  const entry = await manifestEntry(`${base}/forms/${followUp}/manifest`);
  t.is(entry.type, 'entityList');
  t.is(entry.url, `${f.server.url}${base}/forms/${followUp}/attachments/people.csv`);
  t.is(entry.integrityUrl, `${f.server.url}${base}/datasets/people/integrity`);
  t.is(entry.file.status, 200);
  t.is(entry.hash, `md5:${md5(entry.file.bytes)}`);
  t.regex(entry.file.headers.get('content-type')!, /^text\/csv/);
  t.regex(entry.file.headers.get('content-disposition')!, /filename="people\.csv"/);
  t.is(entry.file.headers.get('etag'), `"${md5(entry.file.bytes)}"`);
  const lines = records(entry.file.bytes);
  t.deepEqual(lines[0], ['name', 'label', '__version', 'full_name']);
  // Everyone's entities (no filter yet), oldest first; CSV quoting of commas, quotes and line breaks.
  t.deepEqual(names(entry.file.bytes), Object.values(ids).sort());
  t.true(entry.file.bytes.toString().startsWith(`name,label,__version,full_name\n${ids.bob},"Bob, ""the manager""",1,"Bob\nManager"\n`));
  t.deepEqual(lines.find((r) => r[0] === ids.app), [ids.app, 'Appy User', '1', 'Appy User']);
  t.deepEqual(lines.find((r) => r[0] === ids.bob), [ids.bob, 'Bob, "the manager"', '1', 'Bob\nManager']);
  // The integrity URL works with the same credentials.
  const integrity = await f.server.request(`${entry.integrityUrl.slice(f.server.url.length)}?id=${ids.app}`);
  t.regex(integrity.text, new RegExp(`<entity id="${ids.app}">\\s*<deleted>false</deleted>`));
});

test.serial('the entity list answers If-None-Match with 304 until an entity changes', async (t) => {
  const path = `${formPath()}/attachments/people.csv`;
  const first = await download(path, f.bob.token);
  const etag = first.headers.get('etag')!;
  // The published version's own path serves the same list.
  const version = await download(`${formPath()}/versions/1/attachments/people.csv`, f.bob.token);
  t.is(version.headers.get('etag'), etag);
  t.deepEqual(version.bytes, first.bytes);
  const again = await download(path, f.bob.token, { 'if-none-match': etag });
  t.is(again.status, 304);
  t.is(again.bytes.length, 0);
  const updated = await f.server.request(`${people()}/entities/${ids.bob}?force=true`, { method: 'PATCH', token: f.bob.token, body: { label: 'Bob M' } });
  t.is(updated.status, 200);
  const changed = await download(path, f.bob.token, { 'if-none-match': etag });
  t.is(changed.status, 200);
  t.not(changed.headers.get('etag'), etag);
  t.deepEqual(records(changed.bytes).find((r) => r[0] === ids.bob), [ids.bob, 'Bob M', '2', 'Bob\nManager']);
});

test.serial('with ownerOnly a data collector and an App User see only the entities they created; managers see all', async (t) => {
  t.is((await f.server.request(people(), { method: 'PATCH', token: f.bob.token, body: { ownerOnly: true } })).status, 200);
  const dana = await manifestEntry(`${formPath()}/manifest`, f.dana.token);
  t.deepEqual(names(dana.file.bytes), [ids.dana]);
  t.is(dana.hash, `md5:${md5(dana.file.bytes)}`);
  const app = await manifestEntry(keyPath(f.appUser.token, `${formPath()}/manifest`));
  t.deepEqual(names(app.file.bytes), [ids.app]);
  t.is(app.hash, `md5:${md5(app.file.bytes)}`);
  t.not(app.hash, dana.hash);
  const bob = await manifestEntry(`${formPath()}/manifest`, f.bob.token);
  t.deepEqual(names(bob.file.bytes), Object.values(ids).sort());
  // A deleted entity leaves every list.
  await f.server.request(`${people()}/entities/${ids.dana}`, { method: 'DELETE', token: f.bob.token });
  t.deepEqual(names((await download(`${formPath()}/attachments/people.csv`, f.dana.token)).bytes), []);
  await f.server.request(`${people()}/entities/${ids.dana}/restore`, { method: 'POST', token: f.bob.token });
  t.is((await f.server.request(people(), { method: 'PATCH', token: f.bob.token, body: { ownerOnly: false } })).status, 200);
  t.deepEqual(names((await download(`${formPath()}/attachments/people.csv`, f.dana.token)).bytes), Object.values(ids).sort());
});

test.serial('with a property accessFilter an App User sees the entities whose property matches its actor property', async (t) => {
  const filter = { type: 'property', rules: [{ datasetProperty: 'full_name', actorProperty: 'person' }] };
  t.is((await f.server.request(people(), { method: 'PATCH', token: f.bob.token, body: { accessFilter: filter } })).status, 200);
  const north = await manifestEntry(keyPath(northUser.token, `${formPath()}/manifest`));
  t.deepEqual(names(north.file.bytes), [ids.north]);
  t.is(north.hash, `md5:${md5(north.file.bytes)}`);
  // An App User without the property sees none; a manager still sees every entity.
  t.deepEqual(names((await download(keyPath(f.appUser.token, `${formPath()}/attachments/people.csv`))).bytes), []);
  t.is(names((await download(`${formPath()}/attachments/people.csv`, f.bob.token)).bytes).length, 4);
  t.is((await f.server.request(people(), { method: 'PATCH', token: f.bob.token, body: { accessFilter: null } })).status, 200);
});

test.serial('a dataset requiring approval is offered as approvalEntityList', async (t) => {
  t.is((await f.server.request(people(), { method: 'PATCH', token: f.bob.token, body: { approvalRequired: true } })).status, 200);
  t.is((await manifestEntry(keyPath(f.appUser.token, `${formPath()}/manifest`))).type, 'approvalEntityList');
  t.is((await f.server.request(`${people()}?convert=false`, { method: 'PATCH', token: f.bob.token, body: { approvalRequired: false } })).status, 200);
  t.is((await manifestEntry(keyPath(f.appUser.token, `${formPath()}/manifest`))).type, 'entityList');
});

test.serial('PATCH on a draft attachment links and unlinks the dataset; draft and test-token downloads see every entity', async (t) => {
  t.is((await f.server.request(people(), { method: 'PATCH', token: f.bob.token, body: { ownerOnly: true } })).status, 200);
  t.is((await f.server.request(`${formPath()}/draft`, { method: 'POST', token: f.bob.token })).status, 200);
  const attachment = `${formPath()}/draft/attachments/people.csv`;
  t.like((await f.server.request(`${formPath()}/draft/attachments`, { token: f.bob.token })).body, [{ name: 'people.csv', datasetExists: true }]);

  const unlink = await f.server.request(attachment, { method: 'PATCH', token: f.bob.token, body: { dataset: false } });
  t.deepEqual(unlink.body, { success: true });
  t.like((await f.server.request(`${formPath()}/draft/attachments`, { token: f.bob.token })).body,
    [{ name: 'people.csv', exists: false, blobExists: false, datasetExists: false }]);
  t.is((await download(attachment, f.bob.token)).status, 404);
  // An uploaded file is replaced by the dataset when linking.
  await f.server.request(attachment, { method: 'POST', token: f.bob.token, raw: 'name,label\nx,X\n', headers: { 'content-type': 'text/csv' } });
  t.is((await f.server.request(attachment, { method: 'PATCH', token: f.bob.token, body: { dataset: true } })).status, 200);
  t.like((await f.server.request(`${formPath()}/draft/attachments`, { token: f.bob.token })).body,
    [{ name: 'people.csv', exists: true, blobExists: false, datasetExists: true }]);
  const draftCsv = await download(attachment, f.bob.token);
  t.deepEqual(names(draftCsv.bytes), Object.values(ids).sort());

  // Draft testing with the draft token: every entity, whatever ownerOnly says (as in Central).
  const { body: draft } = await f.server.request(`${formPath()}/draft`, { token: f.bob.token });
  const testBase = `/v1/test/${draft.draftToken}/projects/${f.projectA}/forms/${followUp}/draft`;
  const viaToken = await manifestEntry(`${testBase}/manifest`);
  t.is(viaToken.url, `${f.server.url}${testBase}/attachments/people.csv`);
  t.deepEqual(names(viaToken.file.bytes), Object.values(ids).sort());
  t.is(viaToken.hash, `md5:${md5(viaToken.file.bytes)}`);
  t.is((await download(`/v1/test/not-the-token/projects/${f.projectA}/forms/${followUp}/draft/attachments/people.csv`)).status, 404);

  // Only an existing dataset of that name, only by those who may update the form, only on data files.
  const audits = await f.server.sql.query(`select details from app_public.audits where action = 'form.attachment.update' and details->>'name' = 'people.csv' order by id`);
  const lastAudit = audits.rows.at(-1)!.details;
  t.is(typeof lastAudit.newDatasetId, 'number');
  t.is(lastAudit.newBlobId, null);
  t.is(typeof lastAudit.oldBlobId, 'number');
  t.is((await f.server.request(attachment, { method: 'PATCH', token: f.dana.token, body: { dataset: true } })).status, 403);
  t.is((await f.server.request(`${formPath()}/draft/attachments/nope.csv`, { method: 'PATCH', token: f.bob.token, body: { dataset: true } })).status, 404);
  t.is((await f.server.request(people(), { method: 'PATCH', token: f.bob.token, body: { ownerOnly: false } })).status, 200);
});
