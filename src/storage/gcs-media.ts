/**
 * Object downloads (JSON API media GETs, `alt=media`, one Range) on the driver's own keep-alive
 * agent, resolved once the response headers are in so that 404 and 416 are errors of the call.
 *
 * Why not the SDK's createReadStream: when its stream ends early (a client that stops reading a
 * blob, or a reader destroyed on purpose), @google-cloud/storage 7 destroys the HTTP agent the
 * request used, which it shares with every other request of the client, so unrelated requests in
 * flight fail with "socket hang up". An IncomingMessage that is destroyed closes only its socket.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

const MAX_ATTEMPTS = 3;
const RESPONSE_TIMEOUT_MS = 60_000;

export interface MediaContext {
  /** https://storage.googleapis.com/storage/v1, or the emulator's. */
  readonly jsonBase: string;
  readonly bucket: string;
  readonly userAgent: string;
  authHeaders(): Promise<Record<string, string>>;
  /** The cached token was refused (401): get a new one next time. */
  forgetToken(): void;
}

/** An error answer of the store, with its status as `code` (as the SDK's ApiError has it). */
export class GcsHttpError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'GcsHttpError';
  }
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 256 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 256 }),
};

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function get(url: URL, headers: Record<string, string>): Promise<IncomingMessage> {
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(url, { method: 'GET', headers, agent: secure ? agents.https : agents.http }, resolve);
    req.setTimeout(RESPONSE_TIMEOUT_MS, () => req.destroy(new Error(`no response within ${RESPONSE_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

async function errorText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    const message = (JSON.parse(text) as { error?: { message?: string } }).error?.message;
    if (message) return message;
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}

/** GET the object's bytes from `start` to `end` (inclusive; either may be omitted). */
export async function mediaGet(ctx: MediaContext, objectName: string, start?: number, end?: number): Promise<{ stream: IncomingMessage; contentType: string }> {
  const url = new URL(`${ctx.jsonBase}/b/${encodeURIComponent(ctx.bucket)}/o/${encodeURIComponent(objectName)}`);
  url.searchParams.set('alt', 'media');
  const range = start === undefined && end === undefined ? undefined : `bytes=${start ?? 0}-${end ?? ''}`;
  for (let attempt = 1; ; attempt++) {
    const headers: Record<string, string> = { ...(await ctx.authHeaders()), 'user-agent': ctx.userAgent, 'accept-encoding': 'identity' };
    if (range) headers.range = range;
    let res: IncomingMessage;
    try {
      res = await get(url, headers);
    } catch (err) {
      if (attempt >= MAX_ATTEMPTS) throw err;
      await sleep(200 * attempt);
      continue;
    }
    const status = res.statusCode ?? 0;
    if (status === 200 || status === 206) {
      const type = res.headers['content-type'] ?? '';
      return { stream: res, contentType: type };
    }
    const message = await errorText(res);
    if (status === 401 && attempt === 1) {
      ctx.forgetToken();
      continue;
    }
    if ((status === 429 || status >= 500) && attempt < MAX_ATTEMPTS) {
      await sleep(200 * attempt);
      continue;
    }
    throw new GcsHttpError(status, `gcs: GET ${objectName}: ${status} ${message}`);
  }
}
