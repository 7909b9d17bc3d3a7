/** The dashboard's ca.yaml settings and its read-only token file: strict keys, bounds, coded errors. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { caFileSchema, resolveCaConfig } from '../../src/ca/config.js';
import { readReadOnlyToken } from '../../src/dashboard/index.js';
import { isTlsmeshError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'tlsmesh-dashboard-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function codeOf(work: () => unknown): Promise<string | undefined> {
  try {
    await work();
  } catch (error) {
    return isTlsmeshError(error) ? error.code : `not coded: ${String(error)}`;
  }
  return undefined;
}

describe('ca.yaml dashboard settings', () => {
  it('defaults: enabled, no token, 8 h sessions; a relative token file is under the data dir', () => {
    expect(resolveCaConfig(dir, { trustDomain: 'example.org' }, {}, {}).dashboard).toEqual({ enabled: true, readOnlyTokenFile: null, sessionSeconds: 8 * 3600 });
    const set = resolveCaConfig(dir, { trustDomain: 'example.org', dashboard: { enabled: false, readOnlyTokenFile: 'ui-token', sessionLifetime: '30m' } }, {}, {});
    expect(set.dashboard).toEqual({ enabled: false, readOnlyTokenFile: join(dir, 'ui-token'), sessionSeconds: 1800 });
  });

  it('an unknown key under dashboard is refused by the schema, naming it', () => {
    const result = caFileSchema.safeParse({ trustDomain: 'example.org', dashboard: { readOnlyToken: 'inline-secret' } });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain('readOnlyToken');
  });

  it('a session lifetime outside 1m..24h is ERR_CONFIG', async () => {
    for (const sessionLifetime of ['30s', '25h']) {
      expect(await codeOf(() => resolveCaConfig(dir, { trustDomain: 'example.org', dashboard: { sessionLifetime } }, {}, {}))).toBe('ERR_CONFIG');
    }
  });
});

describe('readReadOnlyToken', () => {
  const file = (name: string, content: string, mode = 0o600): string => {
    const path = join(dir, name);
    writeFileSync(path, content);
    chmodSync(path, mode);
    return path;
  };

  it('reads one token, dropping the final newline', async () => {
    expect(await readReadOnlyToken(file('ok', `${'t'.repeat(40)}\n`))).toBe('t'.repeat(40));
  });

  it('refuses a missing file, a file others can read, a short token, and one with spaces (ERR_CONFIG)', async () => {
    expect(await codeOf(() => readReadOnlyToken(join(dir, 'absent')))).toBe('ERR_CONFIG');
    expect(await codeOf(() => readReadOnlyToken(file('open', 't'.repeat(40), 0o644)))).toBe('ERR_CONFIG');
    expect(await codeOf(() => readReadOnlyToken(file('short', 't'.repeat(31))))).toBe('ERR_CONFIG');
    expect(await codeOf(() => readReadOnlyToken(file('spaces', `${'t'.repeat(20)} ${'t'.repeat(20)}`)))).toBe('ERR_CONFIG');
  });
});
