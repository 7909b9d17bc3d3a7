/**
 * Go, through the tree-sitter Go grammar (the wasm build shipped in the tree-sitter-go package,
 * run by web-tree-sitter): a real parse, tolerant of code that does not compile.
 *
 * Names are resolved through the file's imports (an aliased `g "google.golang.org/grpc"` is
 * still grpc) and single-value `const` declarations in the same file. The framework rules (Kitex,
 * go-zero, go-micro) judge only calls whose options are all visible: `opts...` or an option held
 * in a variable makes the call unknown, and unknown is never reported.
 */
import { createRequire } from 'node:module';
import type { Language as TreeSitterLanguage, Node, Parser as TreeSitterParser } from 'web-tree-sitter';
import { TlsmeshError } from '../errors.js';
import type { SourceComment } from './suppressions.js';
import type { RawFinding } from './types.js';

export interface GoOutput {
  readonly findings: RawFinding[];
  readonly comments: SourceComment[];
}

const GRPC = 'google.golang.org/grpc';
const GRPC_INSECURE = 'google.golang.org/grpc/credentials/insecure';
const TLS = 'crypto/tls';
const NET_HTTP = 'net/http';
const KITEX_CLIENT = 'github.com/cloudwego/kitex/client';
const ZRPC = 'github.com/zeromicro/go-zero/zrpc';
const GO_MICRO_TRANSPORT = /^(?:go-micro\.dev\/v\d+|github\.com\/(?:micro|asim)\/go-micro(?:\/v\d+)?)\/transport$/;
const GO_MICRO_GRPC_TRANSPORT = /go-(?:micro|plugins)\b.*\/transport\/grpc(?:\/v\d+)?$/;

const WEAK_CLIENT_AUTH = new Set(['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven']);
const WEAK_VERSION_NAMES = new Set(['VersionSSL30', 'VersionTLS10', 'VersionTLS11']);
const TLS12 = 0x0303;

type GoValue = { kind: 'bool'; value: boolean } | { kind: 'int'; value: number } | { kind: 'selector'; module: string | undefined; name: string } | { kind: 'unknown' };
const UNKNOWN: GoValue = { kind: 'unknown' };

/** `github.com/micro/go-micro/v2/transport` → `transport`, `gopkg.in/yaml.v3` → `yaml`. */
export function defaultPackageName(path: string): string {
  const segments = path.split('/');
  let last = segments[segments.length - 1] ?? path;
  if (/^v\d+$/.test(last) && segments.length > 1) last = segments[segments.length - 2]!;
  return last.replace(/\.v\d+$/, '').replace(/^go-/, '').replace(/-go$/, '').replace(/[^A-Za-z0-9_]/g, '_');
}

function parseGoInt(text: string): number | undefined {
  const clean = text.replace(/_/g, '');
  const value = /^0[oO]/.test(clean) ? parseInt(clean.slice(2), 8) : /^0[0-7]+$/.test(clean) ? parseInt(clean, 8) : Number(clean);
  return Number.isFinite(value) ? value : undefined;
}

