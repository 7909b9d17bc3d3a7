/** The SDK's default logger and how sources report problems they survive. */
import { createLogger, type Logger } from '../observe/logger.js';
import type { SourceErrorHandler } from './identity-source.js';

let defaultLogger: Logger | undefined;

/** Created on first use, not at import (no import-time side effects). */
export function sdkLogger(logger?: Logger): Logger {
  if (logger) return logger;
  defaultLogger ??= createLogger({ component: 'tlsmesh-sdk' });
  return defaultLogger;
}

export interface ReportingOptions {
  /** JSON logger (pino); defaults to one writing to stdout with `component: "tlsmesh-sdk"`. */
  logger?: Logger | undefined;
  /** Called with every problem the source survives, after it is logged. */
  onError?: SourceErrorHandler | undefined;
}

/** Logs at warn with the error's code, then hands the error to `onError`. */
export function errorReporter(options: ReportingOptions, source: string): SourceErrorHandler {
  const logger = sdkLogger(options.logger);
  return (error) => {
    const code = (error as { code?: unknown }).code;
    logger.warn({ source, ...(typeof code === 'string' ? { code } : {}), err: error.message }, `${source}: ${error.message}`);
    options.onError?.(error);
  };
}
