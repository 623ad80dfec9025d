// Every setting comes from the environment (documented in README.md).
export interface Config {
  port: number;
  /** Public base URL used in links (downloadUrl, manifestUrl, emails), like Central's DOMAIN. */
  baseUrl: string | null;
  bcryptCost: number;
  sessionLifetime: string;
  /** Largest JSON body accepted; larger ones get 413. */
  jsonLimit: string;
  /** Largest upload (XML, multipart, attachments). */
  uploadLimit: string;
  runWorkers: boolean;
  smtp: { url: string | null; from: string };
  enketo: { url: string | null; apiKey: string | null };
  xlsformUrl: string | null;
  production: boolean;
}

function int(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new Error(`${name} must be an integer, got "${raw}"`);
  return value;
}

export function loadConfig(env = process.env): Config {
  return {
    port: int('PORT', 8383),
    baseUrl: env.FIELDBASE_BASE_URL?.replace(/\/+$/, '') || null,
    bcryptCost: int('BCRYPT_COST', 12),
    sessionLifetime: env.SESSION_LIFETIME || '24 hours',
    jsonLimit: env.JSON_BODY_LIMIT || '1mb',
    uploadLimit: env.UPLOAD_LIMIT || '100mb',
    runWorkers: env.FIELDBASE_WORKERS !== 'off',
    smtp: { url: env.SMTP_URL || null, from: env.EMAIL_FROM || 'no-reply@fieldbase.local' },
    enketo: { url: env.ENKETO_URL?.replace(/\/+$/, '') || null, apiKey: env.ENKETO_API_KEY || null },
    xlsformUrl: env.XLSFORM_URL?.replace(/\/+$/, '') || null,
    production: env.NODE_ENV === 'production',
  };
}
