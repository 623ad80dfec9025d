// GraphQL for internal tools: PostGraphile over app_public, read-only, every query as the request role
// with the caller's actor set, so the same row-level security applies as everywhere else.
import type { Express } from 'express';
import type { Server } from 'node:http';
import { postgraphile, type PostGraphileInstance } from 'postgraphile';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/express/v4';
import type { Database } from './db.ts';

export async function mountGraphql(app: Express, db: Database, options: { production: boolean; server?: Server | null }): Promise<PostGraphileInstance> {
  const pgl = postgraphile({
    extends: [PostGraphileAmberPreset],
    pgServices: [makePgService({
      pool: db.requests,
      schemas: ['app_public'],
      // Introspect as the request role, so only what it is granted appears in the schema.
      pgSettingsForIntrospection: { role: 'fieldbase_request' },
      pgSettings(ctx) {
        const req = ctx.expressv4?.req;
        return { role: 'fieldbase_request', 'fieldbase.actor_id': req?.auth?.actorId == null ? '' : String(req.auth.actorId) };
      },
    })],
    schema: {
      // Read-only to start: no table mutations, no functions as mutations.
      defaultBehavior: '-insert -update -delete -mutationField',
    },
    grafserv: {
      graphqlPath: '/v1/graphql',
      graphiql: !options.production,
      graphiqlPath: '/v1/graphiql',
      graphiqlOnGraphQLGET: false,
      watch: false,
      maskError: options.production ? undefined : (error) => error,
    },
    // Query plans only when asked for (they show the SQL): FIELDBASE_GRAPHQL_EXPLAIN=on, never in production.
    grafast: { explain: !options.production && process.env.FIELDBASE_GRAPHQL_EXPLAIN === 'on' },
  });
  const serv = pgl.createServ(grafserv);
  await serv.addTo(app, options.server ?? null, false);
  return pgl;
}
