/**
 * The auditor's pure parts, as tables: cipher strings, config keys, globs, suppression comments,
 * positions (UTF-16 columns, CRLF) and Go package names.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { audit, ExcludeMatcher, globToRegExp } from '../../src/audit/index.js';
import { classifySetting } from '../../src/audit/lang-config.js';
import { defaultPackageName } from '../../src/audit/lang-go.js';
import { weakCipherTokens } from '../../src/audit/lang-ts.js';
import { lineComments, parseSuppressions } from '../../src/audit/suppressions.js';
import { LineIndex } from '../../src/audit/text.js';
import { project } from './support.js';

describe('weakCipherTokens', () => {
  it.each([
    ['ok/tlsmesh suites', 'TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305', []],
    ['ok/exclusions', 'HIGH:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:-3DES', []],
    ['ok/reordering only', 'DEFAULT:+RC4', []],
    ['ok/keyword lookalikes', 'ECDHE-RSA-AES256-SHA384:DHE-RSA-AES128-GCM-SHA256:kEECDH', []],
    ['fail/RC4 suite', 'ECDHE-RSA-AES128-GCM-SHA256:RC4-SHA', ['RC4-SHA']],
    ['fail/3DES by OpenSSL name', 'DES-CBC3-SHA', ['DES-CBC3-SHA']],
    ['fail/3DES by IANA name', 'TLS_RSA_WITH_3DES_EDE_CBC_SHA', ['TLS_RSA_WITH_3DES_EDE_CBC_SHA']],
    ['fail/single DES', 'EDH-RSA-DES-CBC-SHA', ['EDH-RSA-DES-CBC-SHA']],
    ['fail/NULL and eNULL', 'NULL-SHA256:eNULL', ['NULL-SHA256', 'eNULL']],
    ['fail/anonymous', 'aNULL:ADH-AES128-SHA:TLS_DH_anon_WITH_AES_128_CBC_SHA', ['aNULL', 'ADH-AES128-SHA', 'TLS_DH_anon_WITH_AES_128_CBC_SHA']],
    ['fail/export', 'EXP-RC4-MD5:EXPORT', ['EXP-RC4-MD5', 'EXPORT']],
    ['fail/intersection with a weak part', 'RC4+RSA', ['RC4+RSA']],
    ['fail/security level 0', 'DEFAULT:@SECLEVEL=0', ['@SECLEVEL=0']],
    ['ok/security level 2', 'DEFAULT:@SECLEVEL=2', []],
  ])('%s', (_name, ciphers, weak) => {
    expect(weakCipherTokens(ciphers)).toEqual(weak);
  });
});

describe('classifySetting', () => {
  it.each([
    ['fail/tls false', 'tls', [], false, 'config/tls-disabled'],
    ['fail/REDIS_TLS=false', 'REDIS_TLS', [], 'false', 'config/tls-disabled'],
    ['fail/enabled: false under tls', 'enabled', ['grpc', 'tls'], false, 'config/tls-disabled'],
    ['fail/sslmode disable', 'sslmode', [], 'disable', 'config/tls-disabled'],
    ['fail/mysql ssl-mode DISABLED', 'ssl-mode', [], 'DISABLED', 'config/tls-disabled'],
    ['fail/otel insecure', 'insecure', ['exporters', 'otlp', 'tls'], true, 'config/tls-disabled'],
    ['fail/plaintext', 'plaintext', [], 'yes', 'config/tls-disabled'],
    ['fail/insecure-skip-tls-verify', 'insecure-skip-tls-verify', ['cluster'], true, 'config/tls-verify-disabled'],
    ['fail/verify under ssl', 'verify', ['elasticsearch', 'ssl'], false, 'config/tls-verify-disabled'],
    ['fail/rejectUnauthorized', 'rejectUnauthorized', ['api'], false, 'config/tls-verify-disabled'],
    ['fail/GIT_SSL_NO_VERIFY', 'GIT_SSL_NO_VERIFY', [], '1', 'config/tls-verify-disabled'],
    ['fail/NODE_TLS_REJECT_UNAUTHORIZED', 'NODE_TLS_REJECT_UNAUTHORIZED', [], 0, 'config/node-tls-reject-unauthorized'],
    ['ok/tls true', 'tls', [], true, undefined],
    ['ok/tls holding text', 'tls', [], 'auto', undefined],
    ['ok/verify outside tls', 'verify', ['signature'], false, undefined],
    ['ok/enabled outside tls', 'enabled', ['cache'], false, undefined],
    ['ok/insecure_port', 'insecure_port', ['server'], 8080, undefined],
    ['ok/sslmode verify-full', 'sslmode', [], 'verify-full', undefined],
    ['ok/NODE_TLS_REJECT_UNAUTHORIZED=1', 'NODE_TLS_REJECT_UNAUTHORIZED', [], '1', undefined],
  ] as const)('%s', (_name, key, ancestors, value, ruleId) => {
    expect(classifySetting(key, ancestors, value)?.ruleId).toBe(ruleId);
  });
});

describe('globs and excludes', () => {
  it.each([
    ['**/fixtures/**', 'test/audit/fixtures/a.ts', true],
    ['**/fixtures/**', 'fixtures/a.ts', true],
    ['src/*.ts', 'src/a.ts', true],
    ['src/*.ts', 'src/sub/a.ts', false],
    ['*.{pem,key}', 'a.key', true],
    ['file?.go', 'file1.go', true],
    ['file?.go', 'file10.go', false],
    ['[ab].ts', 'b.ts', true],
  ])('%s matches %s: %s', (glob, path, matches) => {
    expect(globToRegExp(glob).test(path)).toBe(matches);
  });

  it('a glob without "/" matches a name at any depth; one with "/" matches from the root', () => {
    const matcher = new ExcludeMatcher(['fixtures', '*.pb.go', 'deploy/dev', './scripts/']);
    expect(matcher.matches('test/audit/fixtures')).toBe(true);
    expect(matcher.matches('api/v1/service.pb.go')).toBe(true);
    expect(matcher.matches('deploy/dev')).toBe(true);
    expect(matcher.matches('other/deploy/dev')).toBe(false);
    expect(matcher.matches('scripts')).toBe(true);
    expect(matcher.matches('src/fixtures.ts')).toBe(false);
  });
});

describe('suppression comments', () => {
  const parse = (text: string) => {
    const lines = new LineIndex(text);
    return parseSuppressions(lineComments(text, lines), lines);
  };

  it.each([
    ['ok/own line covers the next code line', 'a: 1\n# tlsmesh-audit-ignore config/tls-disabled: dev only\n\n# more words\ntls: false\n', 5, ['config/tls-disabled'], 'dev only'],
    ['ok/end of line covers its line', 'tls: false # tlsmesh-audit-ignore config/tls-disabled: dev only\n', 1, ['config/tls-disabled'], 'dev only'],
    ['ok/several rules', '# tlsmesh-audit-ignore config/tls-disabled, config/tls-verify-disabled: lab network\nx: 1\n', 2, ['config/tls-disabled', 'config/tls-verify-disabled'], 'lab network'],
  ])('%s', (_name, text, targetLine, ruleIds, reason) => {
    const { suppressions, problems } = parse(text);
    expect(problems).toEqual([]);
    expect(suppressions).toMatchObject([{ targetLine, ruleIds, reason }]);
  });

  it.each([
    ['fail/no reason', '# tlsmesh-audit-ignore config/tls-disabled\n', 'audit/suppression-without-reason'],
    ['fail/empty reason', '# tlsmesh-audit-ignore config/tls-disabled:   \n', 'audit/suppression-without-reason'],
    ['fail/punctuation is no reason', '# tlsmesh-audit-ignore config/tls-disabled: -- \n', 'audit/suppression-without-reason'],
    ['fail/no rule', '# tlsmesh-audit-ignore: because\n', 'audit/suppression-unknown-rule'],
    ['fail/unknown rule', '# tlsmesh-audit-ignore config/tls-off: because\n', 'audit/suppression-unknown-rule'],
    ['fail/an audit rule cannot be suppressed', '# tlsmesh-audit-ignore audit/unused-suppression: because\n', 'audit/suppression-unknown-rule'],
  ])('%s', (_name, text, ruleId) => {
    const { suppressions, problems } = parse(text);
    expect(suppressions).toEqual([]);
    expect(problems.map((problem) => problem.ruleId)).toEqual([ruleId]);
  });

  it('ignores words that only look like the directive', () => {
    expect(parse('# tlsmesh-audit-ignored: x\n# see tlsmesh-audit-ignore in the docs\n')).toEqual({ suppressions: [], problems: [] });
  });
});

describe('positions', () => {
  it('counts columns in UTF-16 code units and handles CRLF and CR', () => {
    const lines = new LineIndex('a\r\nbé😀c\rd\n');
    expect(lines.position(0)).toEqual({ line: 1, column: 1 });
    expect(lines.position(3)).toEqual({ line: 2, column: 1 });
    expect(lines.position(7)).toEqual({ line: 2, column: 5 }); // after b, é and the two halves of 😀
    expect(lines.position(9)).toEqual({ line: 3, column: 1 });
    expect(lines.lineText(2)).toBe('bé😀c');
  });

  const sources = project({
    'unicode.ts': "const label = 'héllo 😀'; const agent = new Agent({ rejectUnauthorized: false });\n",
    'unicode.go': 'package main\n\nimport "crypto/tls"\n\nvar label, cfg = "héllo 😀", &tls.Config{InsecureSkipVerify: true}\n',
    'unicode.yaml': 'name: "héllo 😀"\nredis: { host: "é", tls: false }\n',
  });
  afterAll(() => sources.cleanup());

  // Expected columns computed independently: len(prefix.encode('utf-16-le')) // 2 + 1 in Python.
  it('reports the same UTF-16 columns from every analyzer', async () => {
    const { findings } = await audit({ root: sources.dir });
    const at = (path: string) => findings.find((finding) => finding.path === path);
    expect(at('unicode.ts')).toMatchObject({ line: 1, column: 53, ruleId: 'node/reject-unauthorized-false' });
    expect(at('unicode.go')).toMatchObject({ line: 5, column: 42, ruleId: 'go/insecure-skip-verify' });
    expect(at('unicode.yaml')).toMatchObject({ line: 2, column: 21, ruleId: 'config/tls-disabled' });
  });
});

describe('defaultPackageName', () => {
  it.each([
    ['google.golang.org/grpc', 'grpc'],
    ['github.com/micro/go-micro/v2/transport', 'transport'],
    ['gopkg.in/yaml.v3', 'yaml'],
    ['github.com/zeromicro/go-zero/zrpc', 'zrpc'],
    ['github.com/go-sql-driver/mysql', 'mysql'],
  ])('%s → %s', (path, name) => {
    expect(defaultPackageName(path)).toBe(name);
  });
});
