// Small helpers every route uses: the actor's transaction, request bodies, extended metadata.
import crypto from 'node:crypto';
import { once } from 'node:events';
import type { Request, Response } from 'express';
import type { Database, Db } from './db.ts';
import { problems } from './errors.ts';

export function database(req: Request): Database {
  return req.app.locals.db as Database;
}

/** Runs fn in the request's single transaction, as the authenticated actor. */
export function transaction<T>(req: Request, fn: (db: Db) => Promise<T>): Promise<T> {
  return database(req).withActor({
    actorId: req.auth.actorId,
    notes: decodeNotes(req.get('x-action-notes')),
    userAgent: req.get('user-agent') ?? null,
  }, fn);
}

function decodeNotes(raw: string | undefined): string | null {
  if (!raw) return null;
  try { return decodeURIComponent(raw); } catch { return raw; }
}

/** One row of a query, or 404.1. */
export async function one<T = Record<string, unknown>>(db: Db, sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await db.query(sql, params);
  if (rows.length === 0) throw problems.notFound();
  return rows[0] as T;
}

export async function many<T = Record<string, unknown>>(db: Db, sql: string, params: unknown[] = []): Promise<T[]> {
  const { rows } = await db.query(sql, params);
  return rows as T[];
}

export function extended(req: Request): boolean {
  return req.get('x-extended-metadata') === 'true';
}

export function body(req: Request): Record<string, unknown> {
  const b = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw problems.unparseable('json', JSON.stringify(b).length);
  return b as Record<string, unknown>;
}

/** A string field of the body: undefined when absent, 400.11 when of another type. */
export function optionalString(b: Record<string, unknown>, field: string): string | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw problems.invalidDataType(field, v, 'string');
  return v;
}

export function requiredString(b: Record<string, unknown>, field: string): string {
  const v = optionalString(b, field);
  if (v === undefined) throw problems.missingParameter(field);
  return v;
}

/** The actor properties object of a body (App Users, Public Links), as JSON for SQL (which checks names and values); null when absent. */
export function propertiesOf(b: Record<string, unknown>): string | null {
  return b.properties === undefined || b.properties === null ? null : JSON.stringify(b.properties);
}

/** A positive integer path parameter, or 404.1 (Central treats a malformed id as not found). */
export function idParam(value: string | undefined): number {
  if (!value || !/^\d+$/.test(value) || Number(value) > 2147483647) throw problems.notFound();
  return Number(value);
}

export const success = { success: true };

export function sendJson(res: Response, value: unknown, status = 200): void {
  res.status(status).json(value);
}

/** Waits until a streamed response takes more data; false when the connection closed instead. */
export async function drained(res: Response): Promise<boolean> {
  if (res.destroyed) return false;
  const done = new AbortController();
  const wait = (event: string, result: boolean) => once(res, event, { signal: done.signal }).then(() => result, () => result);
  try {
    return await Promise.race([wait('drain', true), wait('close', false)]);
  } finally {
    done.abort();
  }
}

/** Sets a weak ETag hashed from `basis` (a version stamp plus what else shapes the response); sends 304 and
 * returns true when the client already has that version (If-None-Match). */
export function fresh(req: Request, res: Response, basis: string): boolean {
  const etag = `W/"${crypto.createHash('sha1').update(basis).digest('hex')}"`;
  res.set('ETag', etag);
  const wanted = (req.get('if-none-match') ?? '').split(',').map((t) => t.trim());
  if (wanted.includes(etag) || wanted.includes(etag.slice(2)) || wanted.includes('*')) {
    res.status(304).end();
    return true;
  }
  return false;
}
