/**
 * TypeScript and JavaScript, through the TypeScript compiler's AST and checker (never regexes).
 *
 * All the scanned TS/JS files form one program (no lib, no node_modules, no type checking): the
 * checker only resolves names, so `const INSECURE = false` in one file and `{ rejectUnauthorized:
 * INSECURE }` in another are seen together, shadowing is respected, and imports are followed to
 * their module (`import { credentials as c } from '@grpc/grpc-js'`, `require('node:http')`).
 *
 * Values are evaluated only when they are certain: literals, `const` bindings (also destructured),
 * object spreads, property reads of constant objects, string concatenation, templates and
 * `[...].join()`. Anything else (parameters, `let`, calls, conditions) is unknown and reported
 * nowhere: the auditor prefers a missed finding to a false one, and the rules that depend on an
 * absence (no rejectUnauthorized next to requestCert) stay quiet when an unknown spread could
 * supply it.
 */
import type * as TS from 'typescript';
import type typescript from 'typescript';
import type { SourceComment } from './suppressions.js';
import type { RawFinding } from './types.js';

type Ts = typeof typescript;

export interface TsInput {
  readonly absolutePath: string;
  readonly text: string;
}

export interface TsOutput {
  readonly findings: RawFinding[];
  readonly comments: SourceComment[];
}

/** Loaded on first use: the CLI's other commands and the SDK never pay for the compiler. */
export async function loadTypeScript(): Promise<Ts> {
  const module = await import('typescript');
  return module.default;
}

type Primitive = string | number | boolean | null | undefined;
type Value =
  | { kind: 'const'; value: Primitive }
  | { kind: 'object'; node: TS.ObjectLiteralExpression }
  | { kind: 'array'; node: TS.ArrayLiteralExpression }
  | { kind: 'function'; node: TS.SignatureDeclaration }
  | { kind: 'unknown' };

const UNKNOWN: Value = { kind: 'unknown' };
const MAX_DEPTH = 16;

interface Entry {
  readonly value: Value;
  /** The property (assignment, shorthand or method) that defines it. */
  readonly node: TS.Node;
  /** In the object literal asked about, not brought in by a spread. */
  readonly direct: boolean;
}
type Lookup = { found: true; entry: Entry } | { found: false; certain: boolean };

interface Qualified {
  /** The imported module (`node:` stripped), or undefined for a global or local name. */
  readonly module: string | undefined;
  readonly path: readonly string[];
}

const GRPC_MODULES = new Set(['@grpc/grpc-js', 'grpc', 'nice-grpc', 'nice-grpc-common']);
const TLSMESH_MODULES = new Set(['tlsmesh', 'tlsmesh/sdk']);
const WEAK_TLS_VERSIONS = new Set(['sslv2', 'sslv3', 'tlsv1', 'tlsv1.0', 'tlsv1.1']);
const LEGACY_SECURE_PROTOCOL = /^(?:SSLv2|SSLv3|TLSv1|TLSv1_1)_(?:client_|server_)?method$/i;

/**
 * The parts of an OpenSSL cipher string that enable weak suites. `!X` and `-X` remove suites and
 * `+X` only reorders them, so those are never weak; `A+B` is the intersection, weak if a part is.
 */
export function weakCipherTokens(ciphers: string): string[] {
  const weakKeyword = /^(?:E?NULL|ANULL|COMPLEMENTOFALL|RC4|RC2|3DES|DES|IDEA|MD5|EXP|EXPORT(?:40|56)?|ADH|AECDH|ANON)$/i;
  const weak: string[] = [];
  for (const token of ciphers.split(/[:,\s]+/)) {
    if (token === '' || /^[!+-]/.test(token)) continue;
    if (token.startsWith('@')) {
      if (/^@SECLEVEL=0$/i.test(token)) weak.push(token);
      continue;
    }
    const parts = token.split('+');
    const segments = parts.flatMap((part) => part.split(/[-_]/));
    if (parts.some((part) => weakKeyword.test(part)) || segments.some((segment) => weakKeyword.test(segment) || /^DES$|^CBC3$|^EDE$/i.test(segment))) {
      weak.push(token);
    }
  }
  return weak;
}

