/**
 * Writes docs/errors.md from the error registry (src/errors.ts), so the documented codes are
 * exactly the codes the code can return. Run: npx tsx scripts/errors-doc.ts
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_REGISTRY } from '../src/errors.js';

export const ERRORS_DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url));

/** The whole text of docs/errors.md, from the registry. */
export function renderErrorsDoc(): string {
  const rows = Object.entries(ERROR_REGISTRY).map(([code, { status, summary }]) => `| \`${code}\` | ${status} | ${summary.replace(/\|/g, '\\|')} |`);
  return `# Error codes

Every refusal from the CA API, the CLI and the library carries one of these stable codes. The API
answers \`{ "error": { "code": "ERR_…", "message": "…" } }\` with the HTTP status below; the CLI
prints \`error ERR_…: message\` and exits 1 (2 for usage errors). The message names the problem
and never contains a token, key or passphrase. Refusals by the CA are also in its audit log with
the same code.

Generated from \`src/errors.ts\` by \`npx tsx scripts/errors-doc.ts\`; a test keeps the two in step.

| Code | HTTP | Meaning |
|---|---|---|
${rows.join('\n')}
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) writeFileSync(ERRORS_DOC, renderErrorsDoc());
