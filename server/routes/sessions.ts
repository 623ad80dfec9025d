// Logging in and out: POST/DELETE /v1/sessions…, GET /v1/sessions/restore.
import { Router, type Request, type Response } from 'express';
import { body, transaction, one, success } from '../http.ts';
import { problems } from '../errors.ts';
import { isHttps, type Session } from '../auth.ts';

export const sessions = Router();

function sessionJson(s: Session) {
  return { token: s.token, csrf: s.csrf, createdAt: s.created_at, expiresAt: s.expires_at };
}

function cookieName(req: Request) {
  return isHttps(req) ? '__Host-session' : 'session';
}

function setSessionCookies(req: Request, res: Response, s: Session) {
  const options = { path: '/', expires: s.expires_at, sameSite: 'strict' as const, secure: isHttps(req) };
  res.cookie(cookieName(req), s.token, { ...options, httpOnly: true });
  res.cookie('__csrf', s.csrf, options);
}

function clearSessionCookies(req: Request, res: Response) {
  const options = { path: '/', expires: new Date(0), sameSite: 'strict' as const, secure: isHttps(req) };
  res.cookie(cookieName(req), 'null', { ...options, httpOnly: true });
  res.cookie('__csrf', 'null', options);
}

sessions.use('/v1/sessions', (_req, res, next) => { res.set('Cache-Control', 'no-store'); next(); });

sessions.post('/v1/sessions', async (req, res) => {
  const b = body(req);
  const email = typeof b.email === 'string' ? b.email : null;
  const password = typeof b.password === 'string' ? b.password : null;
  const session = await transaction(req, (db) =>
    one<Session & { token: string | null }>(db, 'select * from app_public.log_in($1, $2)', [email, password]));
  if (!session.token) throw problems.authenticationFailed();
  setSessionCookies(req, res, session);
  res.json(sessionJson(session));
});

sessions.get('/v1/sessions/restore', (req, res) => {
  if (!req.auth.session) throw problems.authenticationFailed();
  res.json(sessionJson(req.auth.session));
});

sessions.delete('/v1/sessions/current', async (req, res) => {
  if (req.auth.actorId === null) throw problems.authenticationFailed();
  const session = req.auth.session;
  if (!session) throw problems.notFound();
  await transaction(req, (db) => db.query('select app_public.end_session($1)', [session.token]));
  if (req.auth.via === 'cookie') clearSessionCookies(req, res);
  res.json(success);
});

sessions.delete('/v1/sessions/:token', async (req, res) => {
  await transaction(req, (db) => db.query('select app_public.end_session($1)', [req.params.token]));
  if (req.auth.session?.token === req.params.token && req.auth.via === 'cookie') clearSessionCookies(req, res);
  res.json(success);
});