/** The property names the rules read; other properties are never evaluated (that keeps big files fast). */
const SETTINGS = new Set([
  'rejectUnauthorized',
  'requestCert',
  'NODE_TLS_REJECT_UNAUTHORIZED',
  'minVersion',
  'maxVersion',
  'DEFAULT_MIN_VERSION',
  'DEFAULT_MAX_VERSION',
  'secureProtocol',
  'ciphers',
  'DEFAULT_CIPHERS',
  'checkServerIdentity',
]);

const REJECT_UNAUTHORIZED_MESSAGE = "rejectUnauthorized is false: the peer's certificate is not verified (a client accepts any server, so anyone on the path can impersonate it)";

const normalizeModule = (specifier: string): string => specifier.replace(/^node:/, '');

const isFalsyDefined = (value: Value): boolean => value.kind === 'const' && value.value !== undefined && !value.value;
const isConstTrue = (value: Value): boolean => value.kind === 'const' && value.value === true;
const constString = (value: Value): string | undefined => (value.kind === 'const' && typeof value.value === 'string' ? value.value : undefined);

class FileAnalyzer {
  readonly findings: RawFinding[] = [];
  readonly #ts: Ts;
  readonly #checker: TS.TypeChecker;
  readonly #file: TS.SourceFile;

  constructor(ts: Ts, checker: TS.TypeChecker, file: TS.SourceFile) {
    this.#ts = ts;
    this.#checker = checker;
    this.#file = file;
  }

