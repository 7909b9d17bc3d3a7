/** One GET over an HTTP/2 client session. */
import type { ClientHttp2Session } from 'node:http2';

export function h2Get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ...headers });
    let status = 0;
    let responseHeaders: Record<string, unknown> = {};
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    stream.on('data', (chunk: string) => (body += chunk));
    const noResponse = () => new Error(`the stream ended without a response (RST code ${stream.rstCode})`);
    stream.on('end', () => (status === 0 ? reject(noResponse()) : resolve({ status, body, headers: responseHeaders })));
    stream.on('close', () => {
      if (status === 0) reject(noResponse());
    });
    stream.on('error', reject);
    session.once('error', reject);
    stream.end();
  });
}
