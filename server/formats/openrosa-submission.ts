// OpenRosa submission wire format: the multipart request Collect and Enketo send, and the
// OpenRosaResponse XML every answer carries (success and error alike), with the OpenRosa headers.
import type { Request, Response } from 'express';
import busboy from 'busboy';
import { Problem } from '../errors.ts';

/** What Central advertises as the largest submission it accepts (100 MB). */
export const acceptContentLength = 100 * 1024 * 1024;

export function escapeXml(text: string): string {
  return text.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' }[c]!));
}

export function openRosaMessage(nature: '' | 'error', message: string): string {
  return `<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">\n`
    + `  <message nature="${nature}">${escapeXml(message)}</message>\n`
    + `</OpenRosaResponse>`;
}

export function setOpenRosaHeaders(res: Response): void {
  res.set('X-OpenRosa-Version', '1.0');
  res.set('X-OpenRosa-Accept-Content-Length', String(acceptContentLength));
  res.set('Date', new Date().toUTCString());
}

export function sendOpenRosa(res: Response, status: number, nature: '' | 'error', message: string): void {
  setOpenRosaHeaders(res);
  res.status(status).type('text/xml; charset=utf-8').send(openRosaMessage(nature, message));
}

/** HEAD preflight: 204 with the OpenRosa headers. */
export function sendPreflight(res: Response): void {
  setOpenRosaHeaders(res);
  res.status(204).end();
}

export interface SubmittedFile {
  name: string;
  contentType: string;
  data: Buffer;
}

export interface MultipartSubmission {
  xml: Buffer;
  files: SubmittedFile[];
  /** The `*isIncomplete*` part: more attachments follow in later requests. */
  incomplete: boolean;
}

export const problemsOf = {
  missingXml: () => new Problem(400.7, 'Required multipart POST field xml_submission_file missing.', { field: 'xml_submission_file' }),
  unparseableMultipart: () => new Problem(400.39, 'Multipart form content failed to parse.'),
  tooLarge: () => new Problem(400.36, 'Request body too large.'),
};

/** Reads an OpenRosa multipart body (the XML part plus one part per attachment) into memory, limited in size. */
export function readMultipart(req: Request, limit = acceptContentLength): Promise<MultipartSubmission> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fileSize: limit, fieldSize: limit } });
    } catch {
      reject(problemsOf.unparseableMultipart());
      return;
    }
    let xml: Buffer | null = null;
    let incomplete = false;
    let failed = false;
    let total = 0;
    const files: SubmittedFile[] = [];
    const fail = (problem: Problem) => {
      if (failed) return;
      failed = true;
      req.unpipe(parser);
      req.resume();
      reject(problem);
    };
    parser.on('file', (field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > limit) fail(problemsOf.tooLarge());
        else chunks.push(chunk);
      });
      stream.on('limit', () => fail(problemsOf.tooLarge()));
      stream.on('end', () => {
        const data = Buffer.concat(chunks);
        const name: string = field || info.filename || 'attachment';
        if (field === 'xml_submission_file') xml = data;
        else files.push({ name, contentType: info.mimeType || 'application/octet-stream', data });
      });
    });
    parser.on('field', (field, value) => {
      if (field === 'xml_submission_file') xml = Buffer.from(value, 'utf8');
      else if (field === '*isIncomplete*') incomplete = value.trim().toLowerCase() === 'yes';
    });
    parser.on('error', () => fail(problemsOf.unparseableMultipart()));
    parser.on('close', () => {
      if (failed) return;
      if (xml === null) fail(problemsOf.missingXml());
      else resolve({ xml, files, incomplete });
    });
    req.on('error', () => fail(problemsOf.unparseableMultipart()));
    req.pipe(parser);
  });
}

export function isMultipart(req: Request): boolean {
  return (req.get('content-type') ?? '').toLowerCase().startsWith('multipart/form-data');
}
