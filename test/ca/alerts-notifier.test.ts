/**
 * WebhookNotifier against real receivers on loopback (node:http, and node:https with a
 * certificate made by OpenSSL): retries, give-up and re-send, dedup, repeat, resolved, timeouts,
 * a held receiver, and server verification. Waits between retries are injected (recorded, not
 * slept); every test waits on `idle()`, never on time.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/ca/alerts/evaluate.js';
import { WebhookNotifier, type WebhookTarget } from '../../src/ca/alerts/notifier.js';
import { ZERO_TIME, alertFingerprint, isLoopbackHost, type WebhookMessage } from '../../src/ca/alerts/webhook.js';
import { createLogger } from '../../src/observe/logger.js';
import { hasCommand } from '../helpers/openssl.js';

type Reply = number | 'hold';

interface Receiver {
  url: URL;
  messages: WebhookMessage[];
  /** Status codes for the next requests, in order; then 200. 'hold' never answers (until close). */
  replies: Reply[];
  /** Resolves once `count` messages have arrived. */
  arrived(count: number): Promise<void>;
  /** Answers 200 to the held requests. */
  release(): void;
  close(): Promise<void>;
}

async function listen(server: Server, protocol: 'http' | 'https', receiver: Pick<Receiver, 'messages' | 'replies'>): Promise<Receiver> {
  const held: ServerResponse[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      expect(req.method).toBe('POST');
      expect(req.headers['content-type']).toBe('application/json');
      receiver.messages.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookMessage);
      for (const waiter of waiters.filter((entry) => receiver.messages.length >= entry.count)) waiter.resolve();
      const reply = receiver.replies.shift() ?? 200;
      if (reply === 'hold') held.push(res);
      else res.writeHead(reply).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...receiver,
    url: new URL(`${protocol}://127.0.0.1:${port}/hooks/tlsmesh?secret=s3cr3t`),
    arrived: (count: number) => (receiver.messages.length >= count ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ count, resolve }))),
    release: () => {
      for (const res of held.splice(0)) res.writeHead(200).end();
    },
    close: () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function httpReceiver(): Promise<Receiver> {
  return listen(createHttpServer(), 'http', { messages: [], replies: [] });
}

function alert(spiffeId: string, severity: 'warning' | 'critical' = 'warning'): Alert {
  return {
    labels: { alertname: 'TlsmeshCertificateExpiringSoon', severity, spiffe_id: spiffeId, kind: 'workload' },
    annotations: { summary: `Certificate of ${spiffeId} expires soon`, description: 'd', runbook_url: 'https://example.org/alerts.md#tlsmeshcertificateexpiringsoon' },
  };
}

const HOUR = 3_600_000;
const T0 = Date.parse('2030-01-01T00:00:00Z');

interface Harness {
  notifier: WebhookNotifier;
  clock: { now: number };
  sleeps: number[];
  logs: string[];
}

function notifierFor(targets: Partial<WebhookTarget> & { url: URL }, extra: { repeatIntervalMs?: number } = {}): Harness {
  const clock = { now: T0 };
  const sleeps: number[] = [];
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const notifier = new WebhookNotifier({
    webhooks: [{ timeoutMs: 5000, maxAttempts: 4, ...targets }],
    repeatIntervalMs: extra.repeatIntervalMs ?? 4 * HOUR,
    clock: () => new Date(clock.now),
    logger: createLogger({ component: 'ca', level: 'debug', destination }),
    externalUrl: 'https://ca.example.org:8443',
    backoff: { initialMs: 1000, maxMs: 5000 },
    random: () => 0.5,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  });
  return { notifier, clock, sleeps, logs };
}

const A = 'spiffe://example.org/a';
const B = 'spiffe://example.org/b';
let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function setUp(extra: { repeatIntervalMs?: number; maxAttempts?: number; timeoutMs?: number } = {}): Promise<Harness & { receiver: Receiver }> {
  const receiver = await httpReceiver();
  const harness = notifierFor({ url: receiver.url, ...(extra.maxAttempts ? { maxAttempts: extra.maxAttempts } : {}), ...(extra.timeoutMs ? { timeoutMs: extra.timeoutMs } : {}) }, extra);
  cleanups.push(() => receiver.close(), () => harness.notifier.close());
  return { ...harness, receiver };
}

