// A thin client for Enketo's API (ENKETO_URL, ENKETO_API_KEY): creating a survey for a form (its enketoId
// and the single-submission enketoOnceId) and getting an edit URL for a submission. Requests are form-encoded
// POSTs with HTTP Basic auth (the API key as user, no password); failures map to Central's problems.
import { Problem } from './errors.ts';
import type { Config } from './config.ts';

export interface EnketoSettings { url: string; apiKey: string }

export const enketoProblems = {
  notConfigured: () => new Problem(501.8, 'This ODK Central has not been configured to use Enketo. Please contact your server administrator.'),
  notAvailable: () => new Problem(502.3, 'Enketo could not be contacted.'),
  unexpectedResponse: (reason: string) => new Problem(500.4, 'The Enketo service returned an unexpected response.', { reason }),
  editRateLimit: () => new Problem(409.13, 'You must wait one minute before trying to edit a submission a second time.'),
};

/** The Enketo settings when both the URL and the API key are configured, else null. */
export function enketoSettings(config: Pick<Config, 'enketo'>): EnketoSettings | null {
  const { url, apiKey } = config.enketo;
  if (!url || !apiKey) return null;
  try { new URL(url); } catch { return null; }
  return { url, apiKey };
}

async function post(settings: EnketoSettings, apiPath: string, fields: Record<string, string>): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(`${settings.url.replace(/\/+$/, '')}/${apiPath.replace(/^\/+/, '')}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${settings.apiKey}:`).toString('base64')}`,
      },
      body: new URLSearchParams(fields).toString(),
      signal: AbortSignal.timeout(30_000),
    });
  } catch {
    throw enketoProblems.notAvailable();
  }
  let body: Record<string, unknown>;
  try { body = await response.json() as Record<string, unknown>; } catch { throw enketoProblems.unexpectedResponse('invalid JSON'); }
  if (response.status === 405 && body?.message === 'Not allowed. Record is already being edited') throw enketoProblems.editRateLimit();
  if (response.status !== 200 && response.status !== 201) throw enketoProblems.unexpectedResponse('wrong status code');
  return body;
}

/** Creates (or finds) Enketo's survey for a form served at serverUrl: its enketoId and enketoOnceId. */
export async function createSurvey(settings: EnketoSettings, serverUrl: string, xmlFormId: string): Promise<{ enketoId: string; enketoOnceId: string | null }> {
  const body = await post(settings, 'api/v2/survey/all', { server_url: serverUrl, form_id: xmlFormId });
  const enketoId = typeof body.enketo_id === 'string' ? body.enketo_id : null;
  if (!enketoId) throw enketoProblems.unexpectedResponse('no enketo_id');
  const once = /\/([:a-z0-9]+)$/i.exec(typeof body.single_once_url === 'string' ? body.single_once_url : '');
  return { enketoId, enketoOnceId: once ? once[1] : null };
}

export interface EditRequest {
  serverUrl: string;
  xmlFormId: string;
  instanceXml: string;
  instanceId: string;
  /** Attachment name → URL Enketo fetches it from. */
  attachments: Record<string, string>;
  returnUrl: string;
}

/** Asks Enketo for a URL that edits the instance; with ownBase, the URL is moved onto that origin (Enketo proxied there). */
export async function editUrl(settings: EnketoSettings, r: EditRequest, ownBase: string | null): Promise<string> {
  const fields: Record<string, string> = {
    server_url: r.serverUrl, form_id: r.xmlFormId, instance: r.instanceXml, instance_id: r.instanceId, return_url: r.returnUrl,
  };
  for (const [name, url] of Object.entries(r.attachments)) fields[`instance_attachments[${name}]`] = url;
  const body = await post(settings, 'api/v2/instance', fields);
  if (typeof body.edit_url !== 'string') throw enketoProblems.unexpectedResponse('no edit_url');
  if (!ownBase) return body.edit_url;
  const url = new URL(body.edit_url);
  const own = new URL(ownBase);
  url.protocol = own.protocol;
  url.hostname = own.hostname;
  url.port = own.port;
  return url.href;
}

/** The server's public base URL (FIELDBASE_BASE_URL, else localhost on the port). */
export function publicBase(config: Pick<Config, 'baseUrl' | 'port'>): string {
  return config.baseUrl ?? `http://localhost:${config.port}`;
}
