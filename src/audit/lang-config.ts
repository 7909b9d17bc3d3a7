/**
 * Configuration files: YAML (the `yaml` package, with positions), JSON (jsonc-parser, tolerant of
 * comments and trailing commas) and .env files.
 *
 * Heuristics, chosen to keep false positives low:
 * - only scalar values that read as a boolean (true/false/yes/no/on/off/1/0) count, so `tls:`
 *   holding a map or a list (Kubernetes Ingress) is never a finding;
 * - a key is matched by its normalised name (lower case, without `-`, `_`, `.`), exactly or by a
 *   suffix (`REDIS_TLS`, `grpc_insecure`), and the generic `verify` / `enabled` only under a
 *   parent key naming tls or ssl;
 * - inside strings, only `NODE_TLS_REJECT_UNAUTHORIZED=0` and `sslmode=disable|allow` are looked
 *   for (package.json scripts, CI commands, connection URLs);
 * - messages and snippets show the key and the flag value only, never the rest of a value (a
 *   connection URL may hold a password).
 * YAML that does not parse (Helm templates) is read line by line with indentation for nesting.
 */
import { parseTree, type Node as JsonNode } from 'jsonc-parser';
import { isMap, isPair, isScalar, isSeq, parseAllDocuments, type Node as YamlNode } from 'yaml';
import type { RawFinding } from './types.js';

type Scalar = string | number | boolean | null;

interface Setting {
  readonly key: string;
  readonly ancestors: readonly string[];
  readonly value: Scalar;
  readonly start: number;
  readonly end: number;
}

const normalizeKey = (key: string): string => key.toLowerCase().replace(/[-_.\s]/g, '');

function truth(value: Scalar): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value === 1 ? true : value === 0 ? false : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim().toLowerCase();
  if (['true', 'yes', 'on', '1', 'y'].includes(text)) return true;
  if (['false', 'no', 'off', '0', 'n'].includes(text)) return false;
  return undefined;
}

const VERIFY_OFF_WHEN_TRUE = ['insecureskipverify', 'insecureskiptlsverify', 'skiptlsverify', 'tlsskipverify', 'skipsslverify', 'sslskipverify', 'skipverify', 'skipcertverify', 'skipcertificateverification', 'sslnoverify', 'tlsnoverify', 'noverify', 'disablesslverification', 'disabletlsverification'];
const VERIFY_OFF_WHEN_FALSE = ['verifyssl', 'sslverify', 'tlsverify', 'verifytls', 'httpsverify', 'verifycertificate', 'verifycertificates', 'verifycert', 'verifypeer', 'sslverifypeer', 'rejectunauthorized', 'checkcertificate', 'validatecertificate', 'verifyservercertificate'];
const TLS_OFF_WHEN_FALSE = ['tls', 'ssl', 'usetls', 'usessl', 'enabletls', 'enablessl', 'tlsenabled', 'sslenabled', 'tlsenable', 'sslenable', 'withtls', 'requiretls', 'requiressl'];
const TLS_OFF_WHEN_TRUE = ['plaintext', 'useplaintext', 'disabletls', 'disablessl', 'notls', 'nossl', 'insecure'];

