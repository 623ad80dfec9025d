// Two projects and a user for each project role: alice (admin), bob (manager of A), chelsea (viewer of A),
// dana (data collector on A), eve (manager of B), and an App User of A.
import { withFixtures, type Fixtures } from '../helpers/server.ts';

export interface ProjectFixtures extends Fixtures {
  projectA: number;
  projectB: number;
  dana: { id: number; token: string };
  eve: { id: number; token: string };
  appUser: { id: number; token: string };
}

export async function withProjects(): Promise<ProjectFixtures> {
  const f = await withFixtures();
  const { server, alice } = f;
  const create = async (name: string) => {
    const res = await server.request('/v1/projects', { method: 'POST', token: alice.token, body: { name } });
    if (res.status !== 200) throw new Error(`creating project ${name}: ${res.status} ${res.text}`);
    return res.body.id as number;
  };
  const projectA = await create('Project A');
  const projectB = await create('Project B');
  const user = async (email: string) => {
    const id = await server.createUser(email);
    return { id, token: await server.login(email) };
  };
  const dana = await user('dana@getodk.org');
  const eve = await user('eve@getodk.org');
  const assign = async (project: number, role: string, actor: number) => {
    const res = await server.request(`/v1/projects/${project}/assignments/${role}/${actor}`, { method: 'POST', token: alice.token });
    if (res.status !== 200) throw new Error(`assigning ${role}: ${res.status} ${res.text}`);
  };
  await assign(projectA, 'manager', f.bob.id);
  await assign(projectA, 'viewer', f.chelsea.id);
  await assign(projectA, 'formfill', dana.id);
  await assign(projectB, 'manager', eve.id);
  const fk = await server.request(`/v1/projects/${projectA}/app-users`, { method: 'POST', token: alice.token, body: { displayName: 'Collector 1' } });
  if (fk.status !== 200) throw new Error(`creating app user: ${fk.status} ${fk.text}`);
  return { ...f, projectA, projectB, dana, eve, appUser: { id: fk.body.id, token: fk.body.token } };
}

/** A request as an App User goes through the /v1/key/<token>/ prefix. */
export function keyPath(token: string, path: string): string {
  return `/v1/key/${encodeURIComponent(token)}${path.replace(/^\/v1/, '')}`;
}
