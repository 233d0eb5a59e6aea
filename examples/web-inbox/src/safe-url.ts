// Defence in depth for urls that come from notifications (action urls, image
// urls). The server already refuses anything but https:, http: and relative
// paths; the page checks again, so a bug or an old row on the server can never
// turn into a javascript:, data: or file: link here.

const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/**
 * The absolute url to open for `raw`, or null when it is not http(s) or a
 * relative path. Parsing (not a prefix test) decides: the URL parser strips
 * tabs and newlines and lowercases the scheme exactly as the browser would
 * when navigating, so "java\tscript:" or "JAVASCRIPT:" cannot slip through.
 */
export function safeUrl(raw: string, base: string = location.href): string | null {
  const text = raw.trim();
  if (!text) return null;
  let parsed: URL;
  try {
    parsed = new URL(text, base);
  } catch {
    return null;
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
  // A relative path must stay relative: "\\evil" or "/\\evil" are read as
  // another host by some browsers, so only plain paths, queries and fragments.
  if (!SCHEME.test(text) && !/^(\/(?![/\\])|[?#.a-z0-9_~-])/i.test(text)) return null;
  return parsed.href;
}

/** Only absolute http(s) urls for images: never relative, never data:. */
export function safeImageUrl(raw: string): string | null {
  return /^https?:\/\//i.test(raw.trim()) ? safeUrl(raw) : null;
}
