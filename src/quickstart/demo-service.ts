/**
 * A demo service for the quickstart: an HTTPS server that requires a client certificate from the
 * trust bundle and answers only callers on its allow-list, and a client that accepts only the
 * expected server SPIFFE ID. Plain node:https, to show exactly what mutual TLS takes.
 */
import { Agent, createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { expectSpiffeId, spiffeIdsOf } from '../pki/index.js';
import type { Credentials } from '../client/enroll.js';

export interface DemoService {
  name: string;
  spiffeId: string;
  url: string;
  /** Calls another demo service and returns what it saw of us and of itself. */
  call(peer: { url: string; spiffeId: string }): Promise<{ answeredBy: string; protocol: string; body: { service: string; caller: string } }>;
  close(): Promise<void>;
}

export async function startDemoService(options: {
  name: string;
  spiffeId: string;
  credentials: Credentials;
  allowedCallers: readonly string[];
  log: (line: string) => void;
}): Promise<DemoService> {
  const { credentials } = options;
  const server: Server = createServer(
    {
      key: credentials.keyPem,
      cert: credentials.certPem,
      ca: credentials.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    (req, res) => {
      const caller = spiffeIdsOf((req.socket as TLSSocket).getPeerCertificate().subjectaltname)[0] ?? '(none)';
      if (!options.allowedCallers.includes(caller)) {
        options.log(`[${options.name}] refused ${caller}: not on the allow-list`);
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'caller not allowed', caller }));
        return;
      }
      options.log(`[${options.name}] request from ${caller}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ service: options.name, caller }));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const agents = new Map<string, Agent>();
  const agentFor = (expected: string): Agent => {
    let agent = agents.get(expected);
    if (!agent) {
      agent = new Agent({ keepAlive: true, key: credentials.keyPem, cert: credentials.certPem, ca: credentials.bundlePem, checkServerIdentity: expectSpiffeId(expected) });
      agents.set(expected, agent);
    }
    return agent;
  };

  return {
    name: options.name,
    spiffeId: options.spiffeId,
    url,
    call: (peer) =>
      new Promise((resolve, reject) => {
        const req = request(`${peer.url}/hello`, { agent: agentFor(peer.spiffeId), timeout: 5000 }, (res) => {
          const socket = res.socket as TLSSocket;
          const answeredBy = spiffeIdsOf(socket.getPeerCertificate().subjectaltname)[0] ?? '(none)';
          const protocol = socket.getProtocol() ?? '?';
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`${peer.spiffeId} answered ${res.statusCode}: ${text}`));
            else resolve({ answeredBy, protocol, body: JSON.parse(text) as { service: string; caller: string } });
          });
        });
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', reject);
        req.end();
      }),
    close: async () => {
      for (const agent of agents.values()) agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