  run(): void {
    const visit = (node: TS.Node): void => {
      if (this.#ts.isObjectLiteralExpression(node)) this.#checkObject(node);
      else if (this.#ts.isBinaryExpression(node) && node.operatorToken.kind === this.#ts.SyntaxKind.EqualsToken) this.#checkAssignment(node);
      else if (this.#ts.isCallExpression(node)) this.#checkCall(node);
      else if (this.#ts.isNewExpression(node)) this.#checkNew(node);
      this.#ts.forEachChild(node, visit);
    };
    visit(this.#file);
  }

  // ---- reporting -----------------------------------------------------------------------------

  #report(ruleId: string, node: TS.Node, message: string, key?: string): void {
    const start = node.getStart(this.#file);
    const text = this.#file.text.slice(start, node.end).replace(/\s+/g, ' ').trim();
    this.findings.push({ ruleId, start, end: node.end, message, key: key ?? (text.length > 160 ? text.slice(0, 160) : text) });
  }

  // ---- evaluation ----------------------------------------------------------------------------

  #unwrap(expression: TS.Expression): TS.Expression {
    const ts = this.#ts;
    let current = expression;
    while (ts.isParenthesizedExpression(current) || ts.isAsExpression(current) || ts.isSatisfiesExpression(current) || ts.isNonNullExpression(current) || ts.isTypeAssertionExpression(current)) {
      current = current.expression;
    }
    return current;
  }

  #evaluate(input: TS.Expression, depth = 0): Value {
    const ts = this.#ts;
    if (depth > MAX_DEPTH) return UNKNOWN;
    const node = this.#unwrap(input);
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return { kind: 'const', value: node.text };
    if (ts.isNumericLiteral(node)) return { kind: 'const', value: Number(node.text) };
    switch (node.kind) {
      case ts.SyntaxKind.TrueKeyword:
        return { kind: 'const', value: true };
      case ts.SyntaxKind.FalseKeyword:
        return { kind: 'const', value: false };
      case ts.SyntaxKind.NullKeyword:
        return { kind: 'const', value: null };
    }
    if (ts.isVoidExpression(node)) return { kind: 'const', value: undefined };
    if (ts.isPrefixUnaryExpression(node)) {
      const operand = this.#evaluate(node.operand, depth + 1);
      if (operand.kind !== 'const') return UNKNOWN;
      if (node.operator === ts.SyntaxKind.ExclamationToken) return { kind: 'const', value: !operand.value };
      if (node.operator === ts.SyntaxKind.MinusToken && typeof operand.value === 'number') return { kind: 'const', value: -operand.value };
      return UNKNOWN;
    }
    if (ts.isTemplateExpression(node)) {
      let text = node.head.text;
      for (const span of node.templateSpans) {
        const part = this.#evaluate(span.expression, depth + 1);
        if (part.kind !== 'const') return UNKNOWN;
        text += String(part.value) + span.literal.text;
      }
      return { kind: 'const', value: text };
    }
    if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken) {
      const left = this.#evaluate(node.left, depth + 1);
      const right = this.#evaluate(node.right, depth + 1);
      if (left.kind !== 'const' || right.kind !== 'const') return UNKNOWN;
      if (typeof left.value === 'number' && typeof right.value === 'number') return { kind: 'const', value: left.value + right.value };
      if (typeof left.value === 'string' || typeof right.value === 'string') return { kind: 'const', value: String(left.value) + String(right.value) };
      return UNKNOWN;
    }
    if (ts.isObjectLiteralExpression(node)) return { kind: 'object', node };
    if (ts.isArrayLiteralExpression(node)) return { kind: 'array', node };
    if (ts.isArrowFunction(node) || ts.isFunctionExpression(node)) return { kind: 'function', node };
    if (ts.isCallExpression(node)) return this.#evaluateJoin(node, depth);
    if (ts.isIdentifier(node)) return this.#evaluateIdentifier(node, depth);
    if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) {
      const name = this.#accessName(node);
      if (name === undefined) return UNKNOWN;
      const object = this.#evaluate(node.expression, depth + 1);
      if (object.kind !== 'object') return UNKNOWN;
      const found = this.#lookup(object.node, name, depth + 1);
      return found.found ? found.entry.value : found.certain ? { kind: 'const', value: undefined } : UNKNOWN;
    }
    return UNKNOWN;
  }

  /** `[a, b].join(':')` of constant strings. */
  #evaluateJoin(call: TS.CallExpression, depth: number): Value {
    const ts = this.#ts;
    const callee = this.#unwrap(call.expression);
    if (!ts.isPropertyAccessExpression(callee) || callee.name.text !== 'join') return UNKNOWN;
    const array = this.#evaluate(callee.expression, depth + 1);
    if (array.kind !== 'array') return UNKNOWN;
    const separatorArgument = call.arguments[0];
    const separator = separatorArgument === undefined ? ',' : constString(this.#evaluate(separatorArgument, depth + 1));
    if (separator === undefined) return UNKNOWN;
    const parts: string[] = [];
    for (const element of array.node.elements) {
      if (ts.isSpreadElement(element)) return UNKNOWN;
      const part = this.#evaluate(element, depth + 1);
      if (part.kind !== 'const' || (typeof part.value !== 'string' && typeof part.value !== 'number')) return UNKNOWN;
      parts.push(String(part.value));
    }
    return { kind: 'const', value: parts.join(separator) };
  }

  /** The declaration a name refers to, through imports between scanned files. */
  #declarationOf(identifier: TS.Identifier, followAliases: boolean): TS.Declaration | undefined {
    const ts = this.#ts;
    let symbol: TS.Symbol | undefined;
    try {
      symbol = ts.isShorthandPropertyAssignment(identifier.parent) && identifier.parent.name === identifier
        ? this.#checker.getShorthandAssignmentValueSymbol(identifier.parent)
        : this.#checker.getSymbolAtLocation(identifier);
      if (symbol && followAliases && symbol.flags & ts.SymbolFlags.Alias) symbol = this.#checker.getAliasedSymbol(symbol);
    } catch {
      return undefined;
    }
    return symbol?.valueDeclaration ?? symbol?.declarations?.[0];
  }

