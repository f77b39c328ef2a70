/**
 * The client's IP address as Distribution determines it (its context.RemoteIP): the first entry
 * of X-Forwarded-For when it is an IP, else X-Real-Ip when it is one, else the socket's peer.
 * Like Distribution, the headers are trusted: put the registry behind a proxy that sets them.
 */
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

export function clientIP(req: IncomingMessage): string {
  const forwarded = headerValue(req.headers['x-forwarded-for']);
  if (forwarded) {
    const first = forwarded.split(',')[0].trim();
    if (isIP(first)) return unmapped(first);
  }
  const real = headerValue(req.headers['x-real-ip']);
  if (real) {
    const ip = real.trim();
    if (isIP(ip)) return unmapped(ip);
  }
  return unmapped(req.socket?.remoteAddress ?? '');
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** ::ffff:1.2.3.4 is the IPv4 client 1.2.3.4 (Go's net.IP.To4 treats it so). */
function unmapped(ip: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  return m ? m[1] : ip;
}
