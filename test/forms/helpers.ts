// Shared by the forms tests: the corpus, uploads, projects and App Users through HTTP.
import fs from 'node:fs';
import path from 'node:path';
import type { TestServer } from '../helpers/server.ts';

export const corpus = path.resolve('../shared/forms');
export const readForm = (name: string) => fs.readFileSync(path.join(corpus, `${name}.xml`), 'utf8');
export const formNames = fs.readdirSync(corpus).filter((f) => f.endsWith('.xml')).map((f) => f.slice(0, -4));

/** Forms Central refuses, with the problem code (see test/xform). */
export const refused: Record<string, number> = {
  'entities-2024.1-create-or-update-in-repeat': 400.25,
  'entities-invalid-old-version-2020.1': 400.25,
  'entities-invalid-future-version-2452.2': 400.25,
};

export async function createProject(server: TestServer, token: string, name = 'Forms project'): Promise<number> {
  const res = await server.request('/v1/projects', { method: 'POST', token, body: { name } });
  if (res.status !== 200) throw new Error(`project: ${res.status} ${res.text}`);
  return res.body.id;
}

export function upload(server: TestServer, token: string | null, projectId: number, xml: string | Buffer, query = '', contentType = 'application/xml') {
  return server.request(`/v1/projects/${projectId}/forms${query}`, { method: 'POST', token, raw: xml, headers: { 'content-type': contentType } });
}

export async function createAppUser(server: TestServer, token: string, projectId: number, displayName: string) {
  const res = await server.request(`/v1/projects/${projectId}/app-users`, { method: 'POST', token, body: { displayName } });
  if (res.status !== 200) throw new Error(`app user: ${res.status} ${res.text}`);
  return { id: res.body.id as number, token: res.body.token as string };
}
