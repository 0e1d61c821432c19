// Small DOM helpers for the chat and admin pages. Text always goes in as text nodes, never as HTML.

export const $ = (sel, root = document) => root.querySelector(sel);

// el('li', {class: 'x', title: 'y'}, 'text', child, ...): attributes are set as attributes,
// children that are strings become text nodes, false/null/'' are skipped.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined && v !== false) node.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false || c === '') continue;
    node.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return node;
}

export function formatSize(n) {
  if (typeof n !== 'number') return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatTime(ms) {
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return today ? time : `${d.toLocaleDateString()} ${time}`;
}

// A URL the server gave out ("/files/...") made absolute against the server the page talks to,
// which need not be the page's own origin.
export function absoluteUrl(url, server) {
  return new URL(url, server.endsWith('/') ? server : `${server}/`).href;
}
