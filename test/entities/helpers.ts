// Helpers for dataset and entity tests: the project fixtures (admin, manager, viewer, data collector, a manager
// of another project, an App User), entity forms from ../shared/forms and their sample submissions.
import fs from 'node:fs';
import path from 'node:path';
import type { TestServer } from '../helpers/server.ts';
import { submitOpenRosa } from '../submissions/helpers.ts';

export { withProjects, type ProjectFixtures } from '../projects/fixtures.ts';

export const formsDir = path.resolve(import.meta.dirname, '../../../shared/forms');
export const entityForm = (name: string) => fs.readFileSync(path.join(formsDir, `${name}.xml`), 'utf8');
export const entitySubmission = (form: string, file: string) =>
  fs.readFileSync(path.join(formsDir, 'submissions', form, file), 'utf8');

/** Uploads and publishes a form; returns its xmlFormId. */
export async function publishForm(server: TestServer, token: string, projectId: number, xml: string): Promise<string> {
  const res = await server.request(`/v1/projects/${projectId}/forms?publish=true&ignoreWarnings=true`,
    { method: 'POST', token, raw: xml, headers: { 'content-type': 'application/xml' } });
  if (res.status !== 200) throw new Error(`publishing form: ${res.status} ${res.text}`);
  return res.body.xmlFormId;
}

/** Submits XML as Collect does (OpenRosa) and runs the queued jobs (entity processing included). */
export async function submit(server: TestServer, token: string, projectId: number, _xmlFormId: string, xml: string) {
  const res = await submitOpenRosa(server, `/v1/projects/${projectId}/submission`, xml, { token });
  if (res.status !== 201) throw new Error(`submitting: ${res.status} ${res.text}`);
  await server.drainJobs();
  return res.body;
}

/** Replaces the instanceID of a sample submission (so one sample can be sent several times). */
export const withInstanceId = (xml: string, id: string) => xml.replace(/<instanceID>[^<]*<\/instanceID>/, `<instanceID>uuid:${id}</instanceID>`);
