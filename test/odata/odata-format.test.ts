// The OData documents as pure functions of real forms from ../shared/forms: service document, EDMX, entities.
import test from 'ava';
import fs from 'node:fs';
import crypto from 'node:crypto';
import xml2js from 'xml2js';
import { parseXForm } from '../../server/formats/xform.ts';
import { parseSubmission, structureSubmission } from '../../server/formats/submission.ts';
import {
  formSchema, serviceDocument, metadataDocument, resolveTable, selection, submissionEntity, repeatEntity, leafValue,
  sanitizeIdentifier, dataDocumentStart, dataDocumentEnd, nextLinkFor, type DataTree, type SubmissionRow, type FormSchema,
} from '../../server/formats/odata.ts';
import { Problem } from '../../server/errors.ts';

const formsDir = process.env.FIELDBASE_FORMS_DIR ?? '../shared/forms';

function form(name: string) {
  const parsed = parseXForm(fs.readFileSync(`${formsDir}/${name}.xml`, 'utf8'));
  return { xmlFormId: parsed.xmlFormId, fields: parsed.fields, schema: formSchema(parsed.fields) };
}

function submission(formName: string, file: string, fields: Parameters<typeof structureSubmission>[1]) {
  const parsed = parseSubmission(fs.readFileSync(`${formsDir}/submissions/${formName}/${file}`, 'utf8'));
  return { instanceId: parsed.instanceId, data: structureSubmission(parsed.root, fields) as DataTree };
}

const system = {
  created_at: '2024-01-02T03:04:05.678Z', updated_at: null, deleted_at: null, submitter_id: 5, submitter_name: 'Alice',
  attachments_present: 0, attachments_expected: 0, status: null, review_state: null, device_id: null, edits: 0, form_version: '',
};

const sha1 = (text: string) => crypto.createHash('sha1').update(text).digest('hex');
const nested = form('repeats-nested-three-levels');
const allTypes = form('datatypes-all-scalar-and-geo');
const selects = form('selects-choice-lists');

test('identifiers are sanitized like Central', (t) => {
  t.is(sanitizeIdentifier('some-field.x'), 'some_field_x');
  t.is(sanitizeIdentifier('1st'), '_1st');
  t.is(sanitizeIdentifier('Field'), 'Field');
});

test('the service document lists Submissions and every repeat table by its dotted path', (t) => {
  t.deepEqual(serviceDocument(nested.schema, 'https://x.test/v1/projects/1/forms/nested-repeats.svc'), {
    '@odata.context': 'https://x.test/v1/projects/1/forms/nested-repeats.svc/$metadata',
    value: [
      { name: 'Submissions', kind: 'EntitySet', url: 'Submissions' },
      { name: 'Submissions.g1', kind: 'EntitySet', url: 'Submissions.g1' },
      { name: 'Submissions.g1.g2', kind: 'EntitySet', url: 'Submissions.g1.g2' },
      { name: 'Submissions.g1.g2.g3', kind: 'EntitySet', url: 'Submissions.g1.g2.g3' },
    ],
  });
});

test('tables resolve by name; groups, leaves and unknown names do not', (t) => {
  t.is(resolveTable(nested.schema, 'Submissions')?.repeat, null);
  const g2 = resolveTable(nested.schema, 'Submissions.g1.g2')!;
  t.deepEqual(g2.repeats.map((r) => r.field.path), ['/g1', '/g1/g2']);
  t.is(resolveTable(nested.schema, 'Submissions.g2'), null);
  t.is(resolveTable(nested.schema, 'Submissions.meta'), null);
  t.is(resolveTable(nested.schema, 'Submissions.g1.t1'), null);
  t.is(resolveTable(nested.schema, 'Other'), null);
});

