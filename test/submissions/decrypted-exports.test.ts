// Decrypted CSV exports of an encrypted form with (nested) repeats: submissions encrypted here as Collect does,
// under a key pair made here and held as a managed key; once decrypted, their repeats fill the repeat CSVs.
import test from 'ava';
import crypto from 'node:crypto';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { createProject, createForm, submitOpenRosa, unzip, encryptAsCollect } from './helpers.ts';
import { sealPrivateKey, publicKeyBase64 } from '../../server/formats/decrypt.ts';

let f: Fixtures;
test.before(async () => { f = await withFixtures(); });
test.after.always(() => f?.server.close());

const passphrase = 'household passphrase';

const formXml = (publicKey: string) => `<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa">
  <h:head>
    <h:title>Household</h:title>
    <model>
      <instance>
        <data id="household" version="1">
          <village/>
          <people jr:template="">
            <name/>
            <photo/>
            <pets jr:template="">
              <pet/>
            </pets>
          </people>
          <meta><instanceID/></meta>
        </data>
      </instance>
      <submission method="form-data-post" base64RsaPublicKey="${publicKey}"/>
      <bind nodeset="/data/village" type="string"/>
      <bind nodeset="/data/people/name" type="string"/>
      <bind nodeset="/data/people/photo" type="binary"/>
      <bind nodeset="/data/people/pets/pet" type="string"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" calculate="concat('uuid:', uuid())"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/village"/>
    <group>
      <repeat nodeset="/data/people">
        <input ref="/data/people/name"/>
        <upload ref="/data/people/photo" mediatype="image/*"/>
        <group>
          <repeat nodeset="/data/people/pets">
            <input ref="/data/people/pets/pet"/>
          </repeat>
        </group>
      </repeat>
    </group>
  </h:body>
</h:html>`;

interface Person { name: string; photo?: string; pets?: string[] }

const instanceXml = (instanceId: string, village: string, people: Person[]) => `<data id="household" version="1">`
  + `<village>${village}</village>`
  + people.map((p) => `<people><name>${p.name}</name><photo>${p.photo ?? ''}</photo>${(p.pets ?? []).map((x) => `<pets><pet>${x}</pet></pets>`).join('')}</people>`).join('')
  + `<meta><instanceID>${instanceId}</instanceID></meta></data>`;

/** A project with the household form under a managed key made here; returns what submitting and exporting need. */
async function householdProject(name: string) {
  const pid = await createProject(f.server, f.alice.token, name);
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicBase64 = publicKeyBase64(publicKey);
  const { rows: [k] } = await f.server.sql.query(
    `insert into app_public.keys (public, private, managed, hint) values ($1, $2, true, 'household') returning id`,
    [publicBase64, JSON.stringify(sealPrivateKey(privateKey, passphrase))]);
  await createForm(f.server, f.alice.token, pid, formXml(publicBase64));
  const submit = async (instanceId: string, village: string, people: Person[], media: { name: string; data: Buffer }[] = []) => {
    const { manifest, files } = encryptAsCollect({ publicKey: publicBase64, formId: 'household', version: '1', instanceId,
      xml: instanceXml(instanceId, village, people), media });
    const res = await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, manifest, { token: f.alice.token, files });
    if (res.status !== 201) throw new Error(`submission ${instanceId}: ${res.status} ${res.text}`);
  };
  const exportZip = async (query: string) => {
    const res = await fetch(`${f.server.url}/v1/projects/${pid}/forms/household/submissions.csv.zip${query}`,
      { headers: { authorization: `Bearer ${f.alice.token}` } });
    return { status: res.status, files: unzip(Buffer.from(await res.arrayBuffer())) };
  };
  return { keyId: k.id as number, submit, exportZip };
}

const lines = (files: Map<string, Buffer>, name: string) => files.get(name)!.toString().trim().split('\n');

