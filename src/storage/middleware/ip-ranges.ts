/**
 * AWS's published IP ranges (ip-ranges.json: `prefixes[].ip_prefix`, `ipv6_prefixes[].ipv6_prefix`,
 * each with a `region`), fetched at start-up and every `updatefrequency`, for the cloudfront
 * middleware's `ipfilteredby`. Like Distribution: until a first fetch succeeds no client counts
 * as AWS; a failed refresh is logged and the ranges last fetched stay; a bad CIDR is skipped.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Logger } from 'pino';

const FETCH_TIMEOUT_MS = 15_000;
/** ip-ranges.json is about 2 MB; refuse anything absurdly larger. */
const MAX_BYTES = 64 * 1024 * 1024;

interface PrefixEntry {
  ip_prefix?: unknown;
  ipv6_prefix?: unknown;
  region?: unknown;
}

export interface AwsIpRangesOptions {
  url: string;
  updateMs: number;
  /** Lower-cased regions to accept; null accepts every region. */
  regions: string[] | null;
  log?: Logger;
  timeoutMs?: number;
}

export class AwsIpRanges {
  private ipv4 = new BlockList();
  private ipv6 = new BlockList();
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  /** True once a fetch has succeeded. */
  initialized = false;
  /** Networks kept from the last successful fetch (IPv4 + IPv6). */
  count = 0;

  constructor(private readonly options: AwsIpRangesOptions) {}

  /** First fetch (a failure is logged, not thrown), then a refresh every updateMs. */
  async start(): Promise<void> {
    await this.refreshLogged('warn');
    this.timer = setInterval(() => void this.refreshLogged('error'), this.options.updateMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  contains(ip: string): boolean {
    const v4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip)?.[1] ?? ip;
    if (isIPv4(v4)) return this.ipv4.check(v4, 'ipv4');
    if (isIPv6(ip)) return this.ipv6.check(ip, 'ipv6');
    return false;
  }

  /** Fetch and replace the ranges; throws (and keeps the old ones) when the fetch or the JSON fails. */
  refresh(): Promise<void> {
    this.refreshing ??= this.fetchAndReplace().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshLogged(level: 'warn' | 'error'): Promise<void> {
    try {
      await this.refresh();
      this.options.log?.info({ url: this.options.url, networks: this.count }, 'cloudfront: AWS IP ranges updated');
    } catch (err) {
      this.options.log?.[level]({ url: this.options.url, err: (err as Error).message }, 'cloudfront: cannot update the AWS IP ranges');
    }
  }

  private async fetchAndReplace(): Promise<void> {
    const res = await fetch(this.options.url, { signal: AbortSignal.timeout(this.options.timeoutMs ?? FETCH_TIMEOUT_MS) });
    const body = await readLimited(res);
    if (res.status !== 200) throw new Error(`GET ${this.options.url} answered ${res.status}: ${body.subarray(0, 200).toString('utf8')}`);
    let doc: { prefixes?: unknown; ipv6_prefixes?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new Error(`${this.options.url} is not JSON: ${(err as Error).message}`);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${this.options.url} is not a JSON object`);
    const ipv4 = new BlockList();
    const ipv6 = new BlockList();
    let count = this.add(ipv4, 'ipv4', doc.prefixes, 'ip_prefix');
    count += this.add(ipv6, 'ipv6', doc.ipv6_prefixes, 'ipv6_prefix');
    this.ipv4 = ipv4;
    this.ipv6 = ipv6;
    this.count = count;
    this.initialized = true;
  }

  private add(list: BlockList, family: 'ipv4' | 'ipv6', entries: unknown, field: 'ip_prefix' | 'ipv6_prefix'): number {
    if (entries === undefined || entries === null) return 0;
    if (!Array.isArray(entries)) throw new Error(`${this.options.url}: "${family === 'ipv4' ? 'prefixes' : 'ipv6_prefixes'}" is not a list`);
    let added = 0;
    for (const entry of entries as PrefixEntry[]) {
      const cidr = entry?.[field];
      const region = typeof entry?.region === 'string' ? entry.region.toLowerCase() : '';
      const network = typeof cidr === 'string' ? parseCIDR(cidr) : null;
      if (!network) {
        this.options.log?.error({ cidr }, 'cloudfront: unparseable CIDR in the AWS IP ranges, skipped');
        continue;
      }
      if (this.options.regions && !this.options.regions.includes(region)) continue;
      // Go compares networks of the client's family only: an IPv6 network listed under `prefixes` never matches.
      if (network.family !== family) continue;
      list.addSubnet(network.address, network.prefix, family);
      added++;
    }
    return added;
  }
}

function parseCIDR(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  if (!m) return null;
  const prefix = Number(m[2]);
  if (isIPv4(m[1]) && prefix <= 32) return { address: m[1], prefix, family: 'ipv4' };
  if (isIPv6(m[1]) && !m[1].includes('%') && prefix <= 128) return { address: m[1], prefix, family: 'ipv6' };
  return null;
}

async function readLimited(res: Response): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.length;
    if (size > MAX_BYTES) {
      await res.body?.cancel();
      throw new Error(`${res.url}: more than ${MAX_BYTES} bytes`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