const nestedMetadata = `<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.submission">
      <ComplexType Name="metadata">
        <Property Name="submissionDate" Type="Edm.DateTimeOffset"/>
        <Property Name="updatedAt" Type="Edm.DateTimeOffset"/>
        <Property Name="deletedAt" Type="Edm.DateTimeOffset"/>
        <Property Name="submitterId" Type="Edm.String"/>
        <Property Name="submitterName" Type="Edm.String"/>
        <Property Name="attachmentsPresent" Type="Edm.Int64"/>
        <Property Name="attachmentsExpected" Type="Edm.Int64"/>
        <Property Name="status" Type="org.opendatakit.submission.Status"/>
        <Property Name="reviewState" Type="org.opendatakit.submission.ReviewState"/>
        <Property Name="deviceId" Type="Edm.String"/>
        <Property Name="edits" Type="Edm.Int64"/>
        <Property Name="formVersion" Type="Edm.String"/>
      </ComplexType>
      <EnumType Name="Status">
        <Member Name="notDecrypted"/>
        <Member Name="missingEncryptedFormData"/>
      </EnumType>
      <EnumType Name="ReviewState">
        <Member Name="hasIssues"/>
        <Member Name="edited"/>
        <Member Name="rejected"/>
        <Member Name="approved"/>
      </EnumType>
    </Schema>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.user.nested_repeats">
      <EntityType Name="Submissions">
        <Key><PropertyRef Name="__id"/></Key>
        <Property Name="__id" Type="Edm.String"/>
        <Property Name="__system" Type="org.opendatakit.submission.metadata"/>
        <Property Name="meta" Type="org.opendatakit.user.nested_repeats.meta"/>
        <NavigationProperty Name="g1" Type="Collection(org.opendatakit.user.nested_repeats.Submissions.g1)"/>
      </EntityType>
      <EntityType Name="Submissions.g1">
        <Key><PropertyRef Name="__id"/></Key>
        <Property Name="__id" Type="Edm.String"/>
        <Property Name="__Submissions-id" Type="Edm.String"/>
        <Property Name="t1" Type="Edm.String"/>
        <NavigationProperty Name="g2" Type="Collection(org.opendatakit.user.nested_repeats.Submissions.g1.g2)"/>
      </EntityType>
      <EntityType Name="Submissions.g1.g2">
        <Key><PropertyRef Name="__id"/></Key>
        <Property Name="__id" Type="Edm.String"/>
        <Property Name="__Submissions-g1-id" Type="Edm.String"/>
        <Property Name="t2" Type="Edm.String"/>
        <NavigationProperty Name="g3" Type="Collection(org.opendatakit.user.nested_repeats.Submissions.g1.g2.g3)"/>
      </EntityType>
      <EntityType Name="Submissions.g1.g2.g3">
        <Key><PropertyRef Name="__id"/></Key>
        <Property Name="__id" Type="Edm.String"/>
        <Property Name="__Submissions-g1-g2-id" Type="Edm.String"/>
        <Property Name="t3" Type="Edm.String"/>
      </EntityType>
      <ComplexType Name="meta">
        <Property Name="instanceID" Type="Edm.String"/>
      </ComplexType>
      <EntityContainer Name="nested-repeats">
        <EntitySet Name="Submissions" EntityType="org.opendatakit.user.nested_repeats.Submissions">
          <Annotation Term="Org.OData.Capabilities.V1.ConformanceLevel" EnumMember="Org.OData.Capabilities.V1.ConformanceLevelType/Minimal"/>
          <Annotation Term="Org.OData.Capabilities.V1.BatchSupported" Bool="false"/>
          <Annotation Term="Org.OData.Capabilities.V1.CountRestrictions">
            <Record><PropertyValue Property="Countable" Bool="true"/></Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.FilterFunctions">
            <Record>
              <PropertyValue Property="NonCountableProperties">
                <Collection>
                  <String>eq</String>
                </Collection>
              </PropertyValue>
            </Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.FilterFunctions">
            <Record>
              <PropertyValue Property="Filterable" Bool="true"/>
              <PropertyValue Property="RequiresFilter" Bool="false"/>
              <PropertyValue Property="NonFilterableProperties">
                <Collection>
                  <PropertyPath>meta</PropertyPath>
                  <PropertyPath>g1</PropertyPath>
                </Collection>
              </PropertyValue>
            </Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.SortRestrictions">
            <Record><PropertyValue Property="Sortable" Bool="false"/></Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.ExpandRestrictions">
            <Record><PropertyValue Property="Expandable" Bool="false"/></Record>
          </Annotation>
        </EntitySet>
        <EntitySet Name="Submissions.g1" EntityType="org.opendatakit.user.nested_repeats.Submissions.g1">
        </EntitySet>
        <EntitySet Name="Submissions.g1.g2" EntityType="org.opendatakit.user.nested_repeats.Submissions.g1.g2">
        </EntitySet>
        <EntitySet Name="Submissions.g1.g2.g3" EntityType="org.opendatakit.user.nested_repeats.Submissions.g1.g2.g3">
        </EntitySet>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>`;

