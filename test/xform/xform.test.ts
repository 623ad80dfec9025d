// Pure unit tests of the XForm parser over every form of the shared corpus: no database.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { parseXForm, setVersion, odataFields, type XForm } from '../../server/formats/xform.ts';
import { Problem } from '../../server/errors.ts';

const corpus = path.resolve('../shared/forms');
const read = (name: string) => fs.readFileSync(path.join(corpus, `${name}.xml`), 'utf8');
const allForms = fs.readdirSync(corpus).filter((f) => f.endsWith('.xml')).map((f) => f.slice(0, -4));

/** Forms Central refuses, with the problem it answers. */
const refused: Record<string, number> = {
  'entities-2024.1-create-or-update-in-repeat': 400.25, // saveto inside a repeat needs entities 2025.1
  'entities-invalid-old-version-2020.1': 400.25,
  'entities-invalid-future-version-2452.2': 400.25,
};

const summary = (x: XForm) => x.fields.map((f) => `${f.path}:${f.type}${f.binary ? ':binary' : ''}${f.selectMultiple ? ':multiple' : ''}`);

function problemOf(fn: () => unknown): Problem {
  try { fn(); } catch (err) { if (err instanceof Problem) return err; throw err; }
  throw new Error('expected a problem');
}

test('the corpus has all 40 forms', (t) => {
  t.is(allForms.length, 40);
});

test('every usable form parses with its id and fields in document order', (t) => {
  const index = fs.readFileSync(path.join(corpus, 'INDEX.md'), 'utf8');
  for (const name of allForms.filter((n) => !(n in refused))) {
    const form = parseXForm(read(name));
    t.truthy(form.xmlFormId, name);
    t.true(index.includes(`| ${name}.xml | ${form.xmlFormId} / ${form.version || '—'} |`), `${name}: ${form.xmlFormId} / ${form.version}`);
    for (const f of form.fields) {
      t.is(f.path.split('/').pop(), f.name, name);
      t.false(f.path.includes(':'), `${name} ${f.path}`);
    }
  }
});

test('forms without a meta group are accepted unless they declare entities', (t) => {
  for (const name of ['basic-one-question-v2-no-meta', 'media-audio-question']) {
    t.false(parseXForm(read(name)).fields.some((f) => f.name === 'meta'), name);
  }
});

test('refused forms fail with Central\'s problem codes', (t) => {
  for (const [name, code] of Object.entries(refused)) t.is(problemOf(() => parseXForm(read(name))).code, code, name);
  const old = problemOf(() => parseXForm(read('entities-invalid-old-version-2020.1')));
  t.is(old.message, 'The entity definition within the form is invalid. Entities specification version [2020.1.0] is not supported.');
  t.deepEqual(old.details, { reason: 'Entities specification version [2020.1.0] is not supported.' });
  const entitiesWithoutMeta = read('entities-2024.1-create-people').replace(/<meta>[\s\S]*?<\/meta>/, '');
  t.is(problemOf(() => parseXForm(entitiesWithoutMeta)).message, 'The form does not contain a \'meta\' group.');
});

test('scalar and geo types come from the binds', (t) => {
  t.deepEqual(summary(parseXForm(read('datatypes-all-scalar-and-geo'))), [
    '/some_string:string', '/some_int:int', '/some_decimal:decimal', '/some_date:date', '/some_time:time',
    '/some_date_time:dateTime', '/some_geopoint:geopoint', '/some_geotrace:geotrace', '/some_geoshape:geoshape',
    '/some_barcode:barcode', '/meta:structure', '/meta/instanceID:string']);
});

test('select multiples are flagged, groups are structures', (t) => {
  t.deepEqual(summary(parseXForm(read('selects-choice-lists'))), [
    '/some_string:string:multiple', '/another_string:string', '/some_group:structure',
    '/some_group/yet_another_string:string:multiple', '/meta:structure', '/meta/instanceID:string']);
});

test('nested repeats appear once each, depth first', (t) => {
  t.deepEqual(summary(parseXForm(read('repeats-nested-three-levels'))), [
    '/meta:structure', '/meta/instanceID:string', '/g1:repeat', '/g1/t1:string', '/g1/g2:repeat', '/g1/g2/t2:string',
    '/g1/g2/g3:repeat', '/g1/g2/g3/t3:string']);
});

test('namespaced meta is stripped of prefixes and the client audit is binary', (t) => {
  const form = parseXForm(read('audit-with-location'));
  t.deepEqual(form.fields.map((f) => f.path), ['/meta', '/meta/instanceID', '/meta/audit', '/text1', '/text2']);
  t.true(form.fields.find((f) => f.path === '/meta/audit')!.binary);
});

test('binary questions are marked binary', (t) => {
  const form = parseXForm(read('realistic-all-question-types'));
  const binaries = form.fields.filter((f) => f.binary).map((f) => f.name);
  t.deepEqual(binaries, ['image', 'image_no_choose', 'selfie_image', 'ex_image', 'image_custom_app', 'draw_image',
    'annotate_image', 'signature', 'audio', 'ex_audio', 'video', 'ex_video', 'file', 'ex_file']);
});