  #evaluateIdentifier(identifier: TS.Identifier, depth: number): Value {
    const ts = this.#ts;
    const declaration = this.#declarationOf(identifier, true);
    if (!declaration) return identifier.text === 'undefined' ? { kind: 'const', value: undefined } : UNKNOWN;
    if (ts.isVariableDeclaration(declaration)) {
      if (!(ts.getCombinedNodeFlags(declaration) & ts.NodeFlags.Const) || !declaration.initializer || !ts.isIdentifier(declaration.name)) return UNKNOWN;
      return this.#evaluate(declaration.initializer, depth + 1);
    }
    if (ts.isBindingElement(declaration)) return this.#evaluateBinding(declaration, depth + 1);
    if (ts.isFunctionDeclaration(declaration) && declaration.body) return { kind: 'function', node: declaration };
    return UNKNOWN;
  }

  /** `const { a: { b } } = CONSTANT`: the value `b` is bound to. */
  #evaluateBinding(element: TS.BindingElement, depth: number): Value {
    const ts = this.#ts;
    if (depth > MAX_DEPTH || element.dotDotDotToken) return UNKNOWN;
    const pattern = element.parent;
    const container = pattern.parent;
    let source: Value;
    if (ts.isVariableDeclaration(container)) {
      if (!(ts.getCombinedNodeFlags(container) & ts.NodeFlags.Const) || !container.initializer) return UNKNOWN;
      source = this.#evaluate(container.initializer, depth + 1);
    } else if (ts.isBindingElement(container)) {
      source = this.#evaluateBinding(container, depth + 1);
    } else {
      return UNKNOWN;
    }
    let bound: Value = UNKNOWN;
    if (ts.isObjectBindingPattern(pattern)) {
      const nameNode = element.propertyName ?? element.name;
      const name = ts.isIdentifier(nameNode) || ts.isStringLiteral(nameNode) ? nameNode.text : undefined;
      if (name === undefined || source.kind !== 'object') return UNKNOWN;
      const found = this.#lookup(source.node, name, depth + 1);
      if (found.found) bound = found.entry.value;
      else if (found.certain) bound = { kind: 'const', value: undefined };
    } else {
      const index = pattern.elements.indexOf(element);
      if (source.kind !== 'array') return UNKNOWN;
      const item = source.node.elements[index];
      if (item === undefined || ts.isSpreadElement(item) || ts.isOmittedExpression(item)) return UNKNOWN;
      bound = this.#evaluate(item, depth + 1);
    }
    if (bound.kind === 'const' && bound.value === undefined && element.initializer) return this.#evaluate(element.initializer, depth + 1);
    return bound;
  }

  #propertyName(name: TS.PropertyName): string | undefined {
    const ts = this.#ts;
    if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name) || ts.isNoSubstitutionTemplateLiteral(name)) return name.text;
    if (ts.isComputedPropertyName(name)) return constString(this.#evaluate(name.expression));
    return undefined;
  }

  #accessName(node: TS.PropertyAccessExpression | TS.ElementAccessExpression): string | undefined {
    const ts = this.#ts;
    if (ts.isPropertyAccessExpression(node)) return ts.isIdentifier(node.name) ? node.name.text : undefined;
    const argument = this.#evaluate(node.argumentExpression);
    return argument.kind === 'const' && (typeof argument.value === 'string' || typeof argument.value === 'number') ? String(argument.value) : undefined;
  }

  /** The entry that wins for `name` in an object literal: the last definition, spreads included. */
  #lookup(object: TS.ObjectLiteralExpression, name: string, depth = 0, direct = true): Lookup {
    const ts = this.#ts;
    if (depth > MAX_DEPTH) return { found: false, certain: false };
    for (let index = object.properties.length - 1; index >= 0; index--) {
      const property = object.properties[index]!;
      if (ts.isSpreadAssignment(property)) {
        const spread = this.#evaluate(property.expression, depth + 1);
        if (spread.kind === 'object') {
          const inner = this.#lookup(spread.node, name, depth + 1, false);
          if (inner.found || !inner.certain) return inner;
          continue;
        }
        if (spread.kind === 'const' && (spread.value === undefined || spread.value === null)) continue;
        return { found: false, certain: false };
      }
      if (property.name === undefined || this.#propertyName(property.name) !== name) continue;
      if (ts.isPropertyAssignment(property)) return { found: true, entry: { value: this.#evaluate(property.initializer, depth + 1), node: property, direct } };
      if (ts.isShorthandPropertyAssignment(property)) return { found: true, entry: { value: this.#evaluateIdentifier(property.name, depth + 1), node: property, direct } };
      if (ts.isMethodDeclaration(property)) return { found: true, entry: { value: property.body ? { kind: 'function', node: property } : UNKNOWN, node: property, direct } };
      return { found: true, entry: { value: UNKNOWN, node: property, direct } };
    }
    return { found: false, certain: true };
  }

  /** Where a callee or object comes from: `grpc.credentials` → { module: '@grpc/grpc-js', path: ['credentials'] }. */
  #qualify(input: TS.Expression, depth = 0): Qualified | undefined {
    const ts = this.#ts;
    if (depth > MAX_DEPTH) return undefined;
    const node = this.#unwrap(input);
    if (ts.isIdentifier(node)) {
      const declaration = this.#declarationOf(node, false);
      const local = { module: undefined, path: [node.text] };
      if (!declaration) return local;
      if (ts.isImportSpecifier(declaration)) {
        const specifier = declaration.parent.parent.parent.moduleSpecifier;
        return ts.isStringLiteral(specifier) ? { module: normalizeModule(specifier.text), path: [(declaration.propertyName ?? declaration.name).text] } : local;
      }
      if (ts.isImportClause(declaration) || ts.isNamespaceImport(declaration)) {
        const importDeclaration = ts.isImportClause(declaration) ? declaration.parent : declaration.parent.parent;
        return ts.isStringLiteral(importDeclaration.moduleSpecifier) ? { module: normalizeModule(importDeclaration.moduleSpecifier.text), path: [] } : local;
      }
      if (ts.isImportEqualsDeclaration(declaration)) {
        const reference = declaration.moduleReference;
        return ts.isExternalModuleReference(reference) && ts.isStringLiteral(reference.expression) ? { module: normalizeModule(reference.expression.text), path: [] } : local;
      }
      if (ts.isVariableDeclaration(declaration) && ts.isIdentifier(declaration.name) && declaration.initializer) {
        return this.#qualify(declaration.initializer, depth + 1) ?? local;
      }
      if (ts.isBindingElement(declaration) && ts.isObjectBindingPattern(declaration.parent) && ts.isVariableDeclaration(declaration.parent.parent)) {
        const initializer = declaration.parent.parent.initializer;
        const nameNode = declaration.propertyName ?? declaration.name;
        const source = initializer ? this.#qualify(initializer, depth + 1) : undefined;
        if (source && (ts.isIdentifier(nameNode) || ts.isStringLiteral(nameNode))) return { module: source.module, path: [...source.path, nameNode.text] };
      }
      return local;
    }
    if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) {
      const name = this.#accessName(node);
      const base = name === undefined ? undefined : this.#qualify(node.expression, depth + 1);
      return base && name !== undefined ? { module: base.module, path: [...base.path, name] } : undefined;
    }
    if (ts.isCallExpression(node)) {
      const callee = this.#unwrap(node.expression);
      const [argument] = node.arguments;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require' && !this.#declarationOf(callee, false);
      if ((isRequire || callee.kind === ts.SyntaxKind.ImportKeyword) && argument && ts.isStringLiteralLike(argument)) return { module: normalizeModule(argument.text), path: [] };
      return undefined;
    }
    if (ts.isAwaitExpression(node)) return this.#qualify(node.expression, depth + 1);
    return undefined;
  }

  // ---- functions -----------------------------------------------------------------------------

  /** Every path of the function returns undefined/null/false (or nothing), and it never throws. */
  #acceptsEverything(fn: TS.SignatureDeclaration): boolean {
    const ts = this.#ts;
    const modifiers = ts.canHaveModifiers(fn) ? ts.getModifiers(fn) : undefined;
    if (modifiers?.some((modifier) => modifier.kind === ts.SyntaxKind.AsyncKeyword)) return false;
    if ((ts.isFunctionDeclaration(fn) || ts.isFunctionExpression(fn) || ts.isMethodDeclaration(fn)) && fn.asteriskToken) return false;
    const body = (fn as TS.FunctionLikeDeclarationBase).body;
    if (!body) return false;
    if (!ts.isBlock(body)) {
      const value = this.#evaluate(body);
      return value.kind === 'const' && !value.value;
    }
    let accepts = true;
    const visit = (node: TS.Node): void => {
      if (!accepts || ts.isFunctionLike(node) || ts.isClassLike(node)) return;
      if (ts.isThrowStatement(node)) accepts = false;
      else if (ts.isReturnStatement(node) && node.expression) {
        const value = this.#evaluate(node.expression);
        if (value.kind !== 'const' || value.value) accepts = false;
      }
      ts.forEachChild(node, visit);
    };
    ts.forEachChild(body, visit);
    return accepts;
  }

  // ---- rules ---------------------------------------------------------------------------------

  /** Rules keyed by a property name, for object literals and assignments alike. */
  #checkSetting(name: string, value: Value, node: TS.Node, context: 'object' | 'assignment'): void {
    switch (name) {
      case 'rejectUnauthorized':
        if (context === 'assignment' && isFalsyDefined(value)) this.#report('node/reject-unauthorized-false', node, REJECT_UNAUTHORIZED_MESSAGE);
        return;
      case 'NODE_TLS_REJECT_UNAUTHORIZED': {
        const text = value.kind === 'const' ? String(value.value) : undefined;
        if (text === '0') {
          this.#report('node/tls-reject-unauthorized-env', node, "NODE_TLS_REJECT_UNAUTHORIZED='0' turns off certificate verification for every TLS connection of the process");
        }
        return;
      }
      case 'minVersion':
      case 'maxVersion':
      case 'DEFAULT_MIN_VERSION':
      case 'DEFAULT_MAX_VERSION': {
        const version = constString(value);
        if (version !== undefined && WEAK_TLS_VERSIONS.has(version.toLowerCase())) {
          const message = name.toLowerCase().includes('max')
            ? `${name} '${version}' forces a protocol below TLS 1.2 (deprecated by RFC 8996)`
            : `${name} '${version}' allows protocols below TLS 1.2 (deprecated by RFC 8996)`;
          this.#report('node/min-version-below-tls12', node, message);
        }
        return;
      }
      case 'secureProtocol': {
        const protocol = constString(value);
        if (protocol !== undefined && LEGACY_SECURE_PROTOCOL.test(protocol)) {
          this.#report('node/legacy-secure-protocol', node, `secureProtocol '${protocol}' pins a protocol below TLS 1.2; use minVersion: 'TLSv1.2' instead`);
        }
        return;
      }
      case 'ciphers':
      case 'DEFAULT_CIPHERS': {
        const ciphers = constString(value);
        const weak = ciphers === undefined ? [] : weakCipherTokens(ciphers);
        if (weak.length > 0) this.#report('node/weak-ciphers', node, `${name} enables weak suites: ${weak.slice(0, 5).join(', ')}${weak.length > 5 ? ', …' : ''}`);
        return;
      }
      case 'checkServerIdentity':
        if (value.kind === 'function' && this.#acceptsEverything(value.node)) {
          this.#report('node/check-server-identity-noop', node, 'checkServerIdentity never returns an Error, so the client accepts a certificate for any name the CA signed', 'checkServerIdentity:noop');
        }
        return;
    }
  }

  #checkObject(object: TS.ObjectLiteralExpression): void {
    const ts = this.#ts;
    let requestCertProperty: TS.ObjectLiteralElementLike | undefined;
    let rejectProperty: TS.ObjectLiteralElementLike | undefined;
    let rejectValue: Value = UNKNOWN;
    for (const property of object.properties) {
      if (ts.isSpreadAssignment(property) || property.name === undefined) continue;
      const name = this.#propertyName(property.name);
      if (name === undefined || !SETTINGS.has(name)) continue;
      const effective = this.#lookup(object, name);
      // Overridden later in the same literal, or by a spread the auditor can read: that one decides.
      if (effective.found && effective.entry.node !== property) continue;
      const value = ts.isPropertyAssignment(property)
        ? this.#evaluate(property.initializer)
        : ts.isShorthandPropertyAssignment(property)
          ? this.#evaluateIdentifier(property.name, 0)
          : ts.isMethodDeclaration(property) && property.body
            ? ({ kind: 'function', node: property } as const)
            : UNKNOWN;
      if (name === 'requestCert') requestCertProperty = property;
      if (name === 'rejectUnauthorized') {
        rejectProperty = property;
        rejectValue = value;
      }
      this.#checkSetting(name, value, property, 'object');
    }
    if (!requestCertProperty && !rejectProperty) return;

    const requestCert = this.#lookup(object, 'requestCert');
    const requestsCert = requestCert.found && isConstTrue(requestCert.entry.value);
    // requestCert: false marks server options that ask for no certificate: rejectUnauthorized has no effect there.
    const noClientCert = requestCert.found && requestCert.entry.value.kind === 'const' && requestCert.entry.value.value === false;
    if (rejectProperty && isFalsyDefined(rejectValue) && !noClientCert) {
      if (requestsCert) {
        this.#report('node/request-cert-unverified', rejectProperty, 'requestCert is on but rejectUnauthorized is false: the handshake completes with any client certificate or none, so the caller is not authenticated');
      } else {
        this.#report('node/reject-unauthorized-false', rejectProperty, REJECT_UNAUTHORIZED_MESSAGE);
      }
    }
    if (!requestCertProperty || !requestsCert) return;
    const reject = this.#lookup(object, 'rejectUnauthorized');
    if (reject.found) {
      if (!reject.entry.direct && isFalsyDefined(reject.entry.value)) {
        this.#report('node/request-cert-unverified', requestCertProperty, 'requestCert is on but rejectUnauthorized is false (brought in by a spread): the caller is not authenticated');
      }
    } else if (reject.certain) {
      if (this.#isServerTlsSocketOptions(object)) {
        this.#report('node/request-cert-unverified', requestCertProperty, 'a server-side tls.TLSSocket with requestCert but without rejectUnauthorized: true does not verify the client certificate');
      } else {
        this.#report('node/request-cert-without-reject-unauthorized', requestCertProperty, 'requestCert: true without rejectUnauthorized: tls servers reject unverified clients by default, but say rejectUnauthorized: true so the intent survives refactoring');
      }
    }
  }

  #isServerTlsSocketOptions(object: TS.ObjectLiteralExpression): boolean {
    const ts = this.#ts;
    const parent = object.parent;
    if (!ts.isNewExpression(parent) || parent.arguments?.[1] !== object) return false;
    const callee = this.#qualify(parent.expression);
    if (callee?.module !== 'tls' || callee.path.join('.') !== 'TLSSocket') return false;
    const isServer = this.#lookup(object, 'isServer');
    return isServer.found && isConstTrue(isServer.entry.value);
  }

  #checkAssignment(assignment: TS.BinaryExpression): void {
    const ts = this.#ts;
    const target = this.#unwrap(assignment.left);
    if (!ts.isPropertyAccessExpression(target) && !ts.isElementAccessExpression(target)) return;
    const name = this.#accessName(target);
    if (name === undefined) return;
    if (!SETTINGS.has(name)) return;
    this.#checkSetting(name, this.#evaluate(assignment.right), assignment, 'assignment');
  }

  #checkCall(call: TS.CallExpression): void {
    const callee = this.#qualify(call.expression);
    if (!callee) return;
    const last = callee.path[callee.path.length - 1];
    const path = [...(callee.module !== undefined ? [callee.module] : []), ...callee.path].join('.');
    if (this.#isPlaintextServer(callee, 'createServer')) {
      this.#report('node/plaintext-server', call, `${path} starts a plaintext HTTP listener: no TLS, no caller authentication (a port that serves only health checks or metrics may stay plaintext: suppress it with that reason)`, path);
      return;
    }
    if (last === 'createInsecure') {
      const server = callee.path.includes('ServerCredentials');
      const channel = callee.path.includes('credentials') || callee.path.includes('ChannelCredentials');
      const grpc = callee.module !== undefined && GRPC_MODULES.has(callee.module);
      if (!(grpc || (callee.module === undefined && (server || channel)))) return;
      if (server) {
        this.#report('grpc-js/insecure-server-credentials', call, 'ServerCredentials.createInsecure(): this gRPC server accepts plaintext calls from anyone who can reach the port', 'ServerCredentials.createInsecure()');
      } else {
        this.#report('grpc-js/insecure-channel-credentials', call, 'credentials.createInsecure(): this gRPC channel sends calls in plaintext and does not authenticate the server', 'credentials.createInsecure()');
      }
      return;
    }
    if (last === 'createPermissiveHttpsServer' && callee.module !== undefined && TLSMESH_MODULES.has(callee.module)) {
      this.#report('tlsmesh/permissive-server', call, 'createPermissiveHttpsServer serves plaintext and unauthenticated callers next to mTLS (migration mode): switch to createMtlsHttpsServer when the callers have moved', 'createPermissiveHttpsServer');
    }
  }

  #checkNew(expression: TS.NewExpression): void {
    const callee = this.#qualify(expression.expression);
    if (callee && this.#isPlaintextServer(callee, 'Server')) {
      const path = [...(callee.module !== undefined ? [callee.module] : []), ...callee.path].join('.');
      this.#report('node/plaintext-server', expression, `new ${path} starts a plaintext HTTP listener: no TLS, no caller authentication (a port that serves only health checks or metrics may stay plaintext: suppress it with that reason)`, `new ${path}`);
    }
  }

  #isPlaintextServer(callee: Qualified, name: 'createServer' | 'Server'): boolean {
    const { module, path } = callee;
    if (module === 'http' || module === 'http2') return path.length === 1 && path[0] === name && (name === 'createServer' || module === 'http');
    if (module !== undefined) return false;
    return path.length === 2 && path[1] === name && (path[0] === 'http' || (path[0] === 'http2' && name === 'createServer'));
  }
}

