/**
 * JSON logs (pino) with secrets redacted by path. Tokens, CSRs, keys and passphrases are never
 * passed to the logger on purpose; the redaction list is the second line of defence.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const REDACTED_PATHS = [
  'token',
  '*.token',
  'passphrase',
  '*.passphrase',
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
  'req.headers.authorization',
  'req.headers.cookie',
];

export interface LoggerOptions {
  level?: string;
  component: string;
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const settings = {
    level: options.level ?? process.env['TLSMESH_LOG_LEVEL'] ?? 'info',
    base: { component: options.component },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
