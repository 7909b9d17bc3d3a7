/**
 * The examples and the integration guide cannot rot silently:
 *
 * 1. examples/grpc-and-http runs as the README says (a real CA, a real Express server, a real
 *    grpc-js server, real mTLS both ways), and every hop names the right SPIFFE IDs;
 * 2. every ```diff block in docs/sdk.md imports only what tlsmesh/sdk and tlsmesh/sdk/grpc
 *    export, and both its before and after states typecheck against the current source;
 * 3. every API or option name the guide's prose puts in `code` exists in src/sdk.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, startBackground } from './helpers/cli.js';

const RUN = join(REPO_ROOT, 'examples', 'grpc-and-http', 'run.ts');
const GUIDE = join(REPO_ROOT, 'docs', 'sdk.md');
const SDK_INDEX = { 'tlsmesh/sdk': join(REPO_ROOT, 'src', 'sdk', 'index.ts'), 'tlsmesh/sdk/grpc': join(REPO_ROOT, 'src', 'sdk', 'grpc', 'index.ts') } as const;
const ID = (name: string): string => `spiffe://example.org/${name}`;
const readTsconfig = (): { config?: unknown } => ts.readConfigFile(join(REPO_ROOT, 'tsconfig.json'), (path) => ts.sys.readFile(path));

// ---- 1. the example ------------------------------------------------------------------------------

/** The example imports `tlsmesh/sdk` as users do, which resolves to the built package. */
function requireBuild(): void {
  if (!existsSync(join(REPO_ROOT, 'dist', 'sdk', 'grpc', 'index.js'))) throw new Error('dist/ is missing: the example imports tlsmesh/sdk (the built package); run `npm run build`');
}

function runOnce(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', RUN, '--once'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, output });
    });
  });
}

