/** Small DOM helpers. Text always goes in as text (textContent), never as HTML. */

let nextId = 0;

/** A fresh id for aria-labelledby and label[for]. */
export function uniqueId(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Readonly<Record<string, string>> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`#${id} is missing from the page`);
  return node;
}

/** A link to a stored file (the service worker adds the token when there is one: downloads.ts). */
export function fileLink(id: string, text: string, label: string): HTMLAnchorElement {
  return el('a', { href: `/files/${encodeURIComponent(id)}`, download: '', 'data-file-link': '', 'aria-label': label }, text);
}
