/**
 * `tlsmesh ca audit-log verify|export|head`: check the audit log's hash chain in the store or in
 * an exported file, export it as JSON lines, print the head to record as an anchor. Run on a CA
 * host against the store; no passphrase needed. docs/audit-log.md.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { TlsmeshError } from '../errors.js';
import {
  auditChainRows,
  auditExportLine,
  formatAuditAnchor,
  parseAuditAnchor,
  verifyAuditExport,
  verifyStoredAuditChain,
  type AuditChainAnchor,
  type AuditChainReport,
} from '../store/index.js';
import { examples, printJson } from './output.js';
import { storeOptions, withStore, type StoreFlags } from './store-access.js';

interface VerifyFlags extends StoreFlags {
  expectHead?: string[];
  file?: string;
  partial?: boolean;
  json?: boolean;
}

interface ExportFlags extends StoreFlags {
  since?: string;
  out?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerAuditLogCommands(ca: Command): void {
  const auditLog = ca
    .command('audit-log')
    .description("check, export and anchor the CA's hash-chained audit log")
    .addHelpText(
      'after',
      examples(['tlsmesh ca audit-log verify', 'tlsmesh ca audit-log head', 'tlsmesh ca audit-log export --out audit.jsonl', 'tlsmesh ca audit-log verify --file audit.jsonl']),
    );

  storeOptions(auditLog.command('verify'))
    .description('walk the hash chain (in the store, or in an exported file) and report its head or the first broken row; exit 1 if broken')
    .option('--expect-head <seq:hash>', 'a head recorded earlier (the CA logs one at start and when the log grows): the chain must reach it with that hash; repeatable', collect)
    .option('--file <file>', 'verify an exported file (`-` for stdin) instead of the store')
    .option('--partial', 'with --file: accept an export that starts past seq 1 (made with --since)')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      examples([
        'tlsmesh ca audit-log verify',
        'tlsmesh ca audit-log verify --expect-head 1200:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
        'tlsmesh ca audit-log verify --store postgres://tlsmesh@db/tlsmesh --json',
        'tlsmesh ca audit-log verify --file audit-2026-05.jsonl',
        'tlsmesh ca audit-log export --since 1200 | tlsmesh ca audit-log verify --file - --partial',
      ]),
    )
    .action(async (flags: VerifyFlags) => {
      const anchors = (flags.expectHead ?? []).map(anchorOf);
      for (const anchor of anchors) {
        if (anchors.some((other) => other.seq === anchor.seq && other.hash !== anchor.hash)) throw new TlsmeshError('ERR_CONFIG', `two --expect-head values for seq ${anchor.seq} name different hashes`);
      }
      if (flags.partial && flags.file === undefined) throw new TlsmeshError('ERR_CONFIG', '--partial applies to --file only: the store is always verified from seq 1');
      let report: AuditChainReport;
      if (flags.file !== undefined) {
        report = await verifyFile(flags.file, anchors, flags.partial === true);
      } else {
        report = await withStore(flags, (store) => verifyStoredAuditChain(store, { anchors }), { readOnly: true });
      }
      printReport(report, flags.json === true);
      if (report.break !== undefined) {
        const where = report.break.seq === null ? `row id ${report.break.id}` : `seq ${report.break.seq}`;
        throw new TlsmeshError('ERR_AUDIT_CHAIN_BROKEN', `audit chain broken (${report.break.fault}) at ${where}: ${report.break.message}; ${report.count} entries verified before it`);
      }
    });

  storeOptions(auditLog.command('export'))
    .description('write the chained audit log as JSON lines, one row each with its chain fields, for an off-box copy')
    .option('--since <seq>', 'only rows after this chain position (the head of a previous export)')
    .option('--out <file>', 'write to this file (mode 0600, replaced atomically) instead of stdout')
    .addHelpText(
      'after',
      examples([
        'tlsmesh ca audit-log export --out /backup/tlsmesh-audit.jsonl',
        'tlsmesh ca audit-log export --since 1200 --out audit-from-1201.jsonl',
        'tlsmesh ca audit-log export | gzip > audit.jsonl.gz',
      ]),
    )
    .action(async (flags: ExportFlags) => {
      const since = flags.since === undefined ? 0 : seqOf(flags.since, '--since');
      await withStore(flags, async (store) => {
        const rows = auditChainRows(store, since);
        if (flags.out === undefined) {
          for await (const row of rows) {
            if (!process.stdout.write(`${auditExportLine(row)}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
          }
          return;
        }
        const { count, last } = await writeLinesAtomic(flags.out, rows);
        process.stderr.write(`exported ${count} audit entries to ${flags.out}${last === null ? '' : ` (head ${formatAuditAnchor(last)})`}\n`);
      }, { readOnly: true });
    });

  storeOptions(auditLog.command('head'))
    .description("print the chain's head (seq:hash) to record elsewhere as an anchor")
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['tlsmesh ca audit-log head', 'tlsmesh ca audit-log head >> /mnt/worm/tlsmesh-anchors.txt']))
    .action(async (flags: StoreFlags & { json?: boolean }) => {
      const head = await withStore(flags, (store) => store.auditChainHead(), { readOnly: true });
      if (flags.json) return printJson({ head });
      process.stdout.write(head === null ? 'the audit log is empty\n' : `${formatAuditAnchor(head)}\n`);
    });
}

function anchorOf(text: string): AuditChainAnchor {
  const anchor = parseAuditAnchor(text);
  if (anchor === null) throw new TlsmeshError('ERR_CONFIG', `--expect-head must be SEQ:HASH (a positive integer, a colon, 64 hex digits), as \`ca audit-log head\` prints it`);
  return anchor;
}

function seqOf(text: string, flag: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new TlsmeshError('ERR_CONFIG', `${flag} must be a chain position (a non-negative integer)`);
  return Number(text);
}

async function verifyFile(path: string, anchors: AuditChainAnchor[], partial: boolean): Promise<AuditChainReport> {
  const input = path === '-' ? process.stdin : createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    if (path === '-') return resolve();
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  try {
    await opened;
  } catch (cause) {
    throw new TlsmeshError('ERR_CONFIG', `cannot read the audit export at ${path}`, { cause });
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    return await verifyAuditExport(lines, { anchors, partial });
  } finally {
    lines.close();
    if (path !== '-') input.destroy();
  }
}

function printReport(report: AuditChainReport, json: boolean): void {
  if (json) return printJson(report);
  if (report.break !== undefined) return; // the coded error says it
  const span = report.first === null ? 'the audit log is empty' : `${report.count} entries, seq ${report.first.seq} to ${report.head!.seq}`;
  const lines = [`audit chain OK: ${span}`];
  if (report.head !== null) lines.push(`head ${formatAuditAnchor(report.head)}`);
  if (report.anchorsMatched > 0) lines.push(`anchors matched: ${report.anchorsMatched}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Streams lines into a private temporary file beside `path`, fsyncs it and renames it over `path`. */
async function writeLinesAtomic(path: string, rows: AsyncIterable<Parameters<typeof auditExportLine>[0]>): Promise<{ count: number; last: AuditChainAnchor | null }> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle;
  try {
    handle = await open(temporary, 'wx', 0o600);
  } catch (cause) {
    throw new TlsmeshError('ERR_CONFIG', `cannot write the audit export into ${dirname(path)}`, { cause });
  }
  let count = 0;
  let last: AuditChainAnchor | null = null;
  try {
    let chunk: string[] = [];
    for await (const row of rows) {
      chunk.push(auditExportLine(row));
      count++;
      last = { seq: row.seq!, hash: row.hash! };
      if (chunk.length >= 1000) {
        await handle.write(`${chunk.join('\n')}\n`);
        chunk = [];
      }
    }
    if (chunk.length > 0) await handle.write(`${chunk.join('\n')}\n`);
    await handle.sync();
    await handle.close();
    await rename(temporary, path);
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temporary, { force: true });
    throw error;
  }
  return { count, last };
}
