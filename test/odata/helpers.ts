// OData test data: a small form with a group, a repeat inside a group, typed and geo questions, and
// submissions for it, sent through OpenRosa like Collect does.
import type { TestServer } from '../helpers/server.ts';
import { submitOpenRosa } from '../submissions/helpers.ts';

export const peopleForm = `<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">
  <h:head>
    <h:title>People</h:title>
    <model>
      <instance>
        <data id="people" version="1">
          <name/><age/><birthday/><seen/><location/>
          <household><size/></household>
          <children><child jr:template=""><child_name/><child_age/></child></children>
          <meta><instanceID/></meta>
        </data>
      </instance>
      <bind nodeset="/data/name" type="string"/>
      <bind nodeset="/data/age" type="int"/>
      <bind nodeset="/data/birthday" type="date"/>
      <bind nodeset="/data/seen" type="dateTime"/>
      <bind nodeset="/data/location" type="geopoint"/>
      <bind nodeset="/data/household/size" type="int"/>
      <bind nodeset="/data/children/child/child_name" type="string"/>
      <bind nodeset="/data/children/child/child_age" type="int"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/name"><label>Name</label></input>
    <input ref="/data/age"><label>Age</label></input>
    <input ref="/data/birthday"><label>Birthday</label></input>
    <input ref="/data/seen"><label>Seen</label></input>
    <input ref="/data/location"><label>Location</label></input>
    <group ref="/data/household"><input ref="/data/household/size"><label>Size</label></input></group>
    <group ref="/data/children"><repeat nodeset="/data/children/child">
      <input ref="/data/children/child/child_name"><label>Child</label></input>
      <input ref="/data/children/child/child_age"><label>Child age</label></input>
    </repeat></group>
  </h:body>
</h:html>`;

export interface Person {
  id: string;
  name: string;
  age?: number;
  birthday?: string;
  seen?: string;
  location?: string;
  size?: number;
  children?: Array<{ name: string; age: number }>;
}

export function personXml(p: Person): string {
  const leaf = (name: string, value: unknown) => (value === undefined ? `<${name}/>` : `<${name}>${value}</${name}>`);
  return `<data id="people" version="1">${leaf('name', p.name)}${leaf('age', p.age)}${leaf('birthday', p.birthday)}`
    + `${leaf('seen', p.seen)}${leaf('location', p.location)}<household>${leaf('size', p.size)}</household>`
    + `<children>${(p.children ?? []).map((c) => `<child><child_name>${c.name}</child_name><child_age>${c.age}</child_age></child>`).join('')}</children>`
    + `<meta><instanceID>${p.id}</instanceID></meta></data>`;
}

/** Submits over OpenRosa; with a draft token, to the form's draft (the draft-testing endpoint). */
export async function submit(server: TestServer, token: string, projectId: number, xml: string, draftToken?: string) {
  const url = draftToken ? `/v1/test/${draftToken}/projects/${projectId}/forms/people/draft/submission` : `/v1/projects/${projectId}/submission`;
  const res = await submitOpenRosa(server, url, xml, { token: draftToken ? null : token });
  if (res.status !== 201) throw new Error(`submission: ${res.status} ${res.text}`);
}
