// OpenRosa form discovery as pure functions: the formList and manifest documents Collect reads,
// and the absolute URLs in them (built from the configured base URL or the request's host).
import type { Request, Response, NextFunction } from 'express';
import type { Config } from '../config.ts';
import { toProblem } from '../errors.ts';

export function xmlText(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', '\'': '&apos;' }[c]!));
}

export interface FormListEntry {
  xmlFormId: string;
  name: string | null;
  version: string;
  hash: string;
  hasAttachments: boolean;
}

/**
 * The form list; basePath is the project's path as the client called it (so /v1/key/<token>/projects/1
 * stays under the token), draft lists point at draft.xml and draft/manifest.
 */
export function formList(forms: FormListEntry[], origin: string, basePath: string, draft = false): string {
  const entries = forms.map((f) => {
    const formPath = `${origin}${basePath}/forms/${encodeURIComponent(f.xmlFormId)}`;
    const download = draft ? `${formPath}/draft.xml` : `${formPath}.xml`;
    const manifest = draft ? `${formPath}/draft/manifest` : `${formPath}/manifest`;
    return `  <xform>
    <formID>${xmlText(f.xmlFormId)}</formID>
    <name>${xmlText(f.name ?? f.xmlFormId)}</name>
    <version>${xmlText(f.version)}</version>
    <hash>md5:${f.hash}</hash>
    <downloadUrl>${xmlText(download)}</downloadUrl>
${f.hasAttachments ? `    <manifestUrl>${xmlText(manifest)}</manifestUrl>\n` : ''}  </xform>
`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>
<xforms xmlns="http://openrosa.org/xforms/xformsList">
${entries.join('')}</xforms>`;
}

export interface ManifestFile {
  name: string;
  md5: string;
  /** entityList / approvalEntityList for dataset-backed attachments. */
  type?: string | null;
  integrityUrl?: string | null;
}

/** The manifest of a form's media and data files; formPath is the form's path as called (…/forms/<id> or …/draft). */
export function formManifest(files: ManifestFile[], origin: string, formPath: string): string {
  const entries = files.map((f) => `  <mediaFile${f.type ? ` type="${xmlText(f.type)}"` : ''}>
    <filename>${xmlText(f.name)}</filename>
    <hash>md5:${f.md5}</hash>
    <downloadUrl>${xmlText(`${origin}${formPath}/attachments/${encodeURIComponent(f.name)}`)}</downloadUrl>
${f.integrityUrl ? `    <integrityUrl>${xmlText(f.integrityUrl)}</integrityUrl>\n` : ''}  </mediaFile>
`);
  return `<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://openrosa.org/xforms/xformsManifest">
${entries.join('')}</manifest>`;
}

/** scheme://host the client used, unless FIELDBASE_BASE_URL says otherwise. */
export function origin(req: Request): string {
  const config = req.app.locals.config as Config;
  return config.baseUrl ?? `${req.protocol}://${req.get('host')}`;
}

/** The request path (without query) up `levels` segments: Central's path.resolve(originalUrl, '..'). */
export function parentPath(req: Request, levels = 1): string {
  const segments = req.originalUrl.split('?')[0].split('/');
  return segments.slice(0, segments.length - levels).join('/');
}

export function sendOpenRosaXml(res: Response, body: string): void {
  res.set('X-OpenRosa-Version', '1.0');
  res.set('Date', new Date().toUTCString());
  res.status(200).type('text/xml; charset=utf-8').send(body);
}

/** Errors on OpenRosa endpoints: Central's OpenRosaResponse message with the problem's status. */
export function openRosaErrors(err: unknown, _req: Request, res: Response, _next: NextFunction): void {
  const problem = toProblem(err);
  res.set('X-OpenRosa-Version', '1.0');
  res.status(problem.status).type('text/xml; charset=utf-8').send(
    `<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">\n  <message nature="error">${xmlText(problem.message)}</message>\n</OpenRosaResponse>`);
}
