// OpenRosa submission: POST /v1/projects/:projectId/submission (also under /v1/key/:token/, which auth.ts
// strips) and the draft-testing /v1/test/:token/projects/:projectId/forms/:xmlFormId/draft/submission.
// Every answer, success or error, is an OpenRosaResponse with the OpenRosa headers.
import { Router, type Request, type Response } from 'express';
import { transaction, idParam } from '../http.ts';
import { toProblem } from '../errors.ts';
import { readMultipart, sendOpenRosa, sendPreflight, isMultipart, problemsOf } from '../formats/openrosa-submission.ts';
import { ingest, deviceIdOf } from './submission-common.ts';

export const submissionOpenRosa = Router();

async function receive(req: Request, res: Response, draftToken: string | null) {
  try {
    const projectId = idParam(String(req.params.projectId));
    if (!isMultipart(req)) throw problemsOf.missingXml();
    const body = await readMultipart(req);
    const result = await transaction(req, (db) => ingest(db, {
      projectId, xml: body.xml, files: body.files, draft: draftToken !== null, draftToken,
      xmlFormId: draftToken === null ? undefined : String(req.params.xmlFormId),
      deviceId: deviceIdOf(req), userAgent: req.get('user-agent') ?? null,
    }));
    void result;
    sendOpenRosa(res, 201, '', 'full submission upload was successful!');
  } catch (err) {
    const problem = toProblem(err);
    if (problem.status >= 500) console.error(req.method, req.originalUrl, err);
    // OpenRosa clients answer a 401 challenge with credentials; anonymous callers get one.
    if (req.auth.actorId === null && draftToken === null && problem.code === 403.1) {
      res.set('WWW-Authenticate', 'Basic charset="UTF-8"');
      sendOpenRosa(res, 401, 'error', 'Could not authenticate with the provided credentials.');
      return;
    }
    sendOpenRosa(res, problem.status, 'error', problem.message);
  }
}

submissionOpenRosa.head('/v1/projects/:projectId/submission', (_req, res) => sendPreflight(res));
submissionOpenRosa.post('/v1/projects/:projectId/submission', (req, res) => receive(req, res, null));
submissionOpenRosa.head('/v1/test/:token/projects/:projectId/forms/:xmlFormId/draft/submission', (_req, res) => sendPreflight(res));
submissionOpenRosa.post('/v1/test/:token/projects/:projectId/forms/:xmlFormId/draft/submission',
  (req, res) => receive(req, res, String(req.params.token)));