const unquote = (text: string): string => text.replace(/^["`]|["`]$/g, '');

class GoFile {
  readonly findings: RawFinding[] = [];
  readonly #imports = new Map<string, string>();
  readonly #consts = new Map<string, Node | null>();
  readonly #httpServerNames = new Set<string>();

  constructor(readonly root: Node) {}

  run(): void {
    for (const spec of this.root.descendantsOfType('import_spec')) {
      const pathNode = spec.childForFieldName('path');
      if (!pathNode) continue;
      const path = unquote(pathNode.text);
      const nameNode = spec.childForFieldName('name');
      const name = nameNode ? nameNode.text : defaultPackageName(path);
      if (name !== '_' && name !== '.') this.#imports.set(name, path);
    }
    for (const spec of this.root.descendantsOfType('const_spec')) {
      const names = spec.childrenForFieldName('name');
      const values = spec.childForFieldName('value')?.namedChildren ?? [];
      names.forEach((name, index) => {
        // A name declared twice (different scopes) is ambiguous for a file-wide table: unknown.
        this.#consts.set(name.text, this.#consts.has(name.text) ? null : (values[index] ?? null));
      });
    }
    for (const literal of this.root.descendantsOfType('composite_literal')) {
      if (this.#isType(literal.childForFieldName('type'), NET_HTTP, 'Server')) {
        const name = this.#boundName(literal);
        if (name) this.#httpServerNames.add(name);
      }
    }
    for (const node of this.root.descendantsOfType(['composite_literal', 'assignment_statement', 'call_expression'])) {
      if (node.type === 'composite_literal') this.#checkLiteral(node);
      else if (node.type === 'assignment_statement') this.#checkAssignment(node);
      else this.#checkCall(node);
    }
  }

  #report(ruleId: string, node: Node, message: string, key?: string): void {
    this.findings.push({ ruleId, start: node.startIndex, end: node.endIndex, message, key: key ?? node.text.replace(/\s+/g, ' ').slice(0, 160) });
  }

  // ---- names and values ---------------------------------------------------------------------

  /** `pkg.Name` as (import path, Name); unresolved packages keep their local name. */
  #selector(node: Node | null): { module: string | undefined; pkg: string; name: string } | undefined {
    if (!node || (node.type !== 'selector_expression' && node.type !== 'qualified_type')) return undefined;
    const operand = node.childForFieldName(node.type === 'selector_expression' ? 'operand' : 'package');
    const field = node.childForFieldName(node.type === 'selector_expression' ? 'field' : 'name');
    if (!operand || !field || (operand.type !== 'identifier' && operand.type !== 'package_identifier')) return undefined;
    return { module: this.#imports.get(operand.text), pkg: operand.text, name: field.text };
  }

  #isType(node: Node | null, module: string, name: string): boolean {
    const selector = this.#selector(node);
    if (!selector || selector.name !== name) return false;
    return selector.module === module || (selector.module === undefined && selector.pkg === module.slice(module.lastIndexOf('/') + 1));
  }

  #callee(call: Node): { module: string | undefined; pkg: string; name: string } | undefined {
    return this.#selector(call.childForFieldName('function'));
  }

  #value(input: Node | null, depth = 0): GoValue {
    if (!input || depth > 8) return UNKNOWN;
    let node: Node = input;
    while ((node.type === 'literal_element' || node.type === 'parenthesized_expression') && node.firstNamedChild) node = node.firstNamedChild;
    switch (node.type) {
      case 'true':
        return { kind: 'bool', value: true };
      case 'false':
        return { kind: 'bool', value: false };
      case 'int_literal': {
        const value = parseGoInt(node.text);
        return value === undefined ? UNKNOWN : { kind: 'int', value };
      }
      case 'identifier': {
        const declared = this.#consts.get(node.text);
        return declared ? this.#value(declared, depth + 1) : UNKNOWN;
      }
      case 'selector_expression': {
        const selector = this.#selector(node);
        return selector ? { kind: 'selector', module: selector.module ?? selector.pkg, name: selector.name } : UNKNOWN;
      }
      default:
        return UNKNOWN;
    }
  }

  #weakVersion(value: GoValue): boolean {
    if (value.kind === 'int') return value.value > 0 && value.value < TLS12;
    return value.kind === 'selector' && (value.module === TLS || value.module === 'tls') && WEAK_VERSION_NAMES.has(value.name);
  }

  #tlsConstant(value: GoValue): string | undefined {
    return value.kind === 'selector' && (value.module === TLS || value.module === 'tls') ? value.name : undefined;
  }

  /** The fields of a composite literal by name: `Field: value` elements only. */
  #fields(literal: Node): Map<string, { element: Node; value: Node | null }> {
    const fields = new Map<string, { element: Node; value: Node | null }>();
    const body = literal.childForFieldName('body');
    for (const element of body?.namedChildren ?? []) {
      if (element.type !== 'keyed_element') continue;
      let key = element.childForFieldName('key') ?? element.namedChild(0);
      while (key && key.type === 'literal_element' && key.firstNamedChild) key = key.firstNamedChild;
      if (!key || (key.type !== 'identifier' && key.type !== 'field_identifier')) continue;
      fields.set(key.text, { element, value: element.childForFieldName('value') ?? element.namedChild(1) });
    }
    return fields;
  }

  /** The variable a composite literal (or &literal) is assigned to, if any. */
  #boundName(literal: Node): string | undefined {
    let node: Node = literal;
    if (node.parent?.type === 'unary_expression') node = node.parent;
    const list = node.parent;
    const statement = list?.parent;
    if (!list || list.type !== 'expression_list' || !statement) return undefined;
    if (!['short_var_declaration', 'assignment_statement', 'var_spec'].includes(statement.type)) return undefined;
    const index = list.namedChildren.findIndex((child) => child.id === node.id);
    const left = statement.type === 'var_spec' ? statement.childrenForFieldName('name') : (statement.childForFieldName('left')?.namedChildren ?? []);
    const target = left[index];
    return target?.type === 'identifier' ? target.text : undefined;
  }

  /** The function or method declaration around a node (the file when at top level). */
  #enclosingFunction(node: Node): Node {
    let current: Node | null = node.parent;
    while (current && current.type !== 'function_declaration' && current.type !== 'method_declaration') current = current.parent;
    return current ?? this.root;
  }

  #callsIn(scope: Node, predicate: (callee: { module: string | undefined; pkg: string; name: string }, call: Node) => boolean): boolean {
    return scope.descendantsOfType('call_expression').some((call) => {
      const callee = this.#callee(call);
      return callee !== undefined && predicate(callee, call);
    });
  }

  /** The arguments of a call, or undefined when some are out of sight (`opts...`). */
  #arguments(call: Node): Node[] | undefined {
    const args = call.childForFieldName('arguments')?.namedChildren ?? [];
    return args.some((arg) => arg.type === 'variadic_argument') ? undefined : args.filter((arg) => arg.type !== 'comment');
  }

  // ---- rules ---------------------------------------------------------------------------------

  #checkLiteral(literal: Node): void {
    const fields = this.#fields(literal);
    const skip = fields.get('InsecureSkipVerify');
    const skipValue = skip ? this.#value(skip.value) : UNKNOWN;
    // go-spiffe style: verification replaced, not dropped (VerifyPeerCertificate / VerifyConnection).
    if (skip && skipValue.kind === 'bool' && skipValue.value && !fields.has('VerifyPeerCertificate') && !fields.has('VerifyConnection')) {
      this.#report('go/insecure-skip-verify', skip.element, 'InsecureSkipVerify: true accepts any server certificate, so anyone on the path can impersonate the server');
    }
    if (!this.#isType(literal.childForFieldName('type'), TLS, 'Config')) return;
    for (const name of ['MinVersion', 'MaxVersion']) {
      const field = fields.get(name);
      if (field && this.#weakVersion(this.#value(field.value))) {
        this.#report('go/tls-min-version-below-12', field.element, `${name} ${field.value?.text ?? ''} ${name === 'MinVersion' ? 'allows' : 'forces'} a protocol below TLS 1.2 (deprecated by RFC 8996)`);
      }
    }
    const suites = fields.get('CipherSuites');
    if (suites?.value) {
      const weak = suites.value
        .descendantsOfType('selector_expression')
        .map((node) => this.#selector(node))
        .filter((selector) => selector !== undefined && (selector.module === TLS || selector.pkg === 'tls') && /RC4|3DES|_NULL_|NULL_SHA/.test(selector.name))
        .map((selector) => selector!.name);
      if (weak.length > 0) this.#report('go/tls-weak-cipher-suites', suites.element, `CipherSuites enables weak suites: ${weak.slice(0, 4).join(', ')}${weak.length > 4 ? ', …' : ''}`);
    }
    const clientAuth = fields.get('ClientAuth');
    const clientCas = fields.get('ClientCAs');
    if ((!clientAuth && !clientCas) || fields.has('GetConfigForClient')) return;
    if (clientAuth) {
      const mode = this.#tlsConstant(this.#value(clientAuth.value));
      if (mode !== undefined && WEAK_CLIENT_AUTH.has(mode)) {
        this.#report('go/tls-client-auth-weak', clientAuth.element, `ClientAuth tls.${mode} does not require a client certificate that verifies: use tls.RequireAndVerifyClientCert`);
      } else if (mode === 'RequireAndVerifyClientCert' && !clientCas) {
        this.#report('go/tls-client-cas-missing', clientAuth.element, 'RequireAndVerifyClientCert without ClientCAs verifies client certificates against the system roots: any publicly issued client certificate is accepted');
      }
    } else if (clientCas && !this.#assignsField(this.#enclosingFunction(literal), 'ClientAuth')) {
      this.#report('go/tls-client-auth-weak', clientCas.element, 'ClientCAs is set but ClientAuth is left at tls.NoClientCert: clients are never asked for a certificate');
    }
  }

  #assignsField(scope: Node, field: string): boolean {
    return scope.descendantsOfType('assignment_statement').some((statement) =>
      (statement.childForFieldName('left')?.namedChildren ?? []).some((target) => target.type === 'selector_expression' && target.childForFieldName('field')?.text === field),
    );
  }

  #checkAssignment(statement: Node): void {
    const left = statement.childForFieldName('left')?.namedChildren ?? [];
    const right = statement.childForFieldName('right')?.namedChildren ?? [];
    left.forEach((target, index) => {
      if (target.type !== 'selector_expression') return;
      const field = target.childForFieldName('field')?.text;
      const value = this.#value(right[index] ?? null);
      if (field === 'InsecureSkipVerify' && value.kind === 'bool' && value.value) {
        this.#report('go/insecure-skip-verify', statement, 'InsecureSkipVerify = true accepts any server certificate, so anyone on the path can impersonate the server');
      } else if ((field === 'MinVersion' || field === 'MaxVersion') && this.#weakVersion(value)) {
        this.#report('go/tls-min-version-below-12', statement, `${field} ${right[index]?.text ?? ''} ${field === 'MinVersion' ? 'allows' : 'forces'} a protocol below TLS 1.2 (deprecated by RFC 8996)`);
      } else if (field === 'ClientAuth') {
        const mode = this.#tlsConstant(value);
        if (mode !== undefined && WEAK_CLIENT_AUTH.has(mode)) this.#report('go/tls-client-auth-weak', statement, `ClientAuth tls.${mode} does not require a client certificate that verifies: use tls.RequireAndVerifyClientCert`);
      }
    });
  }

  #checkCall(call: Node): void {
    const callee = this.#callee(call);
    if (!callee) return;
    const { module, name } = callee;
    const where = `${callee.pkg}.${name}`;
    if ((module === GRPC && name === 'WithInsecure') || (module === GRPC_INSECURE && name === 'NewCredentials')) {
      this.#report('go/grpc-insecure-credentials', call, `${where}() turns off transport security: calls travel in plaintext and nobody is authenticated`, `${where}()`);
    } else if (module === TLS && name === 'InsecureCipherSuites') {
      this.#report('go/tls-weak-cipher-suites', call, 'tls.InsecureCipherSuites() lists suites Go disables by default (RC4, 3DES, CBC-SHA256)', `${where}()`);
    } else if (module === GRPC && name === 'NewServer') {
      this.#checkGrpcServer(call, where);
    } else if (module === NET_HTTP && (name === 'ListenAndServe' || (name === 'Serve' && !this.#wrapsTlsListener(call)))) {
      this.#report('go/http-plaintext-listener', call, `${where} serves HTTP without TLS (a port that serves only health checks or metrics may stay plaintext: suppress it with that reason)`, where);
    } else if (module === undefined && name === 'ListenAndServe' && this.#httpServerNames.has(callee.pkg)) {
      this.#report('go/http-plaintext-listener', call, `${where}() serves HTTP without TLS, whatever TLSConfig the http.Server holds (a health or metrics port may stay plaintext: suppress it with that reason)`, where);
    } else if ((module === KITEX_CLIENT && name === 'NewClient') || (module?.includes('/kitex_gen/') && (name === 'NewClient' || name === 'MustNewClient'))) {
      this.#checkKitexClient(call, where);
    } else if (module === ZRPC && (name === 'MustNewServer' || name === 'NewServer')) {
      this.#checkZrpcServer(call, where);
    } else if (module === ZRPC && /^(?:Must)?NewClient(?:WithTarget)?$/.test(name)) {
      this.#checkZrpcClient(call, where);
    } else if (module !== undefined && ((GO_MICRO_TRANSPORT.test(module) && name === 'NewHTTPTransport') || (GO_MICRO_GRPC_TRANSPORT.test(module) && name === 'NewTransport'))) {
      this.#checkGoMicroTransport(call, where);
    }
  }

  /** The function around `node` makes a TLS listener (tls.NewListener / tls.Listen): Serve gets TLS from it. */
  #wrapsTlsListener(node: Node): boolean {
    return this.#callsIn(this.#enclosingFunction(node), (callee) => callee.module === TLS && (callee.name === 'NewListener' || callee.name === 'Listen'));
  }

  #checkGrpcServer(call: Node, where: string): void {
    const args = this.#arguments(call);
    if (!args || args.some((arg) => arg.type !== 'call_expression')) return;
    if (args.some((arg) => this.#callee(arg)?.name === 'Creds')) return;
    if (this.#wrapsTlsListener(call)) return;
    this.#report('go/grpc-server-plaintext', call, `${where}() without grpc.Creds serves gRPC in plaintext: callers are not authenticated`, `${where}()`);
  }

  #checkKitexClient(call: Node, where: string): void {
    const args = this.#arguments(call);
    if (!args) return;
    const options = args.filter((arg) => arg.type === 'call_expression');
    if (options.some((option) => this.#callee(option)?.name === 'WithGRPCTLSConfig')) return;
    // Options held in variables may carry WithGRPCTLSConfig: unknown.
    if (args.slice(1).some((arg) => arg.type === 'identifier' || arg.type === 'selector_expression')) return;
    this.#report('go/kitex-client-without-tls', call, `Kitex client ${where} without client.WithGRPCTLSConfig: the connection is plaintext (Kitex offers TLS only on its gRPC transport)`, where);
  }

  #checkZrpcServer(call: Node, where: string): void {
    const scope = this.#enclosingFunction(call);
    const hasCreds = this.#callsIn(scope, (callee) => callee.name === 'Creds' && (callee.module === GRPC || callee.pkg === 'grpc'));
    const opaqueOptions = this.#callsIn(scope, (callee, inner) => {
      if (callee.name !== 'AddOptions') return false;
      const args = this.#arguments(inner);
      return args === undefined || args.some((arg) => arg.type !== 'call_expression');
    });
    if (hasCreds || opaqueOptions) return;
    this.#report('go/go-zero-server-without-creds', call, `${where} without grpc.Creds (server.AddOptions(grpc.Creds(...))) serves gRPC in plaintext: go-zero has no TLS in RpcServerConf`, where);
  }

  #checkZrpcClient(call: Node, where: string): void {
    const args = this.#arguments(call);
    if (!args) return;
    const tlsOption = (node: Node): boolean => node.descendantsOfType('call_expression').concat(node.type === 'call_expression' ? [node] : []).some((inner) => /TransportCredentials|Tls|TLS/.test(this.#callee(inner)?.name ?? ''));
    if (args.some(tlsOption)) return;
    if (args.slice(1).some((arg) => arg.type === 'identifier')) return;
    this.#report('go/go-zero-client-without-tls', call, `${where} without transport credentials dials with insecure credentials: calls travel in plaintext`, where);
  }

  #checkGoMicroTransport(call: Node, where: string): void {
    const args = this.#arguments(call);
    if (!args || args.some((arg) => arg.type !== 'call_expression')) return;
    let secure = false;
    let tlsConfig = false;
    for (const option of args) {
      const callee = this.#callee(option);
      if (callee?.name === 'TLSConfig') tlsConfig = true;
      if (callee?.name === 'Secure') {
        const value = this.#value(option.childForFieldName('arguments')?.namedChild(0) ?? null);
        if (value.kind !== 'bool') return;
        secure = value.value;
      }
    }
    if (tlsConfig) return;
    if (secure) {
      this.#report('go/go-micro-secure-without-tls-config', call, `${where} with Secure(true) but no TLSConfig: go-micro uses a self-signed certificate and dials with InsecureSkipVerify, so nobody is authenticated`, where);
    } else {
      this.#report('go/go-micro-transport-plaintext', call, `${where} without transport.Secure / transport.TLSConfig carries messages in plaintext`, where);
    }
  }
}

let ready: Promise<{ language: TreeSitterLanguage; Parser: typeof TreeSitterParser }> | undefined;

async function loadGo(): Promise<{ language: TreeSitterLanguage; Parser: typeof TreeSitterParser }> {
  try {
    const { Parser, Language } = await import('web-tree-sitter');
    await Parser.init();
    const wasm = createRequire(import.meta.url).resolve('tree-sitter-go/tree-sitter-go.wasm');
    return { language: await Language.load(wasm), Parser };
  } catch (error) {
    throw new TlsmeshError('ERR_CONFIG', `cannot load the Go grammar (web-tree-sitter with tree-sitter-go/tree-sitter-go.wasm): ${(error as Error).message}; reinstall tlsmesh`, { cause: error });
  }
}

/** A parser for Go files; loads the grammar on first use, then parses one file at a time. */
export class GoAnalyzer {
  readonly #parser: TreeSitterParser;

  private constructor(parser: TreeSitterParser) {
    this.#parser = parser;
  }

  static async create(): Promise<GoAnalyzer> {
    ready ??= loadGo();
    let loaded;
    try {
      loaded = await ready;
    } catch (error) {
      ready = undefined;
      throw error;
    }
    const parser = new loaded.Parser();
    parser.setLanguage(loaded.language);
    return new GoAnalyzer(parser);
  }

  analyze(text: string): GoOutput {
    const tree = this.#parser.parse(text);
    if (!tree) throw new TlsmeshError('ERR_INTERNAL', 'tree-sitter returned no tree for a Go file');
    try {
      const file = new GoFile(tree.rootNode);
      file.run();
      const comments = tree.rootNode.descendantsOfType('comment').map((node) => ({ start: node.startIndex, end: node.endIndex, text: node.text }));
      return { findings: file.findings, comments };
    } finally {
      tree.delete();
    }
  }

  dispose(): void {
    this.#parser.delete();
  }
}