const NODE_TLS_IN_STRING = /\bNODE_TLS_REJECT_UNAUTHORIZED\s*=\s*["']?0(?![0-9])/g;
const SSLMODE_IN_STRING = /(?:^|[\s?&;])(sslmode\s*=\s*(?:disable|allow))\b/gi;

const shown = (value: Scalar): string => (typeof value === 'string' ? value.trim().slice(0, 40) : String(value));

/** The rule a `key: value` setting breaks, if any. */
export function classifySetting(key: string, ancestors: readonly string[], value: Scalar): { ruleId: string; message: string } | undefined {
  const name = normalizeKey(key);
  const flag = truth(value);
  const text = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  const underTls = ancestors.some((ancestor) => /tls|ssl/.test(normalizeKey(ancestor)));
  const parentTls = ancestors.length > 0 && /(?:tls|ssl)$/.test(normalizeKey(ancestors[ancestors.length - 1]!));
  if (key.trim().toUpperCase() === 'NODE_TLS_REJECT_UNAUTHORIZED') {
    return String(value).trim() === '0' ? { ruleId: 'config/node-tls-reject-unauthorized', message: 'NODE_TLS_REJECT_UNAUTHORIZED=0 turns off certificate verification for every TLS connection of the Node process' } : undefined;
  }
  if (flag === true && VERIFY_OFF_WHEN_TRUE.some((suffix) => name.endsWith(suffix))) {
    return { ruleId: 'config/tls-verify-disabled', message: `${key}: ${shown(value)} turns off certificate verification: any server certificate is accepted` };
  }
  if (flag === false && (VERIFY_OFF_WHEN_FALSE.some((suffix) => name.endsWith(suffix)) || (name === 'verify' && underTls))) {
    return { ruleId: 'config/tls-verify-disabled', message: `${key}: ${shown(value)} turns off certificate verification: any server certificate is accepted` };
  }
  if (name.endsWith('sslmode') && text !== undefined && ['disable', 'disabled', 'allow'].includes(text)) {
    return { ruleId: 'config/tls-disabled', message: `${key}: ${shown(value)} lets the database connection run without TLS` };
  }
  if (flag === false && (TLS_OFF_WHEN_FALSE.some((suffix) => name.endsWith(suffix)) || ((name === 'enabled' || name === 'enable') && parentTls))) {
    return { ruleId: 'config/tls-disabled', message: `${key}: ${shown(value)} switches TLS off: traffic is plaintext and the peer is not authenticated` };
  }
  if (flag === true && TLS_OFF_WHEN_TRUE.some((suffix) => name.endsWith(suffix))) {
    return { ruleId: 'config/tls-disabled', message: `${key}: ${shown(value)} switches off TLS (or its verification) for this connection` };
  }
  return undefined;
}

class ConfigFile {
  readonly findings: RawFinding[] = [];
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  setting(setting: Setting): void {
    const rule = classifySetting(setting.key, setting.ancestors, setting.value);
    if (!rule) return;
    const snippet = `${setting.key}: ${shown(setting.value)}`;
    this.findings.push({ ruleId: rule.ruleId, start: setting.start, end: setting.end, message: rule.message, key: normalizeKey(setting.key) + '=' + shown(setting.value).toLowerCase(), snippet });
  }

  /** Looks inside a string value (source range start..end) for the two patterns worth finding there. */
  string(value: string, start: number, end: number, key: string | undefined): void {
    const raw = this.#text.slice(start, end);
    for (const [pattern, ruleId, message] of [
      [NODE_TLS_IN_STRING, 'config/node-tls-reject-unauthorized', 'NODE_TLS_REJECT_UNAUTHORIZED=0 in this command turns off certificate verification for every TLS connection of the Node process'],
      [SSLMODE_IN_STRING, 'config/tls-disabled', 'sslmode=disable/allow in this connection string lets the database connection run without TLS'],
    ] as const) {
      pattern.lastIndex = 0;
      if (!pattern.test(value)) continue;
      pattern.lastIndex = 0;
      const inRaw = pattern.exec(raw);
      const match = inRaw?.[1] ?? inRaw?.[0]?.trim();
      const offset = inRaw && match ? start + inRaw.index + inRaw[0].indexOf(match) : start;
      const found = (match ?? ruleId).replace(/\s+/g, '');
      this.findings.push({ ruleId, start: offset, end: offset + (match?.length ?? 0), message, key: `${key ?? ''}:${found.toLowerCase()}`, snippet: key ? `${key}: …${found}…` : `…${found}…` });
    }
  }

  /** `KEY=VALUE` strings in an environment list (docker-compose `environment: [A=B]`). */
  envEntry(value: string, start: number, ancestors: readonly string[]): boolean {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(value);
    if (!match || !ancestors.some((ancestor) => /^(?:env|environment)$/i.test(ancestor))) return false;
    this.setting({ key: match[1]!, ancestors, value: match[2]!.trim().replace(/^["']|["']$/g, ''), start, end: start + match[1]!.length });
    return true;
  }
}

// ---- YAML ------------------------------------------------------------------------------------

function walkYaml(file: ConfigFile, node: unknown, ancestors: readonly string[]): void {
  if (isMap(node)) {
    const entries = new Map<string, YamlNode | null>();
    for (const pair of node.items) {
      if (!isPair(pair) || !isScalar(pair.key)) continue;
      const key = String(pair.key.value);
      entries.set(key, (pair.value as YamlNode | null) ?? null);
      const value = pair.value;
      if (isScalar(value) && pair.key.range) {
        const scalar = value.value;
        if (scalar === null || ['string', 'number', 'boolean'].includes(typeof scalar)) {
          file.setting({ key, ancestors, value: scalar as Scalar, start: pair.key.range[0], end: value.range?.[1] ?? pair.key.range[1] });
        }
        if (typeof scalar === 'string' && value.range) file.string(scalar, value.range[0], value.range[1], key);
      } else {
        walkYaml(file, value, [...ancestors, key]);
      }
    }
    // Kubernetes-style env entries: { name: KEY, value: VALUE }.
    const name = entries.get('name');
    const value = entries.get('value');
    if (isScalar(name) && isScalar(value) && typeof name.value === 'string' && name.range) {
      const scalar = value.value;
      if (scalar === null || ['string', 'number', 'boolean'].includes(typeof scalar)) {
        file.setting({ key: name.value, ancestors, value: scalar as Scalar, start: name.range[0], end: name.range[1] });
      }
    }
  } else if (isSeq(node)) {
    for (const item of node.items) {
      if (isScalar(item) && typeof item.value === 'string' && item.range) {
        if (!file.envEntry(item.value, item.range[0], ancestors)) file.string(item.value, item.range[0], item.range[1], ancestors[ancestors.length - 1]);
      } else {
        walkYaml(file, item, ancestors);
      }
    }
  } else if (isScalar(node) && typeof node.value === 'string' && node.range) {
    file.string(node.value, node.range[0], node.range[1], ancestors[ancestors.length - 1]);
  }
}

/** For YAML that does not parse: `key: value` lines, nesting by indentation. */
function scanYamlLines(file: ConfigFile, text: string): void {
  const stack: { indent: number; key: string }[] = [];
  let offset = 0;
  for (const line of text.split(/(?<=\n)/)) {
    const match = /^(\s*)(?:-\s+)?(["']?)([A-Za-z0-9_.-]+)\2\s*:(?:\s+(.*?))?\s*$/.exec(line.replace(/\r?\n$/, '').replace(/\s+#.*$/, ''));
    if (match) {
      const indent = match[1]!.length;
      while (stack.length > 0 && stack[stack.length - 1]!.indent >= indent) stack.pop();
      const key = match[3]!;
      const rawValue = match[4] ?? '';
      const start = offset + indent + (line.slice(indent).startsWith('-') ? line.slice(indent).indexOf(match[2]! + key) : 0);
      if (rawValue === '') {
        stack.push({ indent, key });
      } else {
        const value = rawValue.replace(/^(["'])(.*)\1$/, '$2');
        file.setting({ key, ancestors: stack.map((entry) => entry.key), value, start, end: start + key.length });
        file.string(value, offset, offset + line.length, key);
      }
    }
    offset += line.length;
  }
}

export function analyzeYaml(text: string): RawFinding[] {
  const file = new ConfigFile(text);
  const documents = parseAllDocuments(text, { uniqueKeys: false, prettyErrors: false });
  const list = Array.isArray(documents) ? documents : [];
  if (list.some((document) => document.errors.length > 0)) {
    scanYamlLines(file, text);
  } else {
    for (const document of list) walkYaml(file, document.contents, []);
  }
  return file.findings;
}

// ---- JSON ------------------------------------------------------------------------------------

function walkJson(file: ConfigFile, node: JsonNode, ancestors: readonly string[]): void {
  if (node.type === 'object') {
    for (const property of node.children ?? []) {
      const [keyNode, valueNode] = property.children ?? [];
      if (!keyNode || !valueNode || typeof keyNode.value !== 'string') continue;
      const key = keyNode.value;
      if (valueNode.type === 'object' || valueNode.type === 'array') {
        walkJson(file, valueNode, [...ancestors, key]);
        continue;
      }
      file.setting({ key, ancestors, value: valueNode.value as Scalar, start: keyNode.offset + 1, end: valueNode.offset + valueNode.length });
      if (typeof valueNode.value === 'string') file.string(valueNode.value, valueNode.offset, valueNode.offset + valueNode.length, key);
    }
  } else if (node.type === 'array') {
    for (const item of node.children ?? []) {
      if (item.type === 'string' && typeof item.value === 'string') {
        if (!file.envEntry(item.value, item.offset + 1, ancestors)) file.string(item.value, item.offset, item.offset + item.length, ancestors[ancestors.length - 1]);
      } else {
        walkJson(file, item, ancestors);
      }
    }
  } else if (node.type === 'string' && typeof node.value === 'string') {
    file.string(node.value, node.offset, node.offset + node.length, undefined);
  }
}

export function analyzeJson(text: string): RawFinding[] {
  const file = new ConfigFile(text);
  const tree = parseTree(text, [], { allowTrailingComma: true, disallowComments: false });
  if (tree) walkJson(file, tree, []);
  return file.findings;
}

// ---- .env ------------------------------------------------------------------------------------

export function analyzeEnv(text: string): RawFinding[] {
  const file = new ConfigFile(text);
  let offset = 0;
  for (const line of text.split(/(?<=\n)/)) {
    const match = /^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$/.exec(line.replace(/\r?\n$/, ''));
    if (match) {
      const key = match[2]!;
      let value = match[3]!;
      const quoted = /^(["'`])(.*)\1(?:\s+#.*)?$/.exec(value);
      value = quoted ? quoted[2]! : value.replace(/\s+#.*$/, '');
      const start = offset + match[1]!.length;
      file.setting({ key, ancestors: [], value, start, end: start + key.length });
      file.string(value, offset, offset + line.length, key);
    }
    offset += line.length;
  }
  return file.findings;
}
