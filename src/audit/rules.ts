/**
 * Every rule the auditor has, in one table: the docs (docs/audit.md), `--list-rules` and SARIF's
 * `tool.driver.rules` are all made from it, and a test checks each rule has fixtures.
 */
import type { AuditRule, Severity } from './types.js';

const rule = (id: string, severity: Severity, language: AuditRule['language'], title: string, description: string, fix: string): AuditRule =>
  Object.freeze({ id, severity, language, title, description, fix });

const SDK_CLIENT = 'tlsmesh: clientTlsOptions / MtlsHttpsAgent / createMtlsDispatcher check the chain and the SPIFFE ID';

export const RULES: readonly AuditRule[] = Object.freeze([
  // ---- TypeScript / JavaScript ------------------------------------------------------------------
  rule(
    'node/reject-unauthorized-false',
    'error',
    'ts',
    'rejectUnauthorized: false turns off certificate verification',
    'A TLS client (tls.connect, https.request, an Agent, undici, pg, ws…) with rejectUnauthorized false (or another falsy constant) accepts any certificate: anyone on the path can impersonate the server. Found in object literals, through constants and spreads, and in assignments such as agent.options.rejectUnauthorized = false.',
    `Remove it and give the client the CA that issued the server's certificate (\`ca: bundlePem\`); ${SDK_CLIENT}.`,
  ),
  rule(
    'node/tls-reject-unauthorized-env',
    'error',
    'ts',
    "NODE_TLS_REJECT_UNAUTHORIZED set to '0' turns off verification for the whole process",
    "Node reads NODE_TLS_REJECT_UNAUTHORIZED='0' as rejectUnauthorized: false for every TLS connection the process makes, including those of libraries. Found as process.env assignments (dot or bracket) and as keys of object literals (spawn env, Object.assign).",
    'Delete the assignment; trust the server through `ca` (or NODE_EXTRA_CA_CERTS for a private CA) instead.',
  ),
  rule(
    'node/request-cert-unverified',
    'error',
    'ts',
    'A server asks for client certificates but does not verify them',
    'requestCert: true with rejectUnauthorized false (directly or through a spread) completes the handshake with any client certificate, or none: the peer is not authenticated. Also a server-side tls.TLSSocket with requestCert and no rejectUnauthorized: true, since TLSSocket does not reject by default.',
    'Set rejectUnauthorized: true (the tls.Server default), or verify in the secureConnection handler and destroy the socket yourself, with a suppression that says so; tlsmesh: createMtlsHttpsServer / serverTlsOptions.',
  ),
  rule(
    'node/request-cert-without-reject-unauthorized',
    'note',
    'ts',
    'requestCert: true without an explicit rejectUnauthorized',
    "tls.Server, https and http2 secure servers default rejectUnauthorized to true, so this is secure there; it is reported as a note because the intent is implicit and the same options given to a server-side tls.TLSSocket would not verify. Not reported when a spread the auditor cannot resolve may supply the option.",
    'Write rejectUnauthorized: true next to requestCert: true.',
  ),
  rule(
    'node/check-server-identity-noop',
    'error',
    'ts',
    'checkServerIdentity accepts every certificate',
    "A checkServerIdentity whose every return path returns undefined (or null, false, nothing) never rejects, so the client accepts any certificate the CA signed, for any name: with a private CA that is every workload. Functions that throw, return an Error, or return anything the auditor cannot evaluate are not reported; async functions are not reported (a Promise is truthy).",
    "Return an Error when the certificate does not name the expected peer; for SPIFFE IDs use tlsmesh's expectSpiffeId / checkServerSpiffeId.",
  ),
  rule(
    'node/min-version-below-tls12',
    'error',
    'ts',
    'TLS version limit below TLS 1.2',
    "minVersion (or tls.DEFAULT_MIN_VERSION) of 'TLSv1' or 'TLSv1.1' lets a peer or an attacker negotiate deprecated protocols (RFC 8996); a maxVersion below TLS 1.2 forces them.",
    "Use minVersion: 'TLSv1.2' (or 'TLSv1.3' between your own services) and leave maxVersion unset.",
  ),
  rule(
    'node/legacy-secure-protocol',
    'error',
    'ts',
    'secureProtocol pins SSLv3, TLS 1.0 or TLS 1.1',
    "secureProtocol: 'TLSv1_method' (or SSLv3_method, TLSv1_1_method and their _client/_server forms) selects one deprecated protocol version.",
    "Remove secureProtocol and set minVersion: 'TLSv1.2'.",
  ),
  rule(
    'node/weak-ciphers',
    'error',
    'ts',
    'Cipher list enables NULL, anonymous, export, RC4, DES/3DES or MD5 suites',
    "A ciphers string (or tls.DEFAULT_CIPHERS) that adds NULL/eNULL/aNULL, EXPORT, RC4, DES, 3DES (DES-CBC3), RC2 or MD5 suites, or lowers @SECLEVEL to 0. Exclusions such as '!RC4' or '-3DES' are not reported; strings built from constants, concatenation and [...].join(':') are evaluated.",
    "Drop the ciphers option (Node's defaults are sound), or list only ECDHE with AES-GCM or ChaCha20-Poly1305; tlsmesh exports TLS_CIPHERS.",
  ),
  rule(
    'node/plaintext-server',
    'warning',
    'ts',
    'Plaintext HTTP listener (http.createServer / http2.createServer)',
    'node:http and cleartext HTTP/2 servers carry requests without TLS or peer authentication. A warning, not an error: a port that serves only health checks or metrics may be plaintext on purpose; then suppress it with that reason.',
    'Serve the port with https.createServer / http2.createSecureServer and requestCert, or tlsmesh createMtlsHttpsServer / createMtlsHttp2Server.',
  ),
  rule(
    'grpc-js/insecure-server-credentials',
    'error',
    'ts',
    'gRPC server without TLS (ServerCredentials.createInsecure)',
    'A grpc-js server bound with ServerCredentials.createInsecure() accepts plaintext calls from anyone who can reach the port. Found through namespace, named, aliased and destructured imports.',
    'Bind with ServerCredentials.createSsl(rootCerts, keyCertPairs, true) or tlsmesh grpcServerCredentials(source).',
  ),
  rule(
    'grpc-js/insecure-channel-credentials',
    'error',
    'ts',
    'gRPC client without TLS (credentials.createInsecure)',
    'A grpc-js channel made with credentials.createInsecure() sends calls in plaintext and does not authenticate the server.',
    'Use credentials.createSsl(rootCerts, key, cert, { checkServerIdentity }) or tlsmesh grpcChannelCredentials(source, { expect }).',
  ),
  rule(
    'tlsmesh/permissive-server',
    'note',
    'ts',
    "tlsmesh permissive mode: the port also serves plaintext and unauthenticated callers",
    "createPermissiveHttpsServer is tlsmesh's explicit, logged migration path. A note, so that it is tracked in reports and code scanning without failing CI at the default --fail-on; use --fail-on note to require its removal.",
    'Switch to createMtlsHttpsServer once permissiveStats shows no plaintext or unauthenticated callers.',
  ),

  // ---- Go -----------------------------------------------------------------------------------------
  rule(
    'go/insecure-skip-verify',
    'error',
    'go',
    'InsecureSkipVerify: true turns off certificate verification',
    'A tls.Config with InsecureSkipVerify true (in a composite literal, through a constant, or assigned) accepts any server certificate. Not reported when the same literal sets VerifyPeerCertificate or VerifyConnection: that is how go-spiffe and tlsmesh-style SPIFFE checks replace the default verification.',
    'Remove it and set RootCAs to the CA that issued the server certificate; to check a SPIFFE ID keep verification and add VerifyPeerCertificate.',
  ),
  rule(
    'go/grpc-insecure-credentials',
    'error',
    'go',
    'grpc-go without transport security (grpc.WithInsecure / insecure.NewCredentials)',
    'grpc.WithInsecure() and insecure.NewCredentials() (google.golang.org/grpc/credentials/insecure), for a client dial option or a server grpc.Creds, carry calls in plaintext without authentication.',
    'Use credentials.NewTLS(&tls.Config{...}) with RootCAs (client) or ClientCAs and ClientAuth: tls.RequireAndVerifyClientCert (server).',
  ),
  rule(
    'go/grpc-server-plaintext',
    'warning',
    'go',
    'grpc.NewServer without grpc.Creds',
    'A grpc-go server created without a grpc.Creds option serves plaintext. Not reported when the options are passed as opts... (unknown to a static check) or the same function wraps the listener with tls.NewListener / tls.Listen.',
    'Pass grpc.Creds(credentials.NewTLS(cfg)) with a server tls.Config that requires and verifies client certificates.',
  ),
  rule(
    'go/http-plaintext-listener',
    'warning',
    'go',
    'Plaintext HTTP listener (http.ListenAndServe / Server.ListenAndServe)',
    'net/http ListenAndServe and Serve carry requests without TLS. A warning: health and metrics ports may be plaintext on purpose; suppress those with the reason.',
    'Use ListenAndServeTLS (or Serve on a tls.NewListener) with a tls.Config that requires client certificates.',
  ),
  rule(
    'go/tls-client-auth-weak',
    'error',
    'go',
    'Server tls.Config does not require a verified client certificate',
    'ClientAuth set to NoClientCert, RequestClientCert, RequireAnyClientCert or VerifyClientCertIfGiven, or ClientCAs set while ClientAuth is left at its default (NoClientCert), lets clients connect without a certificate that verifies. Configs that set GetConfigForClient, or a function that assigns .ClientAuth elsewhere, are not judged.',
    'Set ClientAuth: tls.RequireAndVerifyClientCert and ClientCAs to the pool of your CA.',
  ),
  rule(
    'go/tls-client-cas-missing',
    'error',
    'go',
    'RequireAndVerifyClientCert without ClientCAs',
    "With ClientCAs nil, Go verifies client certificates against the host's system roots: any certificate from a public CA with the client-auth usage gets in.",
    'Set ClientCAs to a pool holding only your CA (tlsmesh bundle.pem).',
  ),
  rule(
    'go/tls-min-version-below-12',
    'error',
    'go',
    'tls.Config MinVersion or MaxVersion below TLS 1.2',
    'MinVersion VersionSSL30 / VersionTLS10 / VersionTLS11 (or 0x0300–0x0302) allows deprecated protocols; such a MaxVersion forces them.',
    'Set MinVersion: tls.VersionTLS12 (or VersionTLS13) and leave MaxVersion unset.',
  ),
  rule(
    'go/tls-weak-cipher-suites',
    'error',
    'go',
    'tls.Config CipherSuites lists RC4, 3DES or NULL suites',
    'CipherSuites naming suites with RC4, 3DES or NULL, or taken from tls.InsecureCipherSuites(), re-enables what Go turns off by default.',
    "Drop CipherSuites (Go's defaults are sound; TLS 1.3 suites are not configurable anyway) or list only ECDHE AES-GCM / ChaCha20-Poly1305 suites.",
  ),
  rule(
    'go/kitex-client-without-tls',
    'warning',
    'go',
    'Kitex client without client.WithGRPCTLSConfig',
    "A Kitex client (client.NewClient, or a kitex_gen service's NewClient / MustNewClient) without client.WithGRPCTLSConfig talks plaintext: Kitex only offers TLS on its gRPC transport, client side. Not reported when options are passed as opts... .",
    'Use client.WithTransportProtocol(transport.GRPC) and client.WithGRPCTLSConfig(cfg) with a tls.Config holding your client certificate and RootCAs; or send the traffic through a local mTLS proxy.',
  ),
  rule(
    'go/go-zero-server-without-creds',
    'warning',
    'go',
    'go-zero zrpc server without grpc.Creds',
    'zrpc.MustNewServer / zrpc.NewServer serve plaintext gRPC unless grpc.Creds(...) is added (server.AddOptions(grpc.Creds(creds))); go-zero has no TLS fields in RpcServerConf. Not reported when the function passes AddOptions a slice (opts...).',
    'Call server.AddOptions(grpc.Creds(credentials.NewTLS(cfg))) with ClientAuth: tls.RequireAndVerifyClientCert.',
  ),
  rule(
    'go/go-zero-client-without-tls',
    'warning',
    'go',
    'go-zero zrpc client without transport credentials',
    'zrpc.MustNewClient / NewClient / NewClientWithTarget dial with insecure credentials unless an option supplies TLS (zrpc.WithDialOption(grpc.WithTransportCredentials(...)), zrpc.WithTlsClientFromMutual / FromUnilateral). Not reported when options are passed as opts... .',
    'Add zrpc.WithDialOption(grpc.WithTransportCredentials(credentials.NewTLS(cfg))) with your client certificate and RootCAs.',
  ),
  rule(
    'go/go-micro-transport-plaintext',
    'warning',
    'go',
    'go-micro transport without Secure / TLSConfig',
    'go-micro transports (transport.NewHTTPTransport, the gRPC transport plugin) are plaintext unless transport.Secure(true) or transport.TLSConfig(cfg) is given.',
    'Pass transport.TLSConfig(cfg) with certificates from your CA (and ClientAuth on the server side).',
  ),
  rule(
    'go/go-micro-secure-without-tls-config',
    'error',
    'go',
    'go-micro transport.Secure(true) without transport.TLSConfig',
    'With Secure(true) and no TLSConfig, go-micro listens with a self-signed certificate and dials with InsecureSkipVerify: the traffic is encrypted but nobody is authenticated.',
    'Add transport.TLSConfig(cfg) with RootCAs, your certificate and (server side) ClientAuth: tls.RequireAndVerifyClientCert.',
  ),

  // ---- Configuration files ----------------------------------------------------------------------
  rule(
    'config/tls-disabled',
    'error',
    'config',
    'TLS switched off in a configuration file',
    "YAML, JSON and .env keys that turn TLS off: tls/ssl/use_tls/tls_enabled (and names ending so, like REDIS_TLS) set to false; enabled: false under a tls or ssl key; plaintext / *insecure set to true (OpenTelemetry's insecure: true is plaintext gRPC); sslmode disable/allow (PostgreSQL) or ssl-mode DISABLED (MySQL), also inside connection URLs. Values are read as YAML/JSON values or env strings (true/false/1/0/yes/no/on/off).",
    'Turn TLS on and point the client at your CA bundle; for PostgreSQL use sslmode=verify-full with sslrootcert.',
  ),
  rule(
    'config/tls-verify-disabled',
    'error',
    'config',
    'Certificate verification switched off in a configuration file',
    'insecure_skip_verify / insecure-skip-tls-verify / skip_tls_verify / *_NO_VERIFY set to true, verify_ssl / ssl_verify / tls_verify / rejectUnauthorized / *HTTPS_VERIFY set to false, and verify: false under a tls or ssl key.',
    'Remove the switch and configure the CA that issued the server certificate (ca_file, sslrootcert, NODE_EXTRA_CA_CERTS…).',
  ),
  rule(
    'config/node-tls-reject-unauthorized',
    'error',
    'config',
    'NODE_TLS_REJECT_UNAUTHORIZED=0 in a configuration file',
    "As an .env entry, a YAML/JSON key (docker-compose, Kubernetes env name/value pairs) or inside a command string (package.json scripts, CI steps), NODE_TLS_REJECT_UNAUTHORIZED=0 turns off certificate verification for every TLS connection of the Node process.",
    "Remove it; give Node the CA with NODE_EXTRA_CA_CERTS=/path/bundle.pem instead.",
  ),
  rule(
    'secret/private-key',
    'error',
    'secret',
    'Unencrypted private key committed',
    'A complete PEM block -----BEGIN [RSA |EC |DSA |OPENSSH ]PRIVATE KEY----- with a body and its END line, in any text file (also inside string literals with \\n escapes). OpenSSH keys whose header names a cipher, and legacy PEM with Proc-Type: 4,ENCRYPTED, count as encrypted. Lines that only mention the header (parsers, docs) are not reported, and the report never contains key material.',
    'Remove the key from the repository and its history, revoke or rotate it, and issue keys at deploy time (tlsmesh agent / cert request write key.pem with mode 0600).',
  ),
  rule(
    'secret/encrypted-private-key',
    'warning',
    'secret',
    'Encrypted private key committed',
    'An ENCRYPTED PRIVATE KEY (PKCS#8), a legacy PEM key with Proc-Type: 4,ENCRYPTED or an OpenSSH key with a cipher. Its safety rests on a passphrase that can be attacked offline for as long as the repository exists.',
    'Keep keys out of the repository; issue them at deploy time.',
  ),

  // ---- The auditor's own hygiene ----------------------------------------------------------------
  rule(
    'audit/suppression-without-reason',
    'warning',
    'audit',
    'Suppression comment without a reason',
    'A tlsmesh-audit-ignore comment must end in ": reason". Without one it suppresses nothing and is reported itself.',
    'Write the reason after the rule ids, e.g. tlsmesh-audit-ignore node/plaintext-server: health checks only, bound to 127.0.0.1.',
  ),
  rule(
    'audit/suppression-unknown-rule',
    'warning',
    'audit',
    'Suppression names a rule that does not exist',
    'A misspelt rule id suppresses nothing; the finding it was meant for is still reported.',
    'Use an id from `tlsmesh audit --list-rules`.',
  ),
  rule(
    'audit/unused-suppression',
    'note',
    'audit',
    'Suppression that matches no finding',
    'The code it was written for has changed or moved; a stale suppression would silence a future finding on that line.',
    'Delete the comment, or move it to the line it is meant for.',
  ),
]);

const BY_ID = new Map(RULES.map((entry) => [entry.id, entry]));

export function ruleById(id: string): AuditRule {
  const found = BY_ID.get(id);
  if (!found) throw new TypeError(`unknown audit rule ${id}`);
  return found;
}

export const isRuleId = (id: string): boolean => BY_ID.has(id);
