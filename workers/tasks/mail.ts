// mail__send: renders one of Central's account emails and sends it (SMTP when configured, else logged).
import nodemailer, { type Transporter } from 'nodemailer';
import type { Task } from 'graphile-worker';
import { loadConfig } from '../../server/config.ts';

interface MailPayload { to: string; template: string; data?: { token?: string } }

function isMailPayload(p: unknown): p is MailPayload {
  const m = p as MailPayload;
  return typeof m?.to === 'string' && typeof m?.template === 'string';
}

function render(template: string, data: MailPayload['data'], baseUrl: string): { subject: string; text: string } | null {
  const link = (path: string) => `${baseUrl}/#${path}?token=${encodeURIComponent(data?.token ?? '')}`;
  switch (template) {
    case 'accountCreated':
      return { subject: 'ODK Central account created',
        text: `An account has been provisioned for you on an ODK Central data collection server.\n\nTo set a password and start using it, visit:\n${link('/account/claim')}\n\nThis link expires in 24 hours.` };
    case 'accountCreatedWithPassword':
      return { subject: 'ODK Central account created',
        text: `An account has been provisioned for you on an ODK Central data collection server at ${baseUrl}.\n\nYour administrator will give you your password.` };
    case 'accountReset':
      return { subject: 'ODK Central account password reset',
        text: `A password reset has been requested for this email address.\n\nTo set a new password, visit:\n${link('/account/claim')}\n\nThis link expires in 24 hours. If you did not request this, you can ignore this email.` };
    case 'accountResetDeleted':
      return { subject: 'ODK Central account password reset',
        text: 'A password reset was requested for this email address, but no account exists for it on this server.' };
    case 'passwordChanged':
      return { subject: 'ODK Central account password change',
        text: 'The password for your ODK Central account was just changed. If you did not do this, contact your administrator at once.' };
    default:
      return null;
  }
}

let transport: Transporter | null = null;
function mailer(): Transporter {
  const { smtp } = loadConfig();
  transport ??= smtp.url ? nodemailer.createTransport(smtp.url) : nodemailer.createTransport({ jsonTransport: true });
  return transport;
}

export const mail__send: Task = async (payload, helpers) => {
  if (!isMailPayload(payload)) { helpers.logger.error('mail__send: malformed payload'); return; }
  const config = loadConfig();
  const message = render(payload.template, payload.data, config.baseUrl ?? `http://localhost:${config.port}`);
  if (!message) { helpers.logger.error(`mail__send: unknown template ${payload.template}`); return; }
  await mailer().sendMail({ from: config.smtp.from, to: payload.to, subject: message.subject, text: message.text });
  await helpers.query(
    'insert into app_private.mail_log (recipient, template, subject, body) values ($1, $2, $3, $4)',
    [payload.to, payload.template, message.subject, message.text]);
};
