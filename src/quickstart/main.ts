/**
 * `npm run quickstart`: a CA on the embedded SQLite store, and two services that enrol with
 * one-time tokens and call each other over mutual TLS every two seconds, printing the SPIFFE ID
 * each side authenticated. Runs until Ctrl-C. Everything lives in ./.tlsmesh-quickstart/.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readCaFile, resolveCaConfig } from '../ca/config.js';
import { initDataDir } from '../ca/data-dir.js';
import { startCa } from '../ca/server.js';
import { CaClient } from '../client/ca-client.js';
import { enrollWithToken, writeCredentials } from '../client/enroll.js';
import { writeFileAtomic } from '../fsutil/write-private.js';
import { createLogger } from '../observe/logger.js';
import { startDemoService, type DemoService } from './demo-service.js';

const TRUST_DOMAIN = 'quickstart.tlsmesh.local';
const SERVICES = ['orders', 'payments'] as const;
const INTERVAL_MS = 2000;

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function main(): Promise<void> {
  const home = resolve(process.env['TLSMESH_QUICKSTART_DIR'] ?? '.tlsmesh-quickstart');
  rmSync(home, { recursive: true, force: true }); // a fresh CA every run
  const dataDir = join(home, 'ca');
  // A demo passphrase, kept beside the CA: in production it comes from a secret store.
  const passphrase = randomBytes(24).toString('base64url');
  await initDataDir({ dataDir, trustDomain: TRUST_DOMAIN, passphrase, listen: '127.0.0.1:0' });
  await writeFileAtomic(join(home, 'passphrase'), passphrase);

  const config = resolveCaConfig(dataDir, await readCaFile(dataDir), {}, {});
  const ca = await startCa({ config, passphrase, logger: createLogger({ component: 'ca', level: process.env['TLSMESH_LOG_LEVEL'] ?? 'warn' }) });
  say(`CA for trust domain ${TRUST_DOMAIN} on ${ca.url} (SQLite store in ${dataDir})`);

  const bundlePem = readFileSync(join(dataDir, 'bundle.pem'), 'utf8');
  const admin = new CaClient({
    url: ca.url,
    bundlePem,
    trustDomain: TRUST_DOMAIN,
    certPem: readFileSync(join(dataDir, 'admin', 'cert.pem'), 'utf8'),
    keyPem: readFileSync(join(dataDir, 'admin', 'key.pem'), 'utf8'),
  });

  const ids = Object.fromEntries(SERVICES.map((name) => [name, `spiffe://${TRUST_DOMAIN}/${name}`])) as Record<(typeof SERVICES)[number], string>;
  const services: DemoService[] = [];
  for (const name of SERVICES) {
    const { token } = await admin.createToken({ spiffeId: ids[name], ipAddresses: ['127.0.0.1'], ttlSeconds: 300 });
    const credentials = await enrollWithToken({ url: ca.url, bundlePem, token });
    await writeCredentials(join(home, name), credentials);
    say(`${name} enrolled as ${credentials.issued.spiffeId} (serial ${credentials.issued.serial}, valid until ${credentials.issued.notAfter})`);
    const others = SERVICES.filter((other) => other !== name).map((other) => ids[other]);
    services.push(await startDemoService({ name, spiffeId: ids[name], credentials, allowedCallers: others, log: say }));
  }
  admin.close();

  const [orders, payments] = services as [DemoService, DemoService];
  const round = async (): Promise<void> => {
    for (const [from, to] of [
      [orders, payments],
      [payments, orders],
    ] as const) {
      try {
        const answer = await from.call(to);
        say(`[${from.name}] called ${to.name} over mutual TLS (${answer.protocol}): peer ${answer.answeredBy}; it saw us as ${answer.body.caller}`);
      } catch (error) {
        say(`[${from.name}] call to ${to.name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };
  await round();
  const timer = setInterval(() => void round(), INTERVAL_MS);
  say('running; press Ctrl-C to stop');

  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  clearInterval(timer);
  await Promise.all(services.map((service) => service.close()));
  await ca.close();
  say('stopped');
}

main().catch((error: unknown) => {
  process.stderr.write(`quickstart failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
