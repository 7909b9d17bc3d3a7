/**
 * agent.yaml and flags: strict (an unknown key is refused by name), never a token in the file,
 * flags over environment over file over defaults, durations and key modes, reload settings that
 * go together, and the health address rules.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_BACKOFF } from '../../src/sdk/sources/renew-schedule.js';
import { AGENT_EXIT_CODES, isLoopbackHost, parseAgentConfigText, parseDurationMs, parseKeyMode, resolveAgentConfig, type AgentFlags } from '../../src/agent/index.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { TlsmeshError } from '../../src/errors.js';

const MINIMAL: AgentFlags = { ca: 'https://ca.internal:8443', bundle: '/etc/tlsmesh/bundle.pem', out: '/var/run/tlsmesh' };

function configError(fn: () => unknown): TlsmeshError {
  try {
    fn();
  } catch (error) {
    if (error instanceof TlsmeshError) return error;
    throw error;
  }
  throw new Error('expected a TlsmeshError');
}

describe('agent.yaml', () => {
  it('ok/every setting the flags have', () => {
    const file = parseAgentConfigText(`
ca: https://ca.internal:8443
bundle: /etc/tlsmesh/bundle.pem
out: /var/run/tlsmesh
tokenFile: /run/secrets/tlsmesh-token
spiffeId: spiffe://example.org/billing
keyType: p384
keyMode: "0640"
reload: { exec: "nginx -s reload", execTimeout: 5s, signal: HUP, pidFile: /run/nginx.pid, url: "http://127.0.0.1:9000/reload", urlTimeout: 2s }
health: { listen: "127.0.0.1:9180", listenAny: false }
watch: false
pollInterval: 10s
crl: true
clockSkewTolerance: 2m
backoff: { initial: 500ms, max: 1m }
onceTimeout: 30s
logLevel: debug
`);
    const config = resolveAgentConfig({}, {}, file);
    expect(config).toMatchObject({
      caUrl: 'https://ca.internal:8443',
      token: { file: '/run/secrets/tlsmesh-token' },
      spiffeId: 'spiffe://example.org/billing',
      keyType: 'p384',
      keyMode: 0o640,
      health: { host: '127.0.0.1', port: 9180, allowNonLoopback: false },
      watch: false,
      pollMs: 10_000,
      clockSkewToleranceMs: 120_000,
      backoff: { baseMs: 500, maxMs: 60_000 },
      onceTimeoutMs: 30_000,
      logLevel: 'debug',
    });
    expect(config.reload).toEqual([
      { kind: 'exec', command: 'nginx -s reload', timeoutMs: 5000 },
      { kind: 'signal', signal: 'SIGHUP', pidFile: '/run/nginx.pid' },
      { kind: 'http', url: 'http://127.0.0.1:9000/reload', timeoutMs: 2000 },
    ]);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.reload)).toBe(true);
  });

  it.each([
    ['fail/an unknown key is named', 'out: /x\nreloadd: {}\n', /reloadd/],
    ['fail/an unknown nested key is named with its path', 'reload: { execc: "true" }\n', /reload.*execc/],
    ['fail/the token itself is refused with a hint', 'token: eyJhbGciOi…\n', /token: the token itself never goes in a config file.*tokenFile.*TLSMESH_TOKEN/],
    ['fail/a wrong type names the key', 'watch: "yes"\n', /watch/],
    ['fail/not YAML', 'ca: [\n', /not valid YAML/],
  ])('%s', (_name, text, message) => {
    const error = configError(() => parseAgentConfigText(text, 'agent.yaml'));
    expect(error.code).toBe('ERR_CONFIG');
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/^agent\.yaml: /);
  });
});

describe('precedence: flags over environment over file over defaults', () => {
  const file = parseAgentConfigText('ca: https://file:1\nbundle: /file/bundle.pem\nout: /file/out\ntokenFile: /file/token\nhealth: { listen: "127.0.0.1:1" }\nlogLevel: warn\n');

  it('ok/the file alone', () => {
    expect(resolveAgentConfig({}, {}, file)).toMatchObject({ caUrl: 'https://file:1', outDir: '/file/out', token: { file: '/file/token' }, health: { port: 1 }, logLevel: 'warn' });
  });

  it('ok/the environment beats the file', () => {
    const env = { TLSMESH_CA_URL: 'https://env:2', TLSMESH_AGENT_OUT: '/env/out', TLSMESH_TOKEN: 'a-token', TLSMESH_AGENT_HEALTH_LISTEN: '127.0.0.1:2', TLSMESH_LOG_LEVEL: 'error' };
    expect(resolveAgentConfig({}, env, file)).toMatchObject({ caUrl: 'https://env:2', outDir: '/env/out', token: { env: 'TLSMESH_TOKEN' }, health: { port: 2 }, logLevel: 'error', bundleFile: '/file/bundle.pem' });
  });

  it('ok/flags beat both', () => {
    const env = { TLSMESH_CA_URL: 'https://env:2', TLSMESH_TOKEN: 'a-token' };
    const flags: AgentFlags = { ca: 'https://flag:3', tokenFile: '/flag/token', healthListen: '[::1]:3', logLevel: 'debug' };
    expect(resolveAgentConfig(flags, env, file)).toMatchObject({ caUrl: 'https://flag:3', token: { file: '/flag/token' }, health: { host: '::1', port: 3 }, logLevel: 'debug' });
  });

  it('ok/the defaults', () => {
    const config = resolveAgentConfig(MINIMAL, {});
    expect(config).toMatchObject({ token: null, spiffeId: null, keyType: 'p256', keyMode: 0o600, reload: [], health: null, watch: true, pollMs: 30_000, crl: true, clockSkewToleranceMs: 300_000, once: false, onceTimeoutMs: 120_000, logLevel: 'info' });
    expect(config.backoff).toEqual(DEFAULT_BACKOFF);
  });
});

describe('values', () => {
  it.each([
    ['fail/no CA URL', { ...MINIMAL, ca: undefined }, /CA URL.*--ca.*TLSMESH_CA_URL/],
    ['fail/no output directory', { ...MINIMAL, out: undefined }, /output directory.*--out/],
    ['fail/no bundle', { ...MINIMAL, bundle: undefined }, /trust bundle.*--bundle/],
    ['fail/a plain http CA', { ...MINIMAL, ca: 'http://ca:80' }, /https/],
    ['fail/a bad SPIFFE ID', { ...MINIMAL, spiffeId: 'https://example.org/x' }, /spiffeId/],
    ['fail/an unknown key type', { ...MINIMAL, keyType: 'dsa' }, /keyType/],
    ['fail/a key mode wider than 0640', { ...MINIMAL, keyMode: '0644' }, /0600 or 0640/],
    ['fail/--signal without --pid-file', { ...MINIMAL, signal: 'HUP' }, /signal and reload.pidFile go together/],
    ['fail/an unknown signal', { ...MINIMAL, signal: 'NOPE', pidFile: '/run/x.pid' }, /signal name/],
    ['fail/SIGKILL is not a reload', { ...MINIMAL, signal: 'KILL', pidFile: '/run/x.pid' }, /signal name/],
    ['fail/a reload URL that is not http(s)', { ...MINIMAL, reloadUrl: 'file:///etc/passwd' }, /reload.url/],
    ['fail/a bad duration', { ...MINIMAL, pollInterval: '10 minutes' }, /pollInterval/],
    ['fail/backoff max below initial', { ...MINIMAL, backoffInitial: '1m', backoffMax: '1s' }, /backoff.max/],
    ['fail/a bad health address', { ...MINIMAL, healthListen: '9180' }, /HOST:PORT/],
  ] as const)('%s', (_name, flags, message) => {
    const error = configError(() => resolveAgentConfig(flags, {}));
    expect(error.code).toBe('ERR_CONFIG');
    expect(error.message).toMatch(message);
  });

  it('ok/durations and key modes', () => {
    expect(parseDurationMs('500ms', 'x')).toBe(500);
    expect(parseDurationMs('90s', 'x')).toBe(90_000);
    expect(parseDurationMs(90, 'x')).toBe(90_000);
    expect(parseDurationMs('2h', 'x')).toBe(7_200_000);
    expect(() => parseDurationMs('0s', 'x')).toThrow(TlsmeshError);
    expect(parseKeyMode('0600')).toBe(0o600);
    expect(parseKeyMode(640)).toBe(0o640); // YAML reads `keyMode: 0640` as the number 640
    expect(() => parseKeyMode(0o600)).toThrow(TlsmeshError); // 384 is not an octal spelling
  });

  it('ok/loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.org', '::2']) expect(isLoopbackHost(host), host).toBe(false);
  });
});

describe('the examples', () => {
  const EXAMPLES = join(REPO_ROOT, 'examples', 'agent');

  it('ok/examples/agent/agent.yaml and the Kubernetes ConfigMap\'s agent.yaml are valid configurations', () => {
    const systemd = resolveAgentConfig({}, {}, parseAgentConfigText(readFileSync(join(EXAMPLES, 'agent.yaml'), 'utf8'), 'agent.yaml'));
    expect(systemd).toMatchObject({ outDir: '/var/lib/tlsmesh/billing', token: { file: '/run/credentials/tlsmesh-agent.service/token' }, reload: [{ kind: 'signal', signal: 'SIGHUP' }] });
    const configMap = parseYaml(readFileSync(join(EXAMPLES, 'kubernetes', 'configmap.yaml'), 'utf8')) as { data: { 'agent.yaml': string } };
    const kubernetes = resolveAgentConfig({}, {}, parseAgentConfigText(configMap.data['agent.yaml'], 'configmap.yaml'));
    expect(kubernetes).toMatchObject({ outDir: '/var/run/tlsmesh', health: { host: '0.0.0.0', port: 9180, allowNonLoopback: true } });
  });

  it('ok/the systemd unit does not restart on the exit codes a restart cannot fix, and reads the token the config names', () => {
    const unit = readFileSync(join(EXAMPLES, 'tlsmesh-agent.service'), 'utf8');
    expect(unit).toMatch(new RegExp(`^RestartPreventExitStatus=${AGENT_EXIT_CODES.usage} ${AGENT_EXIT_CODES.needsToken}$`, 'm'));
    expect(unit).toMatch(/^LoadCredential=token:/m);
  });
});
