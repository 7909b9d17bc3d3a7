import { join } from 'node:path';

/** The files a workload keeps: its chain (leaf + intermediate), its key, and the trust bundle. */
export const credentialPathsIn = (dir: string) =>
  ({ cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), bundle: join(dir, 'bundle.pem') }) as const;