test('$metadata for nested repeats is exactly Central\'s EDMX', (t) => {
  t.is(metadataDocument(nested.xmlFormId, nested.schema), nestedMetadata);
});

async function parsedMetadata(schemaForm: { xmlFormId: string; schema: FormSchema }) {
  const doc = await xml2js.parseStringPromise(metadataDocument(schemaForm.xmlFormId, schemaForm.schema));
  const userSchema = doc['edmx:Edmx']['edmx:DataServices'][0].Schema[1];
  const props = (type: any) => Object.fromEntries((type.Property ?? []).map((p: any) => [p.$.Name, p.$.Type]));
  return { userSchema, props };
}

test('$metadata maps Central\'s types: Int64, Decimal, Date, DateTimeOffset, Geography*, String otherwise', async (t) => {
  const { userSchema, props } = await parsedMetadata(allTypes);
  t.deepEqual(props(userSchema.EntityType[0]), {
    __id: 'Edm.String', __system: 'org.opendatakit.submission.metadata',
    some_string: 'Edm.String', some_int: 'Edm.Int64', some_decimal: 'Edm.Decimal', some_date: 'Edm.Date',
    some_time: 'Edm.String', some_date_time: 'Edm.DateTimeOffset', some_geopoint: 'Edm.GeographyPoint',
    some_geotrace: 'Edm.GeographyLineString', some_geoshape: 'Edm.GeographyPolygon', some_barcode: 'Edm.String',
    meta: 'org.opendatakit.user.all_data_types.meta',
  });
});

test('$metadata puts groups inside repeats under dotted complex type names', async (t) => {
  const complex = form('repeats-complex-groups-and-repeats');
  const { userSchema } = await parsedMetadata(complex);
  const entityNames = userSchema.EntityType.map((e: any) => e.$.Name);
  const tables = serviceDocument(complex.schema, 'u').value.map((v) => v.name);
  t.deepEqual(entityNames, tables);
  for (const e of userSchema.EntityType.slice(1)) t.truthy(e.Property.find((p: any) => /^__Submissions.*-id$/.test(p.$.Name)));
  for (const c of userSchema.ComplexType) {
    const node = complex.schema.byOdataPath.get('/' + c.$.Name.replace(/\./g, '/'));
    t.is(node?.field.type, 'structure', c.$.Name);
  }
});

test('xml special characters in form ids are escaped in $metadata', (t) => {
  const xml = metadataDocument('a<b&"c"', formSchema([{ path: '/x', name: 'x', type: 'string' }]));
  t.true(xml.includes('<EntityContainer Name="a&lt;b&amp;&quot;c&quot;">'));
  t.true(xml.includes('Namespace="org.opendatakit.user.a_b_c_"'));
});

test('leaf values: numbers, dateTime offsets, strings; empty is null', (t) => {
  const o = { wkt: false };
  t.is(leafValue('int', '42', o), 42);
  t.is(leafValue('int', 'x', o), null);
  t.is(leafValue('decimal', '1.50', o), 1.5);
  t.is(leafValue('dateTime', '2020-01-01T10:00:00.000+07', o), '2020-01-01T10:00:00.000+07:00');
  t.is(leafValue('string', '', o), null);
  t.is(leafValue('string', undefined, o), null);
  t.is(leafValue('select', 'a b', o), 'a b');
  t.is(leafValue('date', '2020-01-01', o), '2020-01-01');
});

test('geo values become GeoJSON (lon, lat, alt) with accuracy, or WKT with $wkt', (t) => {
  t.deepEqual(leafValue('geopoint', '1.5 2.5 3 4', { wkt: false }), { type: 'Point', coordinates: [2.5, 1.5, 3], properties: { accuracy: 4 } });
  t.deepEqual(leafValue('geopoint', '1.5 2.5', { wkt: false }), { type: 'Point', coordinates: [2.5, 1.5] });
  t.is(leafValue('geopoint', '1.5 2.5 3 4', { wkt: true }), 'POINT (2.5 1.5 3)');
  t.is(leafValue('geopoint', 'nonsense', { wkt: true }), null);
  t.deepEqual(leafValue('geotrace', '1 2 3 4;5 6 7 0;', { wkt: false }),
    { type: 'LineString', coordinates: [[2, 1, 3], [6, 5, 7]], properties: { accuracies: [4, null] } });
  t.is(leafValue('geotrace', '1 2;5 6', { wkt: true }), 'LINESTRING (2 1,6 5)');
  t.deepEqual(leafValue('geoshape', '1 2;3 4;1 2', { wkt: false }), { type: 'Polygon', coordinates: [[[2, 1], [4, 3], [2, 1]]] });
  t.is(leafValue('geoshape', '1 2 0 0;3 4 0 0;1 2 0 0', { wkt: true }), 'POLYGON ((2 1 0,4 3 0,2 1 0))');
});

