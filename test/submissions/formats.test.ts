// Pure unit tests: submission parsing, the OpenRosa response, CSV tables — no database.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { parseSubmission, structureSubmission, expectedAttachments, type SchemaField } from '../../server/formats/submission.ts';
import { openRosaMessage } from '../../server/formats/openrosa-submission.ts';
import { csvTables, rootRow, repeatRows } from '../../server/formats/csv.ts';
import { Problem } from '../../server/errors.ts';

const samples = path.resolve('../shared/forms/submissions');
const read = (p: string) => fs.readFileSync(path.join(samples, p), 'utf8');

const nestedRepeats: SchemaField[] = [
  { path: '/meta', type: 'structure' }, { path: '/meta/instanceID', type: 'string' },
  { path: '/g1', type: 'repeat' }, { path: '/g1/t1', type: 'string' },
  { path: '/g1/g2', type: 'repeat' }, { path: '/g1/g2/t2', type: 'string' },
  { path: '/g1/g2/g3', type: 'repeat' }, { path: '/g1/g2/g3/t3', type: 'string' },
];

test('every plain sample submission parses with a form id and an instanceID', (t) => {
  const files = fs.readdirSync(samples, { recursive: true }).map(String).filter((f) => f.endsWith('.xml'));
  t.true(files.length >= 20);
  for (const file of files) {
    const parsed = parseSubmission(read(file));
    t.truthy(parsed.formId, file);
    t.regex(parsed.instanceId, /^uuid:/, file);
  }
});

test('orx:version, deprecatedID and orx:meta are read whatever their prefix', (t) => {
  const edit = parseSubmission(read('basic-one-question-v1/edit-with-deprecatedID.xml'));
  t.is(edit.formId, 'one_question');
  t.is(edit.version, '1');
  t.is(edit.instanceId, 'uuid:5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d');
  t.is(edit.deprecatedId, 'uuid:0f6b3c2a-1d4e-4a5b-8c7d-9e0f1a2b3c4d');
  const audit = parseSubmission(read('audit-with-location/submission.xml'));
  t.is(audit.instanceId, 'uuid:d8e9f0a1-b2c3-4d4e-9f5a-6b7c8d9e0f1a');
  t.is(audit.version, '');
  t.is(audit.encrypted, null);
});

test('encrypted submissions expose their key, XML file and media as sent', (t) => {
  const parsed = parseSubmission(read('encrypted-with-media/submission-manifest.xml'));
  t.is(parsed.formId, 'encrypted-form-media');
  t.is(parsed.encrypted?.encryptedXmlFile, 'submission.xml.enc');
  t.deepEqual(parsed.encrypted?.media, ['1538040007350.jpg.enc', '1538040019351.jpg.enc']);
  t.regex(parsed.encrypted?.base64EncryptedKey ?? '', /^LQfGcwk6/);
});

test('malformed XML is 400.1 and a missing instanceID 400.2', (t) => {
  const bad = t.throws(() => parseSubmission('<data id="x"><a></data>'), { instanceOf: Problem }) as Problem;
  t.is(bad.code, 400.1);
  const noId = t.throws(() => parseSubmission('<data id="x"><a/></data>'), { instanceOf: Problem }) as Problem;
  t.is(noId.code, 400.2);
  const noForm = t.throws(() => parseSubmission('<data><meta><instanceID>uuid:1</instanceID></meta></data>'), { instanceOf: Problem }) as Problem;
  t.is(noForm.code, 400.2);
});

test('structured data follows the schema: repeats are always arrays, groups objects, leaves text', (t) => {
  const parsed = parseSubmission(read('repeats-nested-three-levels/briefcase-export-format.xml'));
  const data = structureSubmission(parsed.root, nestedRepeats);
  t.deepEqual(data.meta, { instanceID: 'uuid:0a1b861f-a5fd-4f49-846a-78dcf06cfc1b' });
  const g1 = data.g1 as any[];
  t.is(g1.length, 3);
  t.deepEqual(g1[1], { t1: 'some text 2', g2: [{ t2: 'some text 2.1' }] });
  t.is(g1[2].g2[0].g3.length, 4);
  const single = structureSubmission(parseSubmission('<data id="n"><g1><t1>x</t1></g1><meta><instanceID>uuid:a</instanceID></meta><extra>1</extra></data>').root, nestedRepeats);
  t.deepEqual(single, { g1: [{ t1: 'x' }], meta: { instanceID: 'uuid:a' } });
});