test('id, version (plain or orx:), title and a custom root element are read', (t) => {
  const v1 = parseXForm(read('basic-one-question-v1'));
  t.like(v1, { xmlFormId: 'one_question', version: '1', title: 'One Question', base64RsaPublicKey: null });
  const custom = parseXForm(read('calculate-simple'));
  t.like(custom, { xmlFormId: 'calculate-simple', version: '', title: 'Calculate (simple)' });
  t.deepEqual(custom.fields.map((f) => f.path), ['/first-question', '/second-question', '/meta', '/meta/instanceID']);
  t.is(parseXForm(read('realistic-xlsform-spec-test-encrypted-custom-action')).xmlFormId, 'Spec test');
});

test('encrypted forms carry their public key and submission action', (t) => {
  const form = parseXForm(read('realistic-xlsform-spec-test-encrypted-custom-action'));
  t.regex(form.base64RsaPublicKey!, /^MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQ/);
  t.is(form.submissionUrl, 'https://example-odk-aggregate.appspot.com/submission');
  t.regex(parseXForm(read('encrypted-simple')).base64RsaPublicKey!, /^MIIB/);
});

test('expected attachments: external instances, itext media, de-duplicated', (t) => {
  t.deepEqual(parseXForm(read('external-csv-and-geojson-map')).attachments,
    [{ name: 'geodataGeoJson.geojson', type: 'file' }, { name: 'geodataCsv.csv', type: 'file' }]);
  t.deepEqual(parseXForm(read('external-xml-cascading-select')).attachments, [{ name: 'external-data.xml', type: 'file' }]);
  t.deepEqual(parseXForm(read('media-image-upload')).attachments, [{ name: 'sparrow.png', type: 'image' }]);
  const all = parseXForm(read('realistic-all-question-types')).attachments;
  t.deepEqual(all[0], { name: 'cities.geojson', type: 'file' });
  t.is(all.filter((a) => a.name === 'body.svg').length, 1);
  t.true(all.every((a) => a.type === 'file' || a.type === 'image'));
});

test('entity declarations: version, datasets with actions and paths, saveto properties', (t) => {
  const multi = parseXForm(read('entities-2025.1-multi-list-households-members')).entities!;
  t.is(multi.version, '2025.1.0');
  t.deepEqual(multi.datasets, [
    { name: 'members', actions: ['create'], path: '/household_member' },
    { name: 'households', actions: ['create'], path: '/' }]);
  t.deepEqual(multi.properties.map((p) => `${p.path}=${p.property}`),
    ['/hhid=hhid', '/location=geometry', '/household_member/phone_number=phone', '/household_member/member_hhid=hhid']);
  t.deepEqual(multi.warnings, []);
  const upsert = parseXForm(read('entities-2024.1-upsert-people')).entities!;
  t.deepEqual(upsert.datasets, [{ name: 'people', actions: ['create', 'update'], path: '/' }]);
  const old = parseXForm(read('entities-2022.1-create-trees-spec-example')).entities!;
  t.is(old.warnings[0].type, 'oldEntityVersion');
  t.is(parseXForm(read('entities-follow-up-uses-dataset-attachment')).entities, null);
  t.is(parseXForm(read('basic-one-question-v1')).entities, null);
});

test('unparseable XML is 400.1 and a missing form id 400.2', (t) => {
  const notXml = problemOf(() => parseXForm('this is not xml'));
  t.is(notXml.code, 400.1);
  t.deepEqual(notXml.details, { format: 'xml', rawLength: 15 });
  const noId = problemOf(() => parseXForm(read('basic-one-question-v1').replace('id="one_question"', '')));
  t.is(noId.code, 400.2);
  t.is(noId.message, 'Required parameter formId missing.');
  t.is(problemOf(() => parseXForm('<h:html xmlns:h="http://www.w3.org/1999/xhtml"/>')).code, 400.2);
  const xmlSuffix = problemOf(() => parseXForm(read('basic-one-question-v1').replace('id="one_question"', 'id="form.xml"')));
  t.is(xmlSuffix.code, 400.8);
});

test('a form without a title has a null title', (t) => {
  t.is(parseXForm(read('basic-one-question-v1').replace(/<h:title>.*<\/h:title>/, '')).title, null);
});

test('setVersion changes only the version attribute, plain, orx: or absent', (t) => {
  for (const name of ['basic-one-question-v1', 'calculate-simple', 'geo-geoshape']) {
    const xml = read(name);
    const changed = setVersion(xml, 'v<2>');
    t.is(parseXForm(changed).version, 'v<2>', name);
    t.deepEqual(parseXForm(changed).fields, parseXForm(xml).fields, name);
  }
});

test('odata names replace characters OData identifiers cannot have', (t) => {
  const fields = odataFields(parseXForm(read('calculate-simple')).fields);
  t.deepEqual(fields.map((f) => f.path), ['/first_question', '/second_question', '/meta', '/meta/instanceID']);
  t.deepEqual(fields.map((f) => f.name), ['first_question', 'second_question', 'meta', 'instanceID']);
});
