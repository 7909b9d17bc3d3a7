/**
 * TLS 1.2 cipher suites a mutual-TLS service should refuse, in groups by weakness; each group is
 * offered alone (TLS 1.2 only) so that a server preferring a strong suite cannot hide that it
 * would also take a weak one. `@SECLEVEL=0` lets OpenSSL 3 offer them at all. Suites this
 * machine's OpenSSL lacks (3DES, RC4, NULL and EXPORT are gone from OpenSSL 3's default
 * provider) cannot be offered; such a group is reported as not tested, never as refused.
 */
export interface CipherGroup {
  name: string;
  /** OpenSSL names; those unknown to this build are ignored by OpenSSL as long as one is known. */
  suites: readonly string[];
}

export const WEAK_TLS12_GROUPS: readonly CipherGroup[] = [
  {
    name: 'CBC (no AEAD)',
    suites: [
      'ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA',
      'ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256', 'ECDHE-RSA-AES256-SHA384',
      'DHE-RSA-AES128-SHA', 'DHE-RSA-AES256-SHA', 'DHE-RSA-AES128-SHA256', 'DHE-RSA-AES256-SHA256',
    ],
  },
  {
    name: 'RSA key exchange (no forward secrecy)',
    suites: ['AES128-GCM-SHA256', 'AES256-GCM-SHA384', 'AES128-SHA256', 'AES256-SHA256', 'AES128-SHA', 'AES256-SHA', 'AES128-CCM', 'AES256-CCM'],
  },
  {
    name: 'anonymous (no server authentication)',
    suites: ['AECDH-AES128-SHA', 'AECDH-AES256-SHA', 'ADH-AES128-GCM-SHA256', 'ADH-AES256-GCM-SHA384', 'ADH-AES128-SHA', 'ADH-AES256-SHA'],
  },
  { name: '3DES', suites: ['ECDHE-ECDSA-DES-CBC3-SHA', 'ECDHE-RSA-DES-CBC3-SHA', 'DES-CBC3-SHA'] },
  { name: 'RC4, NULL or EXPORT', suites: ['ECDHE-RSA-RC4-SHA', 'RC4-SHA', 'RC4-MD5', 'ECDHE-ECDSA-NULL-SHA', 'NULL-SHA256', 'NULL-SHA', 'EXP-RC4-MD5'] },
];

export const cipherList = (group: CipherGroup): string => `${group.suites.join(':')}@SECLEVEL=0`;

/**
 * Old protocol versions need `@SECLEVEL=0` too: OpenSSL 3 refuses SHA-1 handshake signatures at
 * level 1, which TLS 1.0/1.1 cannot avoid. Without it the prober would abort a handshake the
 * server accepted and wrongly report a refusal.
 */
export const LEGACY_VERSION_CIPHERS = 'DEFAULT@SECLEVEL=0';
