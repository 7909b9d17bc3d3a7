/**
 * Plain TLS: say nothing after the handshake and watch. Sending bytes of a guessed protocol could
 * make a server close for reasons that have nothing to do with our certificate; in TLS 1.3 the
 * server judges the client certificate as soon as it reads our last handshake flight, so its
 * alert or close comes without any prompt. Data the server volunteers is an answer.
 */
import type { TLSSocket } from 'node:tls';
import type { Conversation, ConversationEnd } from '../attempt.js';
import { printable } from '../signals.js';

export const plainConversation: Conversation = {
  name: 'tls',
  alpn: undefined,
  expectsAnswer: false,
  converse(socket: TLSSocket): Promise<ConversationEnd> {
    return new Promise((resolve) => {
      socket.once('data', (chunk: Buffer) => resolve({ kind: 'answered', answer: { summary: `${chunk.length} bytes: ${printable(chunk)}`, refusal: undefined } }));
      socket.once('close', () => resolve({ kind: 'ended', detail: undefined }));
    });
  },
};
