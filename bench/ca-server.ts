/**
 * The CA under load, in its own process so the load generator does not share its event loop.
 * Started by bench/ca-process.ts as `node --import tsx bench/ca-server.ts <dataDir> <logFile>`;
 * it drives the compiled package, so `npm run bench` builds first.
 *
 * Environment: TLSMESH_CA_PASSPHRASE (never argv: visible in `ps`); TLSMESH_CA_STORE, a
 * postgres:// URL, or unset for SQLite in the data directory. Initialises the data directory,
 * starts the CA on 127.0.0.1 with a free port and prints one JSON line `{"url", "trustDomain"}`
 * on stdout. Logs go to the log file at the level `tlsmesh ca serve` uses (info unless
 * TLSMESH_LOG_LEVEL says otherwise), so the server pays for the logging it pays for in use.
 * Stops on SIGTERM, or when the parent goes away (stdin closes).
 */
import { pino } from 'pino';
// The compiled package (dist/, built by `npm run bench`): the code `tlsmesh ca serve` runs.
import { createLogger } from 'tlsmesh';
import { initDataDir, readCaFile, readPassphrase, resolveCaConfig, startCa } from 'tlsmesh/ca';

const BENCH_TRUST_DOMAIN = 'bench.tlsmesh.test';

async function main(): Promise<void> {
  const [dataDir, logFile] = process.argv.slice(2);
  if (dataDir === undefined || logFile === undefined) throw new TypeError('usage: ca-server.ts DATA_DIR LOG_FILE');
  const passphrase = await readPassphrase(undefined);
  const store = process.env['TLSMESH_CA_STORE'];
  await initDataDir({
    dataDir,
    trustDomain: BENCH_TRUST_DOMAIN,
    passphrase,
    ...(store !== undefined && store !== '' ? { store } : {}),
    listen: '127.0.0.1:0',
    // A realistic URL length in every leaf's CRL DP and AIA (port 0 would be odd there).
    publicUrl: `https://ca.${BENCH_TRUST_DOMAIN}:8443`,
  });
  const config = resolveCaConfig(dataDir, await readCaFile(dataDir), {}, {});
  const destination = pino.destination({ dest: logFile, sync: false });
  const running = await startCa({ config, passphrase, logger: createLogger({ component: 'ca', destination }) });

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // process.exit (not a signal death) so that `--cpu-prof` writes its profile.
    running.close().then(
      () => {
        try {
          destination.flushSync();
        } catch {
          // Only log lines are at stake; the exit (and the CPU profile) matter more.
        }
        process.exit(0);
      },
      (error: unknown) => {
        console.error('ca-server: close failed', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ url: running.url, trustDomain: BENCH_TRUST_DOMAIN })}\n`);
}

main().catch((error: unknown) => {
  console.error('ca-server: could not start the CA:', error);
  process.exit(1);
});