describe('WebhookNotifier', () => {
  it('sends an Alertmanager-style message when an alert starts firing', async () => {
    const { notifier, receiver } = await setUp();
    notifier.notify([alert(A)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(1);
    const message = receiver.messages[0]!;
    expect(message).toMatchObject({ version: '4', status: 'firing', receiver: 'tlsmesh-ca', externalURL: 'https://ca.example.org:8443', truncatedAlerts: 0, groupLabels: {} });
    expect(message.commonLabels).toEqual(alert(A).labels);
    expect(message.alerts).toEqual([
      {
        status: 'firing',
        labels: alert(A).labels,
        annotations: alert(A).annotations,
        startsAt: new Date(T0).toISOString(),
        endsAt: ZERO_TIME,
        generatorURL: 'https://ca.example.org:8443',
        fingerprint: alertFingerprint(alert(A).labels),
      },
    ]);
  });

  it('retries with exponential backoff and full jitter until the receiver takes it', async () => {
    const { notifier, receiver, sleeps, logs } = await setUp();
    receiver.replies.push(500, 503, 429);
    notifier.notify([alert(A)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(4);
    // Identical bodies each attempt.
    expect(new Set(receiver.messages.map((message) => JSON.stringify(message))).size).toBe(1);
    // random() = 0.5 of 1000, 2000, 4000 ms.
    expect(sleeps).toEqual([500, 1000, 2000]);
    expect(logs.filter((line) => line.includes('"alerts.webhook_retry"'))).toHaveLength(3);
    // The URL's path and query (often a secret) never reach the log.
    expect(logs.join('\n')).not.toContain('s3cr3t');
    expect(logs.join('\n')).toContain(`"webhook":"http://127.0.0.1:${receiver.url.port}"`);
  });

  it('gives up after maxAttempts and sends again with the next evaluation', async () => {
    const { notifier, receiver, logs } = await setUp({ maxAttempts: 2 });
    receiver.replies.push(500, 500);
    notifier.notify([alert(A)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(2);
    expect(logs.some((line) => line.includes('"alerts.webhook_failed"'))).toBe(true);
    notifier.notify([alert(A)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(3);
    // Same alert, same start: it never stopped firing.
    expect(receiver.messages[2]!.alerts[0]!.startsAt).toBe(receiver.messages[0]!.alerts[0]!.startsAt);
  });

  it('does not retry a 4xx other than 408/429 (the request will not get better)', async () => {
    const { notifier, receiver, sleeps } = await setUp();
    receiver.replies.push(400);
    notifier.notify([alert(A)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('deduplicates across evaluations, repeats after the repeat interval, and sends resolved once', async () => {
    const { notifier, receiver, clock } = await setUp({ repeatIntervalMs: 4 * HOUR });
    notifier.notify([alert(A)]);
    await notifier.idle();
    clock.now += HOUR;
    notifier.notify([alert(A)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(1);

    // A second alert starts: only it is sent.
    clock.now += HOUR;
    notifier.notify([alert(A), alert(B)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(2);
    expect(receiver.messages[1]!.alerts.map((entry) => entry.labels['spiffe_id'])).toEqual([B]);

    // 4 h after A was sent: A again (same fingerprint and startsAt), B not yet.
    clock.now = T0 + 4 * HOUR;
    notifier.notify([alert(A), alert(B)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(3);
    expect(receiver.messages[2]!.alerts.map((entry) => [entry.labels['spiffe_id'], entry.startsAt, entry.fingerprint])).toEqual([[A, new Date(T0).toISOString(), alertFingerprint(alert(A).labels)]]);

    // A stops: one resolved message, endsAt now; nothing more after that.
    clock.now += HOUR;
    notifier.notify([alert(B)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(4);
    expect(receiver.messages[3]!.status).toBe('resolved');
    expect(receiver.messages[3]!.alerts).toMatchObject([{ status: 'resolved', labels: { spiffe_id: A }, startsAt: new Date(T0).toISOString(), endsAt: new Date(T0 + 5 * HOUR).toISOString() }]);
    notifier.notify([alert(B)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(4);
  });

  it('a severity is its own alert (own fingerprint)', async () => {
    const { notifier, receiver } = await setUp();
    notifier.notify([alert(A, 'warning')]);
    notifier.notify([alert(A, 'warning'), alert(A, 'critical')]);
    await notifier.idle();
    notifier.notify([alert(A, 'warning'), alert(A, 'critical')]);
    await notifier.idle();
    const sent = receiver.messages.flatMap((message) => message.alerts.map((entry) => `${entry.status}:${entry.labels['severity']}`));
    expect(sent).toEqual(['firing:warning', 'firing:critical']);
    expect(alertFingerprint(alert(A, 'warning').labels)).not.toBe(alertFingerprint(alert(A, 'critical').labels));
  });

  it('a resolved message that did not get through is sent with the next evaluation', async () => {
    const { notifier, receiver } = await setUp({ maxAttempts: 1 });
    notifier.notify([alert(A)]);
    await notifier.idle();
    receiver.replies.push(500);
    notifier.notify([]);
    await notifier.idle();
    notifier.notify([]);
    await notifier.idle();
    expect(receiver.messages.map((message) => message.status)).toEqual(['firing', 'resolved', 'resolved']);
    notifier.notify([]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(3);
  });

  it('an alert that never got through is not "resolved" to the receiver', async () => {
    const { notifier, receiver } = await setUp({ maxAttempts: 1 });
    receiver.replies.push(500);
    notifier.notify([alert(A)]);
    await notifier.idle();
    notifier.notify([]);
    await notifier.idle();
    expect(receiver.messages.map((message) => message.status)).toEqual(['firing']);
  });

  it('times out a receiver that does not answer, then retries', async () => {
    const { notifier, receiver, logs } = await setUp({ timeoutMs: 300 });
    receiver.replies.push('hold');
    notifier.notify([alert(A)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(2);
    expect(logs.some((line) => line.includes('"alerts.webhook_retry"') && line.includes('no answer within 300 ms'))).toBe(true);
  });

  it('a held receiver blocks nothing: notify returns at once, later changes go out after it', async () => {
    const { notifier, receiver } = await setUp({ timeoutMs: 60_000 });
    receiver.replies.push('hold');
    notifier.notify([alert(A)]);
    await receiver.arrived(1);
    // While A's message hangs, B starts firing: notify returns (it is synchronous) and starts no
    // second request to the same receiver.
    notifier.notify([alert(A), alert(B)]);
    receiver.release();
    await notifier.idle();
    expect(receiver.messages).toHaveLength(1);
    // The next evaluation carries B.
    notifier.notify([alert(A), alert(B)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(2);
    expect(receiver.messages[1]!.alerts.map((entry) => entry.labels['spiffe_id'])).toEqual([B]);
  });

  it('close() cancels a request the receiver holds (a 60 s timeout would outlast the test)', async () => {
    const { notifier, receiver } = await setUp({ timeoutMs: 60_000 });
    receiver.replies.push('hold');
    notifier.notify([alert(A)]);
    await receiver.arrived(1);
    await notifier.close();
    notifier.notify([alert(B)]);
    await notifier.idle();
    expect(receiver.messages).toHaveLength(1);
  });
});

describe('WebhookNotifier over https', () => {
  const opensslReady = hasCommand('openssl');
  if (!opensslReady && process.env['CI'] === 'true') throw new Error('CI requires openssl');

  it.skipIf(!opensslReady)('verifies the receiver against caFile; an unknown certificate is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-hook-'));
    cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=hooks', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe' });
    const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const receiver = await listen(createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: certPem }), 'https', { messages: [], replies: [] });
    cleanups.push(() => receiver.close());

    const trusting = notifierFor({ url: receiver.url, caPem: certPem });
    cleanups.push(() => trusting.notifier.close());
    trusting.notifier.notify([alert(A)]);
    await trusting.notifier.idle();
    expect(receiver.messages).toHaveLength(1);

    // Without the CA file: the system store does not know this certificate; nothing is delivered.
    const stranger = notifierFor({ url: receiver.url, maxAttempts: 2 });
    cleanups.push(() => stranger.notifier.close());
    stranger.notifier.notify([alert(A)]);
    await stranger.notifier.idle();
    expect(receiver.messages).toHaveLength(1);
    expect(stranger.logs.some((line) => line.includes('"alerts.webhook_failed"') && line.includes('SELF_SIGNED'))).toBe(true);
  });
});

describe('isLoopbackHost', () => {
  const cases: [string, boolean][] = [
    ['localhost', true],
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['[::1]', true],
    ['::1', true],
    ['10.0.0.1', false],
    ['localhost.example.org', false],
    ['hooks.example.org', false],
    ['[::ffff:127.0.0.1]', false],
  ];
  for (const [host, loopback] of cases) it(`${loopback ? 'ok' : 'fail'}/${host}`, () => expect(isLoopbackHost(host)).toBe(loopback));
});