describe('examples/grpc-and-http', () => {
  it('--once: every hop authenticates the right peer in both directions, the denial is explained, exit 0', async () => {
    requireBuild();
    const { code, signal, output } = await runOnce(90_000);
    expect({ code, signal }, output).toEqual({ code: 0, signal: null });

    // Each server names the caller it authenticated …
    expect(output).toContain(`[orders] GET /orders/42 from ${ID('frontend')}\n`);
    expect(output).toContain(`[inventory] GetStock sku-42 from ${ID('orders')}\n`); // HTTP service -> gRPC service
    expect(output).toContain(`[orders] GET /health from ${ID('inventory')}\n`); // gRPC service -> HTTP service
    // … and each client names the server it accepted and how the server saw it.
    expect(output).toMatch(new RegExp(`\\[orders -> inventory\\] GetStock sku-42: \\d+ available; server ${ID('inventory')}, it saw us as ${ID('orders')}\\n`));
    expect(output).toContain(`[inventory -> orders] GET /health: 200 ok; server ${ID('orders')}, it saw us as ${ID('inventory')}\n`);
    expect(output).toContain(`[frontend -> orders] 200 {"order":"42","inStock":true,"caller":"${ID('frontend')}"}; server ${ID('orders')}, it saw us as ${ID('frontend')}\n`);
    // The frontend may not call inventory: refused before the handler, with the reason.
    const reason = `${ID('frontend')} is not allowed to call /shop.Inventory/GetStock`;
    expect(output).toContain(`[inventory] denied /shop.Inventory/GetStock to ${ID('frontend')}: ${reason}\n`);
    expect(output).toContain(`[frontend -> inventory] GetStock denied as expected: 7 PERMISSION_DENIED: ${reason}\n`);
    expect(output).not.toMatch(/failed|mtls\.refused/);

    // Everything it made lives in one temporary directory, removed on exit.
    const home = /SQLite store in (.+)\/ca\)/.exec(output)?.[1];
    expect(home, output).toBeDefined();
    expect(existsSync(home!)).toBe(false);
    expect(output).toMatch(/\nstopped\n$/);
  });

  it('without --once: rounds repeat until Ctrl-C, then everything stops cleanly', async () => {
    requireBuild();
    const run = startBackground(['--import', 'tsx', RUN]);
    try {
      await run.waitFor(/\[frontend -> orders\] 200 \{"order":"43"/, 60_000); // the second round
      expect(await run.stop('SIGINT'), run.output()).toBe(0);
      expect(run.output()).toMatch(/\nstopped\n$/);
      expect(run.output()).not.toMatch(/failed/);
    } finally {
      await run.stop('SIGKILL');
    }
  });

  it('every TypeScript file of the examples is in a folder the typecheck covers', () => {
    // tsconfig.json must include "examples", or the examples could stop compiling unnoticed.
    const tsconfig = readTsconfig().config as { include?: string[] };
    const files = readdirSync(join(REPO_ROOT, 'examples'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(0);
    expect(tsconfig.include ?? []).toContain('examples');
  });
});

// ---- 2. the guide's diffs ------------------------------------------------------------------------

interface DiffBlock {
  /** 1-based line of the opening fence, for messages. */
  line: number;
  lines: string[];
}

function diffBlocks(markdown: string): DiffBlock[] {
  const blocks: DiffBlock[] = [];
  const all = markdown.split('\n');
  for (let i = 0; i < all.length; i++) {
    if (all[i] !== '```diff') continue;
    const start = i;
    const lines: string[] = [];
    for (i++; i < all.length && all[i] !== '```'; i++) lines.push(all[i]!);
    blocks.push({ line: start + 1, lines });
  }
  return blocks;
}

/** The file as it was (`-` and context lines) or as it becomes (`+` and context lines). */
const stateOf = (block: DiffBlock, state: 'before' | 'after'): string =>
  block.lines
    .filter((line) => line === '' || line[0] === ' ' || line[0] === (state === 'before' ? '-' : '+'))
    .map((line) => line.slice(1))
    .join('\n');

/** Names an index file exports (`export { a, b as c } from …`, `export type { … } from …`). */
function exportsOf(indexFile: string): Set<string> {
  const names = new Set<string>();
  const text = readFileSync(indexFile, 'utf8');
  for (const match of text.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const part of match[1]!.split(',')) {
      const name = part.trim().split(/\s+as\s+/).pop()?.trim();
      if (name) names.add(name);
    }
  }
  for (const match of text.matchAll(/export\s+(?:declare\s+)?(?:async\s+)?(?:function|const|class|interface|type)\s+(\w+)/g)) names.add(match[1]!);
  return names;
}

const guide = readFileSync(GUIDE, 'utf8');
const blocks = diffBlocks(guide);

describe('docs/sdk.md', () => {
  it('has a diff for each of grpc-js server, grpc-js client, Express and fetch, each well formed', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    const added = blocks.map((block) => block.lines.filter((line) => line.startsWith('+')).join('\n'));
    for (const api of ['grpcServerCredentials', 'grpcChannelCredentials', 'createMtlsHttpsServer', 'createMtlsDispatcher']) {
      expect(added.some((text) => text.includes(api)), api).toBe(true);
    }
    for (const block of blocks) {
      const malformed = block.lines.filter((line) => line !== '' && !/^[ +-]/.test(line));
      expect(malformed, `diff at docs/sdk.md:${block.line}: every line starts with " ", "+" or "-"`).toEqual([]);
    }
  });

  it('every name a diff imports from tlsmesh/sdk or tlsmesh/sdk/grpc is exported there', () => {
    const exported = { 'tlsmesh/sdk': exportsOf(SDK_INDEX['tlsmesh/sdk']), 'tlsmesh/sdk/grpc': exportsOf(SDK_INDEX['tlsmesh/sdk/grpc']) };
    let checked = 0;
    for (const block of blocks) {
      for (const line of block.lines.filter((l) => l.startsWith('+') && l.includes("from 'tlsmesh"))) {
        const match = /^\+\s*import\s+(?:type\s+)?\{([^}]+)\}\s+from\s+'([^']+)';$/.exec(line);
        expect(match, `docs/sdk.md:${block.line}: keep tlsmesh imports on one line: ${line}`).not.toBeNull();
        const from = match![2]! as keyof typeof exported;
        expect(Object.keys(exported), `docs/sdk.md:${block.line}: ${line}`).toContain(from);
        for (const name of match![1]!.split(',').map((part) => part.trim().replace(/^type\s+/, '')).filter(Boolean)) {
          expect(exported[from].has(name), `docs/sdk.md:${block.line}: ${name} is not exported by ${from} (${SDK_INDEX[from]})`).toBe(true);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10);
  });

  it('the before and after state of every diff typechecks against the current source', () => {
    // Each state becomes a virtual module beside the guide, with tlsmesh imports pointed at src/
    // (so the check needs no build), compiled with the project's own compiler options.
    const virtual = new Map<string, string>();
    for (const block of blocks) {
      for (const state of ['before', 'after'] as const) {
        const code = stateOf(block, state).replace(/from 'tlsmesh\/sdk(\/grpc)?'/g, (_all, grpc?: string) => `from '../src/sdk${grpc ?? ''}/index.js'`);
        virtual.set(resolve(REPO_ROOT, 'docs', `sdk.md.diff-at-line-${block.line}.${state}.ts`), `${code}\nexport {};\n`);
      }
    }
    const parsed = ts.parseJsonConfigFileContent(readTsconfig().config, ts.sys, REPO_ROOT);
    const options = { ...parsed.options, noEmit: true };
    const host = ts.createCompilerHost(options, true);
    const realGetSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
      const text = virtual.get(resolve(fileName));
      return text === undefined ? realGetSourceFile(fileName, languageVersion, onError, shouldCreate) : ts.createSourceFile(fileName, text, languageVersion, true);
    };
    const realFileExists = host.fileExists.bind(host);
    const realReadFile = host.readFile.bind(host);
    host.fileExists = (fileName) => virtual.has(resolve(fileName)) || realFileExists(fileName);
    host.readFile = (fileName) => virtual.get(resolve(fileName)) ?? realReadFile(fileName);

    const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
    const problems: string[] = [];
    for (const fileName of virtual.keys()) {
      const file = program.getSourceFile(fileName)!;
      for (const diagnostic of ts.getPreEmitDiagnostics(program, file)) {
        const at = diagnostic.file && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start) : undefined;
        problems.push(`${fileName.slice(REPO_ROOT.length + 1)}${at ? `(${at.line + 1},${at.character + 1})` : ''}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every API or option name in the prose exists in src/sdk', () => {
    // Names owned by grpc-js, Node, undici or Fastify that the guide mentions on purpose.
    const theirs = new Set(['loadSync', 'setSecureContext', 'checkServerIdentity', 'serverFactory', 'onRequest', 'RequestInit', 'SecureContext', 'GRPC_VERBOSITY', 'GRPC_TRACE']);
    const sdkText = readdirSync(join(REPO_ROOT, 'src', 'sdk'), { recursive: true, encoding: 'utf8' })
      .map((file) => join(REPO_ROOT, 'src', 'sdk', file))
      .filter((path) => path.endsWith('.ts') && statSync(path).isFile())
      .map((path) => readFileSync(path, 'utf8'))
      .join('\n');
    const prose = guide.replace(/```[\s\S]*?```/g, '');
    const spans = [...prose.matchAll(/`([^`\n]+)`/g)].map((match) => match[1]!);
    // camelCase or PascalCase words with at least one hump, outside quoted strings.
    const names = new Set(spans.flatMap((span) => [...span.replace(/'[^']*'|"[^"]*"/g, '').matchAll(/\b[A-Za-z][a-z0-9]+[A-Z]\w*\b/g)].map((match) => match[0])));
    expect(names.size).toBeGreaterThan(20);
    const missing = [...names].filter((name) => !theirs.has(name) && !new RegExp(`\\b${name}\\b`).test(sdkText));
    expect(missing, 'names in docs/sdk.md that src/sdk does not have').toEqual([]);
  });
});
