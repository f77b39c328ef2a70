/**
 * The HTTP layer of the swift driver's client: requests over keep-alive agents, bodies read with
 * a limit, and upload streams that ask `Expect: 100-continue` so the server can refuse a request
 * (an expired token) before any byte of a streamed body is sent, as RFC 9110 §10.1.1 intends.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { readStream } from './object-store.js';

/** An answer the driver did not expect, with what the server said. */
export class SwiftError extends Error {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly url: string,
    detail: string,
  ) {
    super(`swift: ${method} ${redact(url)} answered ${status}${detail ? `: ${detail}` : ''}`);
    this.name = 'SwiftError';
  }
}

/** A URL without its query (temp-URL signatures, markers) for messages. */
function redact(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : `${url.slice(0, q)}?…`;
}

export interface Agents {
  http: http.Agent;
  https: https.Agent;
}

export function makeAgents(insecureSkipVerify: boolean): Agents {
  return {
    http: new http.Agent({ keepAlive: true, maxSockets: 64 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 64, rejectUnauthorized: !insecureSkipVerify }),
  };
}

/** Idle time after which a request is abandoned (a stuck server must not hang an upload); Distribution's 15 minutes. */
const IDLE_TIMEOUT_MS = 15 * 60_000;

export interface RequestSpec {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** A whole body (sent with its length). Without it, `send` sends no body. */
  body?: Buffer;
}

function open(agents: Agents, spec: RequestSpec, headers: Record<string, string>): http.ClientRequest {
  const url = new URL(spec.url);
  const mod = url.protocol === 'https:' ? https : http;
  const req = mod.request(url, { method: spec.method, headers, agent: url.protocol === 'https:' ? agents.https : agents.http });
  req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`swift: ${spec.method} ${redact(spec.url)}: no progress for ${IDLE_TIMEOUT_MS / 1000} s`)));
  return req;
}

/** Send a request and resolve with the response, its body not read yet. */
export function send(agents: Agents, spec: RequestSpec): Promise<http.IncomingMessage> {
  const headers: Record<string, string> = { ...spec.headers };
  if (spec.body !== undefined || ['PUT', 'POST'].includes(spec.method)) headers['Content-Length'] = String(spec.body?.length ?? 0);
  return new Promise((resolve, reject) => {
    const req = open(agents, spec, headers);
    req.once('response', resolve);
    req.once('error', reject);
    req.end(spec.body);
  });
}

/** The response body, refusing more than `limit` bytes (listings and auth answers, not files). */
export function readBody(res: http.IncomingMessage, limit = 64 * 1024 * 1024): Promise<Buffer> {
  return readStream(res, limit, () => new Error(`swift: an answer of more than ${limit} bytes`));
}

/** Read and drop a body so the connection can be reused. */
export async function drain(res: http.IncomingMessage): Promise<void> {
  res.resume();
  if (res.complete) return;
  await new Promise<void>((resolve) => {
    res.once('end', resolve);
    res.once('close', resolve);
    res.once('error', () => resolve());
  });
}

/** A short text of an error answer, for messages. */
export async function errorText(res: http.IncomingMessage): Promise<string> {
  try {
    return (await readBody(res, 64 * 1024)).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 300);
  } catch {
    return '';
  }
}

/** An upload whose body is streamed: write with backpressure, then `finish` for the answer. */
export interface UploadStream {
  write(chunk: Buffer): Promise<void>;
  /** End the body and resolve with the server's answer (any status; the caller judges it). */
  finish(): Promise<http.IncomingMessage>;
  /** Abandon the request: the server discards a chunked body that never ended. */
  abort(): void;
}

/** How long to wait for "100 Continue" before sending the body anyway (servers may ignore Expect). */
const CONTINUE_WAIT_MS = 2000;

/**
 * Start a request with a chunked body. Resolves with a stream once the server said "100 Continue"
 * (or did not answer within CONTINUE_WAIT_MS), or with the final answer when the server refused
 * before the body, so a 401 can be retried with a new token without losing any byte.
 */
export function openUpload(agents: Agents, spec: RequestSpec): Promise<{ stream: UploadStream } | { refused: http.IncomingMessage }> {
  const headers: Record<string, string> = { ...spec.headers, Expect: '100-continue', 'Transfer-Encoding': 'chunked' };
  const req = open(agents, spec, headers);
  let failure: Error | null = null;
  let answer: http.IncomingMessage | null = null;
  const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', (res) => {
      answer = res;
      resolve(res);
    });
    req.once('error', (err) => {
      failure = err;
      reject(err);
    });
  });
  answered.catch(() => undefined); // observed through `failure` and `finish`
  req.flushHeaders();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => go(), CONTINUE_WAIT_MS);
    const go = () => {
      clearTimeout(timer);
      req.off('continue', go);
      resolve({ stream });
    };
    req.once('continue', go);
    answered.then(
      (res) => {
        clearTimeout(timer);
        req.off('continue', go);
        resolve({ refused: res });
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
    const stream: UploadStream = {
      async write(chunk) {
        if (failure) throw failure;
        if (answer) throw new SwiftError(answer.statusCode ?? 0, spec.method, spec.url, 'answered before the body ended');
        if (req.write(chunk)) return;
        // Until the socket takes more, or the request ends early (an answer, an error, a close).
        await new Promise<void>((ok, ko) => {
          const done = () => {
            for (const event of ['drain', 'response', 'error', 'close']) req.off(event, done);
            if (failure) ko(failure);
            else ok();
          };
          for (const event of ['drain', 'response', 'error', 'close']) req.once(event, done);
        });
      },
      async finish() {
        if (failure) throw failure;
        req.end();
        return answered;
      },
      abort() {
        req.destroy(new Error('swift: upload abandoned'));
      },
    };
  });
}
