// The server audit log: GET /v1/audits.
import { Router, type Request } from 'express';
import { transaction, many, extended } from '../http.ts';
import { problems } from '../errors.ts';
import { auditJson, type AuditRow } from '../formats/json.ts';

export const audits = Router();

function timestamp(req: Request, name: string): string | null {
  const raw = req.query[name];
  if (raw === undefined || raw === '') return null;
  if (typeof raw !== 'string' || Number.isNaN(Date.parse(raw.replace(/z$/i, 'Z')))) {
    throw problems.unexpectedValue(name, raw, 'Please provide an ISO 8601 timestamp.');
  }
  return raw;
}

function count(req: Request, name: string): number | null {
  const raw = req.query[name];
  if (raw === undefined || raw === '') return null;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw)) throw problems.invalidDataType(name, raw, 'integer');
  return Number(raw);
}

type ExtendedAuditRow = AuditRow & { actor: unknown; actee: unknown };

audits.get('/v1/audits', async (req, res) => {
  const action = typeof req.query.action === 'string' ? req.query.action : null;
  const start = timestamp(req, 'start');
  const end = timestamp(req, 'end');
  const limit = count(req, 'limit');
  const offset = count(req, 'offset');
  const withDetails = extended(req);
  const rows = await transaction(req, async (db) => {
    await db.query(`select app_hidden.assert_can('audit.read', '*')`);
    return many<ExtendedAuditRow>(db,
      `select au.*,
              case when $6 then (select app_hidden.actor_json(a) from app_public.actors a where a.id = au.actor_id) end as actor,
              case when $6 then app_hidden.actee_json(au.actee_id) end as actee
       from app_public.audits au
       where app_hidden.audit_matches(au.action, $1)
         and ($2::timestamptz is null or au.logged_at >= $2::timestamptz)
         and ($3::timestamptz is null or au.logged_at < $3::timestamptz)
       order by au.logged_at desc, au.id desc
       limit $4 offset $5`, [action, start, end, limit, offset ?? 0, withDetails]);
  });
  res.json(rows.map((r) => withDetails ? { ...auditJson(r), actor: r.actor, actee: r.actee } : auditJson(r)));
});
