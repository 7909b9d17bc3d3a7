/** docs/audit.md stays in step with the rule table in the code. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RULES } from '../../src/audit/index.js';
import { REPO_ROOT } from '../helpers/cli.js';

describe('docs/audit.md', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'audit.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `([a-z-]+\/[a-z0-9-]+)` \| (error|warning|note) \| (.+) \|$/gm)].map((match) => ({ id: match[1], severity: match[2], title: match[3] }));

  it('lists every rule, in order, with its severity and title', () => {
    expect(rows).toEqual(RULES.map((rule) => ({ id: rule.id, severity: rule.severity, title: rule.title })));
  });
});
