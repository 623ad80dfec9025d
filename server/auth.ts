// Who is calling: a /v1/key/<token>/ prefix (App Users), ?st= (Public Links), Bearer tokens, HTTP Basic,
// or the session cookie (browser clients, HTTPS only). Credentials that are present but wrong fail with
// 401.2 at once, as Central does; no credentials at all means anonymous.
import type { Request, RequestHandler } from 'express';
import { parseCookie } from 'cookie';
import { problems } from './errors.ts';
import type { Database } from './db.ts';

export interface Session {
  token: string;
  csrf: string;
  actor_id: number;
  created_at: Date;
  expires_at: Date;
}

export interface Auth {
  actorId: number | null;
  session: Session | null;
  /** How the credentials arrived; cookie writes need CSRF proof. */
  via: 'none' | 'key' | 'bearer' | 'basic' | 'cookie' | 'st';
}

declare global {
  namespace Express {
    interface Request {
      auth: Auth;
    }
  }
}

const anonymous: Auth = { actorId: null, session: null, via: 'none' };

export function isHttps(req: Request): boolean {
  return req.protocol === 'https' || req.get('x-forwarded-proto') === 'https';
}

export const sessionCookieNames = ['__Host-session', 'session'];

/** Moves /v1/key/<token>/… to /v1/… and remembers the token. */
export const keyPrefix: RequestHandler = (req, _res, next) => {
  const match = /^\/v1\/key\/([^/]+)(\/.*)?$/.exec(req.url);
  if (match) {
    req.keyToken = decodeURIComponent(match[1]);
    req.url = `/v1${match[2] ?? '/'}`;
  }
  next();
};

declare global {
  namespace Express {
    interface Request {
      keyToken?: string;
    }
  }
}

function basicCredentials(header: string): { email: string; password: string } | null {
  const encoded = header.slice('basic '.length).trim();
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { email: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function authenticate(db: Database): RequestHandler {
  // Credentials are checked by security-definer functions the authenticator itself may call: one round trip.
  async function sessionFor(token: string): Promise<Session | null> {
    const { rows } = await db.requests.query('select * from app_hidden.session_by_token($1)', [token]);
    return rows[0]?.token ? rows[0] : null;
  }

  async function bySession(token: string, via: Auth['via']): Promise<Auth> {
    const session = await sessionFor(token);
    if (!session) throw problems.authenticationFailed();
    return { actorId: session.actor_id, session, via };
  }

  return async (req, _res, next) => {
    try {
      const authorization = req.get('authorization');
      const st = typeof req.query.st === 'string' ? req.query.st : null;
      if (req.keyToken) {
        req.auth = await bySession(req.keyToken, 'key');
      } else if (authorization && /^bearer /i.test(authorization)) {
        req.auth = await bySession(authorization.slice(7).trim(), 'bearer');
      } else if (authorization && /^basic /i.test(authorization)) {
        const credentials = basicCredentials(authorization);
        if (!credentials) throw problems.authenticationFailed();
        const { rows } = await db.requests.query('select app_hidden.authenticate_password($1, $2) as id',
          [credentials.email, credentials.password]);
        const actorId = rows[0].id as number | null;
        if (actorId === null) throw problems.authenticationFailed();
        req.auth = { actorId, session: null, via: 'basic' };
      } else if (st) {
        req.auth = await bySession(st, 'st');
      } else {
        req.auth = await fromCookie(req);
      }
      next();
    } catch (err) {
      next(err);
    }
  };

  async function fromCookie(req: Request): Promise<Auth> {
    const header = req.get('cookie');
    // Cookies are honoured only over HTTPS (directly or behind a proxy that says so), as Central does.
    if (!header || !isHttps(req)) return anonymous;
    const cookies = parseCookie(header);
    const token = sessionCookieNames.map((n) => cookies[n]).find(Boolean);
    if (!token) return anonymous;
    const session = await sessionFor(token);
    if (!session) return anonymous;
    const writing = !['GET', 'HEAD', 'OPTIONS'].includes(req.method);
    if (writing) {
      const csrf = (req.body as Record<string, unknown> | undefined)?.__csrf;
      const xhr = req.get('x-requested-with') === 'XMLHttpRequest';
      if (!xhr && csrf !== session.csrf) throw problems.authenticationFailed();
    }
    return { actorId: session.actor_id, session, via: 'cookie' };
  }
}
