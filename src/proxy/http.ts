/**
 * Plain HTTP to an upstream registry: node:http/https with kept-alive connections, redirects
 * followed (credentials dropped when the host changes, as a browser would), and timeouts for an
 * upstream that does not answer or goes silent mid-body. Bodies stay streams.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { UpstreamTimeouts } from './settings.js';

export interface UpstreamResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  /** Where the answer came from, after redirects. */
  url: URL;
}

/** The upstream could not be reached, or stopped answering: a network error or a timeout. */
export class UpstreamUnreachable extends Error {
  override name = 'UpstreamUnreachable';
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

export interface SendOptions {
  method: 'GET' | 'HEAD';
  headers: Record<string, string>;
  timeouts: UpstreamTimeouts;
}

export class HttpClient {
  private readonly agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 64, scheduling: 'lifo' }),
  };

  /** Send a request, following redirects. Rejects with UpstreamUnreachable on network errors and timeouts. */
  async send(url: URL, opts: SendOptions): Promise<UpstreamResponse> {
    let current = url;
    let headers = opts.headers;
    for (let hop = 0; ; hop++) {
      const res = await this.once(current, opts.method, headers, opts.timeouts);
      const location = res.headers.location;
      if (!REDIRECTS.has(res.status) || !location || hop >= MAX_REDIRECTS) return res;
      res.body.resume();
      const next = new URL(location, current);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') return res;
      // A blob redirected to object storage must not carry the registry's credentials there.
      if (next.origin !== current.origin) {
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      current = next;
    }
  }

  private once(url: URL, method: string, headers: Record<string, string>, timeouts: UpstreamTimeouts): Promise<UpstreamResponse> {
    const agent = url.protocol === 'https:' ? this.agents['https:'] : this.agents['http:'];
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let response: http.IncomingMessage | undefined;
      const req = transport.request(url, { method, headers, agent }, (res) => {
        response = res;
        // From here the same socket timer guards the body: silence longer than idleMs cuts it.
        req.setTimeout(timeouts.idleMs);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
      });
      // Node's request timer watches socket inactivity and is released with the socket to the agent.
      req.setTimeout(timeouts.responseMs, () => {
        if (response) response.destroy(new UpstreamUnreachable(`${url.origin} went silent for ${timeouts.idleMs} ms in the middle of a response`));
        else req.destroy(new UpstreamUnreachable(`${url.origin} did not answer within ${timeouts.responseMs} ms`));
      });
      req.once('error', (err) => {
        reject(err instanceof UpstreamUnreachable ? err : new UpstreamUnreachable(`${url.origin} cannot be reached: ${describe(err)}`));
      });
      req.end();
    });
  }

  close(): void {
    this.agents['http:'].destroy();
    this.agents['https:'].destroy();
  }
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `${code} (${err.message})` : err.message;
}

/** Read a small body whole, refusing more than `limit` bytes. */
export async function readSmall(body: http.IncomingMessage, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new Error(`response larger than ${limit} bytes`);
    }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}
