// Server configuration (/v1/config/…) and the usage report preview (/v1/analytics/preview).
import express, { Router, type Request, type Response } from 'express';
import type { Db } from '../db.ts';
import { transaction, one, success } from '../http.ts';
import { problems } from '../errors.ts';
import { configJson, configColumns, type ConfigRow } from '../formats/projects.ts';

export const serverConfig = Router();

/** Image uploads arrive as raw bytes of any content type (JSON bodies were already parsed by the app). */
const rawBody = express.raw({ type: () => true, limit: '20mb' });

interface StoredConfig extends ConfigRow { blob: Buffer | null; content_type: string | null; etag: string | null }

async function storedConfig(db: Db, key: string): Promise<StoredConfig> {
  return one<StoredConfig>(db, `select ${configColumns}, c.blob, c.content_type, c.etag from app_public.configs c where c.key = $1`, [key]);
}

/** A JSON config as Central's object; an image config as its bytes, with ETag and If-None-Match. */
function sendConfig(req: Request, res: Response, c: StoredConfig) {
  if (!c.has_blob) { res.json(configJson(c)); return; }
  const etag = `"${c.etag}"`;
  res.set('ETag', etag);
  if (req.get('if-none-match') === etag) { res.status(304).end(); return; }
  res.type(c.content_type ?? 'application/octet-stream').send(c.blob);
}

serverConfig.get('/v1/config/public', async (req, res) => {
  const rows = await transaction(req, (db) => db.query<ConfigRow>(
    `select ${configColumns} from app_public.configs c where app_hidden.config_is_public(c.key) order by c.key`));
  res.json(Object.fromEntries(rows.rows.map((c) => [c.key, configJson(c)])));
});

serverConfig.get('/v1/config/public/:key', async (req, res) => {
  const key = req.params.key;
  const row = await transaction(req, async (db) => {
    const { rows: [{ public: isPublic }] } = await db.query('select app_hidden.config_is_public($1) as public', [key]);
    if (!isPublic) throw problems.insufficientRights();
    return storedConfig(db, key);
  });
  sendConfig(req, res, row);
});

serverConfig.get('/v1/config/:key', async (req, res) => {
  const row = await transaction(req, async (db) => {
    await db.query(`select app_hidden.assert_can('config.read', '*')`);
    return storedConfig(db, req.params.key);
  });
  sendConfig(req, res, row);
});

serverConfig.post('/v1/config/:key', rawBody, async (req, res) => {
  const key = req.params.key;
  const row = await transaction(req, async (db) => {
    const { rows: [{ kind }] } = await db.query('select app_hidden.config_kind($1) as kind', [key]);
    if (kind === 'blob') {
      const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body === undefined ? '' : JSON.stringify(req.body));
      return one<ConfigRow>(db, `select ${configColumns} from app_public.set_config_blob($1, $2, $3) c`,
        [key, bytes, req.get('content-type') ?? null]);
    }
    const value = Buffer.isBuffer(req.body) ? parseJson(req.body) : req.body ?? null;
    return one<ConfigRow>(db, `select ${configColumns} from app_public.set_config_value($1, $2) c`, [key, JSON.stringify(value)]);
  });
  res.json(configJson(row));
});

function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return null;
  try { return JSON.parse(raw.toString('utf8')); } catch { throw problems.unparseable('json', raw.length); }
}

serverConfig.delete('/v1/config/:key', async (req, res) => {
  await transaction(req, (db) => db.query('select app_public.unset_config($1)', [req.params.key]));
  res.json(success);
});

serverConfig.get('/v1/analytics/preview', async (req, res) => {
  const { metrics } = await transaction(req, (db) => one<{ metrics: unknown }>(db, 'select app_public.analytics_preview() as metrics'));
  res.json(metrics);
});
