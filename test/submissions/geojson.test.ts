// Submission geodata as GeoJSON, through HTTP.
import test from 'ava';
import { withFixtures, type Fixtures } from '../helpers/server.ts';
import { createProject, createForm, submitOpenRosa, submitRest, sampleSubmission } from './helpers.ts';

let f: Fixtures;
let pid: number;
const sample = 'uuid:39f3dd36-161e-45cb-a1a4-395831d253a7';

const instance = (id: string, point: string, shape = '') => `<data id="all-data-types"><some_string>x</some_string>`
  + `<some_geopoint>${point}</some_geopoint><some_geoshape>${shape}</some_geoshape><meta><instanceID>${id}</instanceID></meta></data>`;

test.before(async () => {
  f = await withFixtures();
  pid = await createProject(f.server, f.alice.token, 'geo');
  await createForm(f.server, f.alice.token, pid, 'datatypes-all-scalar-and-geo');
  await submitOpenRosa(f.server, `/v1/projects/${pid}/submission`, sampleSubmission('datatypes-all-scalar-and-geo/briefcase-export-format.xml'), { token: f.alice.token });
  await submitRest(f.server, f.alice.token, pid, 'all-data-types', instance('uuid:second', '-52.123783 170.511231 654 5'));
  await submitRest(f.server, f.alice.token, pid, 'all-data-types', instance('uuid:no-geo', ''));
  await submitRest(f.server, f.alice.token, pid, 'all-data-types', instance('uuid:bad-geo', '95 10'));
});
test.after.always(() => f?.server.close());

const geo = (path: string, token = f.alice.token) => f.server.request(`/v1/projects/${pid}/forms/all-data-types${path}`, { token });

test.serial('submissions.geojson: one feature per submission with geodata, from the first geo field, named in properties.fieldpath', async (t) => {
  const res = await geo('/submissions.geojson');
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^application\/json/);
  t.is(res.body.type, 'FeatureCollection');
  t.deepEqual(res.body.features.map((x: { id: string }) => x.id).sort(), [sample, 'uuid:second']);
  const second = res.body.features.find((x: { id: string }) => x.id === 'uuid:second');
  t.deepEqual(second, { type: 'Feature', id: 'uuid:second', geometry: { type: 'Point', coordinates: [170.511231, -52.123783, 654] },
    properties: { fieldpath: '/some_geopoint' } });
});

test.serial('fieldpath picks the field (no fieldpath property then); traces and shapes become LineString and Polygon', async (t) => {
  const shape = await geo('/submissions.geojson?fieldpath=/some_geoshape');
  t.is(shape.body.features.length, 1);
  const feature = shape.body.features[0];
  t.is(feature.id, sample);
  t.is(feature.properties, null);
  t.is(feature.geometry.type, 'Polygon');
  t.is(feature.geometry.coordinates[0].length, 5);
  t.deepEqual(feature.geometry.coordinates[0][0], [-1.9863833114504814, 43.31513313655808, 0]);
  t.deepEqual(feature.geometry.coordinates[0][0], feature.geometry.coordinates[0][4]);
  const trace = await geo('/submissions.geojson?fieldpath=/some_geotrace');
  t.is(trace.body.features[0].geometry.type, 'LineString');
  t.is(trace.body.features[0].geometry.coordinates.length, 3);
  const none = await geo('/submissions.geojson?fieldpath=/some_string');
  t.deepEqual(none.body, { type: 'FeatureCollection', features: [] });
});

test.serial('$filter and limit narrow the collection; deleted=true lists deleted submissions', async (t) => {
  const filtered = await geo(`/submissions.geojson?$filter=${encodeURIComponent("__id eq 'uuid:second'")}`);
  t.deepEqual(filtered.body.features.map((x: { id: string }) => x.id), ['uuid:second']);
  const limited = await geo('/submissions.geojson?limit=1');
  t.is(limited.body.features.length, 1);
  const bad = await geo(`/submissions.geojson?$filter=${encodeURIComponent('nonsense eq')}`);
  t.is(bad.status, 400);
  t.is(bad.body.code, 400.18);
  t.is((await f.server.request(`/v1/projects/${pid}/forms/all-data-types/submissions/uuid:second`, { method: 'DELETE', token: f.alice.token })).status, 200);
  t.deepEqual((await geo('/submissions.geojson?deleted=true')).body.features.map((x: { id: string }) => x.id), ['uuid:second']);
  t.deepEqual((await geo('/submissions.geojson')).body.features.map((x: { id: string }) => x.id), [sample]);
  await f.server.request(`/v1/projects/${pid}/forms/all-data-types/submissions/uuid:second/restore`, { method: 'POST', token: f.alice.token });
});

test.serial('one submission and one version as GeoJSON; 404 for unknown ones, 403 without rights', async (t) => {
  const one = await geo(`/submissions/${sample}.geojson`);
  t.is(one.status, 200);
  t.is(one.body.features.length, 1);
  t.is(one.body.features[0].geometry.type, 'Point');
  t.deepEqual(one.body.features[0].geometry.coordinates, [-1.9869671, 43.3149254, 71.80000305175781]);
  t.deepEqual(one.body.features[0].properties, { fieldpath: '/some_geopoint' });
  t.deepEqual((await geo('/submissions/uuid:no-geo.geojson')).body, { type: 'FeatureCollection', features: [] });
  t.is((await geo('/submissions/uuid:unknown.geojson')).status, 404);
  t.is((await geo(`/submissions/${sample}.geojson`, f.bob.token)).status, 403);

  // An edit moves the point; each version keeps its own.
  const edit = `<data id="all-data-types"><some_geopoint>10 20</some_geopoint><meta><instanceID>uuid:second-v2</instanceID>`
    + '<deprecatedID>uuid:second</deprecatedID></meta></data>';
  t.is((await f.server.request(`/v1/projects/${pid}/forms/all-data-types/submissions/uuid:second`,
    { method: 'PUT', token: f.alice.token, raw: edit, headers: { 'content-type': 'application/xml' } })).status, 200);
  const current = await geo('/submissions/uuid:second.geojson');
  t.deepEqual(current.body.features[0].geometry, { type: 'Point', coordinates: [20, 10] });
  const v1 = await geo('/submissions/uuid:second/versions/uuid:second.geojson');
  t.is(v1.body.features[0].id, 'uuid:second');
  t.deepEqual(v1.body.features[0].geometry.coordinates, [170.511231, -52.123783, 654]);
  const v2 = await geo('/submissions/uuid:second/versions/uuid:second-v2.geojson');
  t.is(v2.body.features[0].id, 'uuid:second-v2');
  t.is((await geo('/submissions/uuid:second/versions/uuid:nope.geojson')).status, 404);
});
