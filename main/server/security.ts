// Browser mode's security rules in one place: the Content-Security-Policy (shared with the Electron window, so both
// are equally strict), the session token, and the Host/Origin checks that keep other web pages and DNS-rebinding
// tricks away from a server listening on the loopback interface.
import { randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The renderer's Content-Security-Policy. Only our own scripts, styles and workers; no eval, no inline script, no
 * plugins, no framing, no form posts. 'self' in connect-src covers fetch and the WebSocket of the same origin.
 * React's style props and Konva's canvas styles are set through the CSSOM, which style-src does not restrict.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/** Headers every browser-mode response carries. */
export const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

/** 192 random bits, URL-safe: unguessable, and short enough to paste. */
export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

export function tokensEqual(a: string | undefined | null, b: string): boolean {
  if (typeof a !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Cookie carrying the token for the page's own requests (scripts, tiles, the WebSocket); one name per port. */
export function cookieName(port: number): string {
  return `emseg_token_${port}`;
}

export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host);
}

/**
 * Is the Host header one of ours? A DNS-rebinding page reaches 127.0.0.1 under its own name; refusing foreign Host
 * headers stops it even before the token would.
 */
export function hostAllowed(hostHeader: string | undefined, boundHost: string, port: number): boolean {
  if (!hostHeader) return false;
  // Listening on every interface (only on request, never by default): any name may reach us; the token still guards.
  if (boundHost === '0.0.0.0' || boundHost === '::') return true;
  const names = isLoopback(boundHost) ? [...LOOPBACK_HOSTS] : [boundHost];
  return names.some((n) => hostHeader === `${n.includes(':') && !n.startsWith('[') ? `[${n}]` : n}:${port}`);
}

/** A request with an Origin (fetch, WebSocket) must come from our own page. */
export function originAllowed(origin: string | undefined, hostHeader: string | undefined): boolean {
  if (origin === undefined) return true;
  return hostHeader !== undefined && origin === `http://${hostHeader}`;
}
