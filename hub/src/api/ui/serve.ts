// Serves the hub's read-only fleet page on the HTTP API's listener: GET / (and /ui) is
// the HTML, /ui/<name>.<hash>.<ext> the script, stylesheet and icon. Asset names carry
// a hash of their content, so they are cached for a year while the page itself is
// revalidated on every load and picks up a new hub's assets at once.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PAGE_CSS, PAGE_ICON } from './page-css.js';
import { pageHtml } from './page-html.js';
import { PAGE_SCRIPT } from './page-script.js';

/** One file of the page, ready to send. */
export interface UiAsset {
  body: Buffer;
  contentType: string;
  etag: string;
  cacheControl: string;
}

/**
 * The page's Content-Security-Policy: only the hub's own script, style, images and API;
 * no inline script or style, no plugins, no framing; Trusted Types forbid assigning
 * strings to HTML sinks (innerHTML and friends), so a slip cannot render agent data as markup.
 */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

const IMMUTABLE = 'public, max-age=31536000, immutable';

function asset(text: string, contentType: string, cacheControl: string): UiAsset {
  const body = Buffer.from(text, 'utf8');
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
  return { body, contentType, etag: `"${hash}"`, cacheControl };
}

function versioned(name: string, ext: string, a: UiAsset): [string, UiAsset] {
  return [`/ui/${name}.${a.etag.slice(1, 13)}.${ext}`, a];
}

const assets = new Map<string, UiAsset>([
  versioned('app', 'js', asset(PAGE_SCRIPT, 'text/javascript; charset=utf-8', IMMUTABLE)),
  versioned('app', 'css', asset(PAGE_CSS, 'text/css; charset=utf-8', IMMUTABLE)),
  versioned('icon', 'svg', asset(PAGE_ICON, 'image/svg+xml', IMMUTABLE)),
]);
const urls = [...assets.keys()];
const page = asset(
  pageHtml({
    script: urls.find((u) => u.endsWith('.js')) ?? '',
    style: urls.find((u) => u.endsWith('.css')) ?? '',
    icon: urls.find((u) => u.endsWith('.svg')) ?? '',
  }),
  'text/html; charset=utf-8',
  // Always revalidated (a 304 when unchanged), so a new hub's page and assets show at once.
  'no-cache',
);

/** The page file at a request path (trailing slashes removed), or undefined when it is not one. */
export function uiAsset(path: string): UiAsset | undefined {
  if (path === '/' || path === '/ui') return page;
  return assets.get(path);
}

/** The versioned URLs of the page's script, stylesheet and icon (for tests). */
export function uiAssetPaths(): string[] {
  return [...urls];
}

/** Sends a page file with its security and cache headers; 304 when the browser has it. */
export function sendUiAsset(req: IncomingMessage, res: ServerResponse, a: UiAsset): void {
  const headers = {
    'content-security-policy': UI_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': a.cacheControl,
    etag: a.etag,
  };
  if (req.headers['if-none-match'] === a.etag) {
    res.writeHead(304, headers);
    return void res.end();
  }
  res.writeHead(200, {
    ...headers,
    'content-type': a.contentType,
    'content-length': a.body.length,
  });
  res.end(a.body);
}