/**
 * Comments that may hold a suppression: the trivia around every node and token (punctuation
 * included, so `a: false, // …` after a comma is found). Only for files that mention the
 * directive: walking tokens costs more than walking nodes.
 */
function commentsOf(ts: Ts, file: TS.SourceFile): SourceComment[] {
  const text = file.text;
  if (!text.includes('tlsmesh-audit-ignore')) return [];
  const seen = new Map<number, SourceComment>();
  const add = (ranges: TS.CommentRange[] | undefined): void => {
    for (const range of ranges ?? []) {
      if (!seen.has(range.pos)) seen.set(range.pos, { start: range.pos, end: range.end, text: text.slice(range.pos, range.end) });
    }
  };
  const visit = (node: TS.Node): void => {
    add(ts.getLeadingCommentRanges(text, node.pos));
    add(ts.getTrailingCommentRanges(text, node.end));
    for (const child of node.getChildren(file)) visit(child);
  };
  visit(file);
  return [...seen.values()].sort((a, b) => a.start - b.start);
}

function scriptKind(ts: Ts, path: string): TS.ScriptKind {
  if (path.endsWith('.tsx')) return ts.ScriptKind.TSX;
  if (path.endsWith('.jsx')) return ts.ScriptKind.JSX;
  if (/\.[cm]?js$/.test(path)) return ts.ScriptKind.JS;
  return ts.ScriptKind.TS;
}