test('binary fields give the expected attachment names', (t) => {
  const fields: SchemaField[] = [{ path: '/text', type: 'string' }, { path: '/image', type: 'binary', binary: true }];
  const parsed = parseSubmission(read('media-image-upload/collect-style.xml'));
  t.deepEqual(expectedAttachments(structureSubmission(parsed.root, fields), fields), ['1556532531101.jpg']);
});

test('the OpenRosa response has Central\'s exact shape and escapes its message', (t) => {
  t.is(openRosaMessage('', 'full submission upload was successful!'),
    '<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">\n  <message nature="">full submission upload was successful!</message>\n</OpenRosaResponse>');
  t.true(openRosaMessage('error', 'a < b & c').includes('<message nature="error">a &lt; b &amp; c</message>'));
});

test('CSV tables for nested repeats: one per repeat, with Briefcase keys', (t) => {
  const tables = csvTables('nested-repeats', nestedRepeats, { groupPaths: true });
  t.deepEqual(tables.map((x) => x.fileName), ['nested-repeats.csv', 'nested-repeats-g1.csv', 'nested-repeats-g2.csv', 'nested-repeats-g3.csv']);
  t.deepEqual(tables[0].header, ['SubmissionDate', 'meta-instanceID', 'KEY', 'SubmitterID', 'SubmitterName', 'AttachmentsPresent',
    'AttachmentsExpected', 'Status', 'ReviewState', 'DeviceID', 'Edits', 'FormVersion']);
  t.deepEqual(tables[3].header, ['t3', 'PARENT_KEY', 'KEY']);
  const parsed = parseSubmission(read('repeats-nested-three-levels/briefcase-export-format.xml'));
  const data = structureSubmission(parsed.root, nestedRepeats);
  const id = parsed.instanceId;
  const g3 = [...repeatRows(tables[3], nestedRepeats, id, data)];
  t.is(g3.length, 5);
  t.deepEqual(g3[0], ['some text 1.1.1', `${id}/g1[1]/g2[1]`, `${id}/g1[1]/g2[1]/g3[1]`]);
  t.deepEqual(g3[4], ['some text 3.1.4', `${id}/g1[3]/g2[1]`, `${id}/g1[3]/g2[1]/g3[4]`]);
  const g1 = [...repeatRows(tables[1], nestedRepeats, id, data)];
  t.deepEqual(g1[0], ['some text 1', id, `${id}/g1[1]`]);
  const row = rootRow(tables[0], { instanceId: id, createdAt: new Date('2024-01-02T03:04:05.006Z'), submitterId: 5, submitterName: 'Alice',
    attachmentsPresent: 0, attachmentsExpected: 0, status: null, reviewState: null, deviceId: null, edits: 0, formVersion: '', data });
  t.deepEqual(row, ['2024-01-02T03:04:05.006Z', id, id, 5, 'Alice', 0, 0, null, null, null, 0, '']);
});

test('CSV columns: group paths, geopoints in four, split select multiples', (t) => {
  const fields: SchemaField[] = [
    { path: '/grp', type: 'structure' }, { path: '/grp/where', type: 'geopoint' },
    { path: '/grp/colours', type: 'string', selectMultiple: true },
    { path: '/meta', type: 'structure' }, { path: '/meta/instanceID', type: 'string' },
  ];
  const withPaths = csvTables('f', fields, { groupPaths: true, selectValues: { '/grp/colours': ['red', 'blue'] } });
  t.deepEqual(withPaths[0].header.slice(0, 8), ['SubmissionDate', 'grp-where-Latitude', 'grp-where-Longitude', 'grp-where-Altitude',
    'grp-where-Accuracy', 'grp-colours', 'grp-colours/red', 'grp-colours/blue']);
  const bare = csvTables('f', fields, { groupPaths: false });
  t.deepEqual(bare[0].header.slice(0, 7), ['SubmissionDate', 'where-Latitude', 'where-Longitude', 'where-Altitude', 'where-Accuracy', 'colours', 'instanceID']);
  const row = rootRow(withPaths[0], { instanceId: 'uuid:x', createdAt: '2024-01-01T00:00:00Z', submitterId: null, submitterName: null,
    attachmentsPresent: 0, attachmentsExpected: 0, status: null, reviewState: 'approved', deviceId: 'd', edits: 1, formVersion: '2',
    data: { grp: { where: '1.5 2.5 3 4', colours: 'blue' }, meta: { instanceID: 'uuid:x' } } });
  t.deepEqual(row.slice(1, 9), ['1.5', '2.5', '3', '4', 'blue', 0, 1, 'uuid:x']);
});