test('a submission of every scalar and geo type converts to typed OData values', (t) => {
  const sub = submission('datatypes-all-scalar-and-geo', 'briefcase-export-format.xml', allTypes.fields);
  const entity = submissionEntity(allTypes.schema, { instance_id: sub.instanceId, data: sub.data, ...system }, { wkt: false, expand: false });
  t.like(entity, {
    __id: 'uuid:39f3dd36-161e-45cb-a1a4-395831d253a7',
    some_string: 'Hola', some_int: 123, some_decimal: 123.456, some_date: '2018-04-26', some_time: '08:56:00.000Z',
    some_date_time: '2018-04-26T08:56:00.000Z', some_barcode: '000049499094',
    meta: { instanceID: 'uuid:39f3dd36-161e-45cb-a1a4-395831d253a7' },
  });
  t.deepEqual(entity.some_geopoint, { type: 'Point', coordinates: [-1.9869671, 43.3149254, 71.80000305175781], properties: { accuracy: 15.478 } });
  t.is((entity.some_geotrace as any).coordinates.length, 3);
  t.is((entity.some_geoshape as any).type, 'Polygon');
  t.deepEqual(entity.__system, {
    submissionDate: '2024-01-02T03:04:05.678Z', updatedAt: null, submitterId: '5', submitterName: 'Alice',
    attachmentsPresent: 0, attachmentsExpected: 0, status: null, reviewState: null, deviceId: null, edits: 0,
    formVersion: '', deletedAt: null,
  });
  const wkt = submissionEntity(allTypes.schema, { instance_id: sub.instanceId, data: sub.data, ...system }, { wkt: true, expand: false });
  t.is(wkt.some_geopoint, 'POINT (-1.9869671 43.3149254 71.80000305175781)');
  t.regex(wkt.some_geoshape as string, /^POLYGON \(\(-1.98638331\d+ 43.3151331\d+ 0,/);
});

test('empty values are null and missing groups are still objects of nulls', (t) => {
  const sub = submission('datatypes-all-scalar-and-geo', 'briefcase-export-format-empty-values.xml', allTypes.fields);
  const entity = submissionEntity(allTypes.schema, { instance_id: sub.instanceId, data: sub.data, ...system }, { wkt: false, expand: false });
  t.is(entity.some_int, null);
  t.is(entity.some_geopoint, null);
  const bare = submissionEntity(selects.schema, { instance_id: 'x', data: {}, ...system }, { wkt: false, expand: false });
  t.deepEqual(bare.some_group, { yet_another_string: null });
  t.is(bare.some_string, null);
});

test('select multiples stay space-separated strings and groups nest', (t) => {
  const sub = submission('selects-choice-lists', 'briefcase-export-format.xml', selects.fields);
  const entity = submissionEntity(selects.schema, { instance_id: sub.instanceId, data: sub.data, ...system }, { wkt: false, expand: false });
  t.like(entity, { some_string: 'CHOICE_1', another_string: 'CHOICE_2', some_group: { yet_another_string: 'CHOICE_1' } });
});

test('encrypted submissions have only __id and __system', (t) => {
  const entity = submissionEntity(selects.schema, { instance_id: 'enc', data: null, ...system, status: 'notDecrypted' }, { wkt: false, expand: false });
  t.deepEqual(Object.keys(entity), ['__id', '__system']);
  t.is((entity.__system as any).status, 'notDecrypted');
});

const nestedSub = submission('repeats-nested-three-levels', 'briefcase-export-format.xml', nested.fields);
const id = nestedSub.instanceId;
const nestedRow: SubmissionRow = { instance_id: id, data: nestedSub.data, ...system };

test('repeats in the Submissions table are navigation links', (t) => {
  const entity = submissionEntity(nested.schema, nestedRow, { wkt: false, expand: false });
  t.deepEqual(Object.keys(entity), ['__id', '__system', 'meta', 'g1@odata.navigationLink']);
  t.is(entity['g1@odata.navigationLink'], `Submissions('${encodeURIComponent(id)}')/g1`);
});

test('repeat rows carry Central\'s sha1 ids, parent keys and links to their nested repeats', (t) => {
  const g1 = resolveTable(nested.schema, 'Submissions.g1')!;
  const g2 = resolveTable(nested.schema, 'Submissions.g1.g2')!;
  const g3 = resolveTable(nested.schema, 'Submissions.g1.g2.g3')!;
  const g1Id = (i: number) => sha1(`Submissions#${id}%%g1#${i}`);
  const g2Id = (i: number, j: number) => sha1(`Submissions#${id}%%g1#${i}%%g2#${j}`);
  const first = repeatEntity(g1, { instance_id: id, data: (nestedSub.data.g1 as DataTree[])[0], indexes: [0] }, { wkt: false, expand: false });
  t.deepEqual(first, {
    __id: g1Id(0), t1: 'some text 1',
    'g2@odata.navigationLink': `Submissions('${encodeURIComponent(id)}')/g1('${g1Id(0)}')/g2`,
    '__Submissions-id': id,
  });
  const g2Row = repeatEntity(g2, { instance_id: id, data: ((nestedSub.data.g1 as DataTree[])[2].g2 as DataTree[])[0], indexes: [2, 0] }, { wkt: false, expand: false });
  t.is(g2Row.__id, g2Id(2, 0));
  t.is(g2Row['__Submissions-g1-id'], g1Id(2));
  t.is(g2Row['g3@odata.navigationLink'], `Submissions('${encodeURIComponent(id)}')/g1('${g1Id(2)}')/g2('${g2Id(2, 0)}')/g3`);
  const g3Row = repeatEntity(g3, { instance_id: id, data: { t3: 'x' }, indexes: [2, 0, 3] }, { wkt: false, expand: false });
  t.is(g3Row.__id, sha1(`Submissions#${id}%%g1#2%%g2#0%%g3#3`));
  t.is(g3Row['__Submissions-g1-g2-id'], g2Id(2, 0));
});

test('$expand=* nests every repeat with the same ids as the repeat tables', (t) => {
  const entity = submissionEntity(nested.schema, nestedRow, { wkt: false, expand: true }) as any;
  t.is(entity.g1.length, 3);
  t.is(entity.g1[0].__id, sha1(`Submissions#${id}%%g1#0`));
  t.is(entity.g1[0].g2[1].t2, 'some text 1.2');
  t.is(entity.g1[0].g2[1].__id, sha1(`Submissions#${id}%%g1#0%%g2#1`));
  t.is(entity.g1[2].g2[0].g3.length, 4);
  t.is(entity.g1[2].g2[0].g3[3].t3, 'some text 3.1.4');
  t.is(entity.g1[2].g2[0]['g3@odata.navigationLink'], `Submissions('${encodeURIComponent(id)}')/g1('${entity.g1[2].__id}')/g2('${entity.g1[2].g2[0].__id}')/g3`);
  t.false('g2' in entity.g1[1].g2[0]);
});

test('repeats inside groups link through the group', (t) => {
  const fields = [
    { path: '/children', name: 'children', type: 'structure' },
    { path: '/children/child', name: 'child', type: 'repeat' },
    { path: '/children/child/name', name: 'name', type: 'string' },
  ];
  const schema = formSchema(fields);
  const entity = submissionEntity(schema, { instance_id: 'double', data: { children: { child: [{ name: 'a' }, { name: 'b' }] } }, ...system }, { wkt: false, expand: false });
  t.deepEqual(entity.children, { 'child@odata.navigationLink': "Submissions('double')/children/child" });
  const table = resolveTable(schema, 'Submissions.children.child')!;
  const row = repeatEntity(table, { instance_id: 'double', data: { name: 'b' }, indexes: [1] }, { wkt: false, expand: false });
  t.deepEqual(row, { __id: sha1('Submissions#double%%children#%%child#1'), name: 'b', '__Submissions-id': 'double' });
});

function problem(t: any, fn: () => unknown): Problem {
  const err = t.throws(fn) as Problem;
  t.true(err instanceof Problem);
  return err;
}

test('$select keeps chosen fields, whole groups and chosen metadata', (t) => {
  const table = resolveTable(selects.schema, 'Submissions')!;
  const sel = selection(selects.schema, table, ['__id', 'another_string', 'some_group', '__system/submitterId']);
  const entity = submissionEntity(selects.schema, { instance_id: 'x', data: { another_string: 'a', some_string: 'b', some_group: { yet_another_string: 'c' } }, ...system },
    { wkt: false, expand: false, selection: sel });
  t.deepEqual(entity, { __id: 'x', __system: { submitterId: '5' }, another_string: 'a', some_group: { yet_another_string: 'c' } });
  const leafOnly = submissionEntity(selects.schema, { instance_id: 'x', data: { some_group: { yet_another_string: 'c' } }, ...system },
    { wkt: false, expand: false, selection: selection(selects.schema, table, ['some_group/yet_another_string']) });
  t.deepEqual(leafOnly, { some_group: { yet_another_string: 'c' } });
  const withSystem = submissionEntity(selects.schema, { instance_id: 'x', data: {}, ...system },
    { wkt: false, expand: false, selection: selection(selects.schema, table, ['__system']) });
  t.deepEqual(Object.keys(withSystem), ['__system']);
});

test('$select errors: unknown property 400.23, a field inside a repeat 400.24', (t) => {
  const submissions = resolveTable(nested.schema, 'Submissions')!;
  const unknown = problem(t, () => selection(nested.schema, submissions, ['nickname']));
  t.is(unknown.code, 400.23);
  t.is(unknown.message, "Could not find a property named 'nickname'");
  const inRepeat = problem(t, () => selection(nested.schema, submissions, ['g1/t1']));
  t.is(inRepeat.code, 400.24);
  t.is(inRepeat.message, "The given OData select property 'g1/t1' uses features not supported by this server.");
  const g1 = resolveTable(nested.schema, 'Submissions.g1')!;
  t.is(problem(t, () => selection(nested.schema, g1, ['__system/submitterId'])).code, 400.23);
  t.is(problem(t, () => selection(nested.schema, g1, ['g2/t2'])).code, 400.24);
});

test('$select in repeat tables: relative paths and the parent key on request', (t) => {
  const g1 = resolveTable(nested.schema, 'Submissions.g1')!;
  const sel = selection(nested.schema, g1, ['t1', '__Submissions-id']);
  const row = repeatEntity(g1, { instance_id: id, data: (nestedSub.data.g1 as DataTree[])[0], indexes: [0] }, { wkt: false, expand: false, selection: sel });
  t.deepEqual(row, { t1: 'some text 1', '__Submissions-id': id });
});

test('data documents: value, then context, next link and count', (t) => {
  const doc = dataDocumentStart + [JSON.stringify({ a: 1 }), JSON.stringify({ a: 2 })].join(',')
    + dataDocumentEnd({ serviceUrl: 'https://x.test/v1/projects/1/forms/f.svc', table: 'Submissions', nextLink: 'https://n', count: 7 });
  t.deepEqual(JSON.parse(doc), {
    value: [{ a: 1 }, { a: 2 }],
    '@odata.context': 'https://x.test/v1/projects/1/forms/f.svc/$metadata#Submissions',
    '@odata.nextLink': 'https://n',
    '@odata.count': 7,
  });
  t.deepEqual(JSON.parse(dataDocumentStart + dataDocumentEnd({ serviceUrl: 'u', table: 'Submissions.g1' })),
    { value: [], '@odata.context': 'u/$metadata#Submissions.g1' });
});

test('next links drop $skip, keep the other options and carry the skiptoken', (t) => {
  const link = nextLinkFor('https://x.test/v1/projects/1/forms/f.svc/Submissions?%24top=2&$skip=4&$count=true&$filter=__id%20ne%20%27a%27', '01abc=');
  const url = new URL(link);
  t.is(url.pathname, '/v1/projects/1/forms/f.svc/Submissions');
  t.is(url.searchParams.get('$top'), '2');
  t.is(url.searchParams.get('$skip'), null);
  t.is(url.searchParams.get('$count'), 'true');
  t.is(url.searchParams.get('$filter'), "__id ne 'a'");
  t.is(url.searchParams.get('$skiptoken'), '01abc=');
});
