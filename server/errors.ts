// Central's numbered problems: the one place HTTP error bodies are made.
// SQL raises them as SQLSTATE 'FB' + status with the code in HINT and details (JSON) in DETAIL.
import type { ErrorRequestHandler, RequestHandler } from 'express';

export class Problem extends Error {
  constructor(readonly code: number, message: string, readonly details?: Record<string, unknown>) {
    super(message);
  }
  get status(): number { return Math.floor(this.code); }
}

export const problems = {
  unparseable: (format: string, rawLength: number) =>
    new Problem(400.1, `Could not parse the given data (${rawLength} chars) as ${format}.`, { format, rawLength }),
  missingParameter: (field: string) => new Problem(400.2, `Required parameter ${field} missing.`, { field }),
  missingParameters: (expected: string[], got: Record<string, unknown>) => new Problem(400.3,
    `Required parameters missing. Expected (${expected.join(', ')}), got (${Object.entries(got).map(([k, v]) => `${k}: ${v}`).join(', ')}).`,
    { expected, got }),
  invalidHeader: (field: string, value?: string) => new Problem(400.6,
    `An expected header field (${field}) did not match the expected format${value === undefined ? '' : ` (got: ${value || '[nothing]'})`}.`, { field, value }),
  unexpectedValue: (field: string, value: unknown, reason: string) =>
    new Problem(400.8, `Unexpected ${field} value ${value}; ${reason}`, { field, value, reason }),
  invalidDataType: (field: string, value: unknown, expected: string) =>
    new Problem(400.11, `Invalid input data type: expected (${field}) to be (${expected})`, { field, value, expected }),
  requestTooLarge: () => new Problem(413.1, 'Request body too large.'),
  authenticationFailed: () => new Problem(401.2, 'Could not authenticate with the provided credentials.'),
  httpsOnly: () => new Problem(401.3, 'This authentication method is only available over HTTPS'),
  insufficientRights: () => new Problem(403.1, 'The authentication you provided does not have rights to perform that action.'),
  notFound: () => new Problem(404.1, 'Could not find the resource you were looking for.'),
  unacceptableFormat: (allowed: string[]) =>
    new Problem(406.1, `Requested format not acceptable; this resource allows: ${allowed.join(',')}.`, { allowed }),
  notImplemented: (feature: string) =>
    new Problem(501.1, `The requested feature ${feature} is not supported by this server.`, { feature }),
  internal: () => new Problem(500.1, 'An unknown internal problem has occurred. Please try again later.'),
};

interface PgError extends Error { code?: string; hint?: string; detail?: string; constraint?: string; column?: string }

/** Turns a database error into Central's problem, or null when it is not one we can explain. */
export function problemFromDatabase(err: PgError): Problem | null {
  const state = err.code ?? '';
  if (state.startsWith('FB') && err.hint) {
    let details: Record<string, unknown> | undefined;
    try { details = err.detail ? JSON.parse(err.detail) : undefined; } catch { details = undefined; }
    if (details && Object.keys(details).length === 0) details = undefined;
    return new Problem(Number(err.hint), err.message, details);
  }
  switch (state) {
    case '42501': return problems.insufficientRights(); // insufficient_privilege, incl. RLS with-check failures
    case '22001': return new Problem(400.13, 'Length of value too long for a field');
    case '22P02': case '22007': case '22008': case '22003':
      return new Problem(400.11, `Invalid input data type: ${err.message}`);
    case '23514': return new Problem(400.8, `Unexpected value; ${err.message}`, { constraint: err.constraint });
    case '23502': return problems.missingParameter(err.column ?? 'unknown');
    case '23503': return problems.notFound();
    default: return null;
  }
}

export function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  const e = err as { type?: string; status?: number; body?: string } & PgError;
  if (e?.type === 'entity.too.large' || e?.status === 413) return problems.requestTooLarge();
  if (e?.type === 'entity.parse.failed') return problems.unparseable('json', (e.body ?? '').length);
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new Problem(400.37, 'Encoding not supported.');
  return problemFromDatabase(e) ?? problems.internal();
}

export function problemBody(problem: Problem) {
  return { message: problem.message, code: problem.code, ...(problem.details ? { details: problem.details } : {}) };
}

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const problem = toProblem(err);
  if (problem.code === 500.1) console.error(req.method, req.originalUrl, err);
  if (res.headersSent) { res.destroy(); return; }
  res.status(problem.status).type('application/json').send(JSON.stringify(problemBody(problem)));
};

export const notFoundHandler: RequestHandler = (_req, _res, next) => next(problems.notFound());