/** Analyzes all TS/JS files as one program, so that constants are followed across imports. */
export function analyzeTypeScript(ts: Ts, inputs: readonly TsInput[]): Map<string, TsOutput> {
  const options: TS.CompilerOptions = {
    allowJs: true,
    checkJs: false,
    noLib: true,
    noResolve: true,
    types: [],
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ESNext,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    jsx: ts.JsxEmit.Preserve,
  };
  const sources = new Map<string, TS.SourceFile>();
  for (const input of inputs) {
    sources.set(input.absolutePath, ts.createSourceFile(input.absolutePath, input.text, ts.ScriptTarget.ESNext, true, scriptKind(ts, input.absolutePath)));
  }
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => sources.get(fileName) ?? getSourceFile(fileName, languageVersion, onError, shouldCreate);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (fileName) => sources.has(fileName) || fileExists(fileName);
  const program = ts.createProgram({ rootNames: [...sources.keys()], options, host });
  const checker = program.getTypeChecker();
  const results = new Map<string, TsOutput>();
  for (const [path, source] of sources) {
    const file = program.getSourceFile(path) ?? source;
    const analyzer = new FileAnalyzer(ts, checker, file);
    analyzer.run();
    results.set(path, { findings: analyzer.findings, comments: commentsOf(ts, file) });
  }
  return results;
}
