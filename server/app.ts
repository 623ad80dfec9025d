// The HTTP application: body parsing, authentication, routes by resource, Central's errors.
import type { IncomingMessage } from 'node:http';
import express from 'express';
import type { Database } from './db.ts';
import type { Config } from './config.ts';
import { authenticate, keyPrefix } from './auth.ts';
import { errorHandler, notFoundHandler, problems } from './errors.ts';
import { sessions } from './routes/sessions.ts';
import { users } from './routes/users.ts';
import { roles } from './routes/roles.ts';
import { preferences } from './routes/preferences.ts';
import { audits } from './routes/audits.ts';
import { mountGraphql } from './graphql.ts';
import { projects } from './routes/projects.ts';
import { appUsers } from './routes/app-users.ts';
import { serverConfig } from './routes/config.ts';
import { odata } from './routes/odata.ts';
import { forms } from './routes/forms.ts';
import { drafts } from './routes/drafts.ts';
import { formAttachments } from './routes/form-attachments.ts';
import { openRosa } from './routes/openrosa.ts';
import { publicLinks } from './routes/public-links.ts';
import { submissions } from './routes/submissions.ts';
import { submissionOpenRosa } from './routes/submission-openrosa.ts';
import { submissionExports } from './routes/submission-exports.ts';
import { submissionGeojson } from './routes/submission-geojson.ts';
import { projectKey } from './routes/project-key.ts';
import { enketo } from './routes/enketo.ts';
import { datasets, entityListFiles } from './routes/datasets.ts';
import { odataEntities } from './routes/odata-entities.ts';
import { entities } from './routes/entities.ts';

/** JSON bodies are read whatever their declared type, except the XML, multipart and binary bodies other routes stream. */
function isJsonBody(req: IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  return type === '' || type.includes('json') || type.startsWith('text/plain');
}

export async function createApp(db: Database, config: Config): Promise<express.Express> {
  const app = express();
  app.locals.db = db;
  app.locals.config = config;
  app.set('trust proxy', true);
  app.set('query parser', 'extended');
  app.disable('x-powered-by');

  app.use(keyPrefix);
  app.use(express.json({ limit: config.jsonLimit, type: isJsonBody, strict: false }));
  app.use(authenticate(db));

  app.use(sessions, users, roles, preferences, audits);
  app.use(projects, appUsers, serverConfig);
  app.use(odata); // before forms: …/forms/x.svc is not a form id
  app.use(odataEntities, entityListFiles); // before forms and datasets: …/datasets/x.svc, and <dataset>.csv attachments served from entities
  app.use(forms);
  app.use(drafts);
  app.use(formAttachments);
  app.use(openRosa);
  app.use(publicLinks);
  app.use(submissionOpenRosa);
  app.use(submissionExports);
  app.use(submissionGeojson); // before submissions: …/submissions/:instanceId.geojson is not an instanceId
  app.use(projectKey);
  app.use(enketo); // before submissions: owns …/submissions/:instanceId/edit
  app.use(submissions);
  app.use(datasets);
  app.use(entities);

  await mountGraphql(app, db, { production: config.production });

  app.use('/v1', notFoundHandler);
  app.use((_req, _res, next) => next(problems.notFound()));
  app.use(errorHandler);
  return app;
}