test('decrypted submissions fill the repeat CSVs with PARENT_KEY/KEY, and their media come decrypted', async (t) => {
  const { keyId, submit, exportZip } = await householdProject('decrypted repeats');
  const first = 'uuid:7e0c3f52-0000-4000-8000-000000000001';
  const second = 'uuid:7e0c3f52-0000-4000-8000-000000000002';
  const jpeg = crypto.randomBytes(5000);
  await submit(first, 'Kibera', [{ name: 'Amina', photo: 'amina.jpg', pets: ['Rex', 'Tom'] }, { name: 'Baraka' }],
    [{ name: 'amina.jpg', data: jpeg }]);
  await submit(second, 'Mathare', [{ name: 'Chege', pets: ['Simba'] }]);

  const { status, files } = await exportZip(`?${keyId}=${encodeURIComponent(passphrase)}`);
  t.is(status, 200);
  t.deepEqual([...files.keys()], ['household.csv', 'household-people.csv', 'household-pets.csv', 'media/amina.jpg']);
  t.deepEqual(files.get('media/amina.jpg'), jpeg);
  const root = lines(files, 'household.csv');
  t.is(root.length, 3);
  t.regex(root[1], new RegExp(`^[^,]+,Mathare,${second},${second},\\d+,Alice,1,1,,,,0,1$`));
  t.regex(root[2], new RegExp(`^[^,]+,Kibera,${first},${first},\\d+,Alice,2,2,,,,0,1$`));
  t.deepEqual(lines(files, 'household-people.csv'), [
    'name,photo,PARENT_KEY,KEY',
    `Chege,,${second},${second}/people[1]`,
    `Amina,amina.jpg,${first},${first}/people[1]`,
    `Baraka,,${first},${first}/people[2]`,
  ]);
  t.deepEqual(lines(files, 'household-pets.csv'), [
    'pet,PARENT_KEY,KEY',
    `Simba,${second}/people[1],${second}/people[1]/pets[1]`,
    `Rex,${first}/people[1],${first}/people[1]/pets[1]`,
    `Tom,${first}/people[1],${first}/people[1]/pets[2]`,
  ]);

  // Without the passphrase: metadata only, empty repeat tables, the encrypted parts as stored.
  const locked = await exportZip('');
  t.deepEqual([...locked.files.keys()].sort(),
    ['household-people.csv', 'household-pets.csv', 'household.csv', 'media/amina.jpg.enc', 'media/submission.xml.enc']);
  t.true(lines(locked.files, 'household.csv').slice(1).every((line) => line.includes(',not decrypted,')));
  t.deepEqual(lines(locked.files, 'household-people.csv'), ['name,photo,PARENT_KEY,KEY']);
  t.deepEqual(lines(locked.files, 'household-pets.csv'), ['pet,PARENT_KEY,KEY']);
});

test('an export decrypts every one of many encrypted submissions, root and repeat rows', async (t) => {
  const { keyId, submit, exportZip } = await householdProject('many encrypted');
  const n = 300;
  const ids = Array.from({ length: n }, (_, i) => `uuid:9a4d2b10-0000-4000-8000-${String(i).padStart(12, '0')}`);
  for (let i = 0; i < n; i += 20) {
    await Promise.all(ids.slice(i, i + 20).map((id, j) => submit(id, `village ${i + j}`, [{ name: `person ${i + j}`, pets: [`pet ${i + j}`] }])));
  }
  const { status, files } = await exportZip(`?${keyId}=${encodeURIComponent(passphrase)}&attachments=false`);
  t.is(status, 200);
  const root = lines(files, 'household.csv').slice(1);
  t.is(root.length, n);
  t.is(root.filter((line) => line.includes('not decrypted')).length, 0);
  const byId = new Map(root.map((line) => [line.split(',')[2], line.split(',')[1]]));
  t.deepEqual(ids.map((id) => byId.get(id)), ids.map((_, i) => `village ${i}`));
  const people = new Set(lines(files, 'household-people.csv').slice(1));
  t.is(people.size, n);
  t.true(ids.every((id, i) => people.has(`person ${i},,${id},${id}/people[1]`)));
  const pets = new Set(lines(files, 'household-pets.csv').slice(1));
  t.is(pets.size, n);
  t.true(ids.every((id, i) => pets.has(`pet ${i},${id}/people[1],${id}/people[1]/pets[1]`)));
});
