/**
 * Tiny DOM builders. Text always goes in through `textContent` (never `innerHTML`), so
 * names, descriptions and flag messages coming from the server cannot inject markup; no
 * inline `style` either (the guard's Content-Security-Policy), only classes from style/.
 */

export type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') {
      node.className = v;
    } else if (k.startsWith('on') || k === 'style' || k === 'href' || k === 'src') {
      throw new Error(`h(): attribute ${k} is not allowed`);
    } else {
      node.setAttribute(k, v);
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) {
      continue;
    }
    node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return node;
}

export function button(
  label: string,
  onClick: () => void,
  attrs: Record<string, string> = {}
): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'jp-hdh-button', ...attrs }, label);
  b.addEventListener('click', () => onClick());
  return b;
}

export function clear(node: HTMLElement): void {
  while (node.firstChild) {
    node.removeChild(node.firstChild);
  }
}

/** A same-origin absolute path (`/…`, not `//host`), or null: the only URLs set below. */
export function sameOriginPath(url: string): string | null {
  return url.startsWith('/') && !url.startsWith('//') && !/[\\\s]/.test(url) ? url : null;
}

/** A link to a same-origin page, opened in a new tab without an opener or referrer. */
export function pageLink(
  url: string,
  label: string,
  attrs: Record<string, string> = {}
): HTMLAnchorElement {
  const a = h('a', { target: '_blank', rel: 'noopener noreferrer', ...attrs }, label);
  const path = sameOriginPath(url);
  if (path === null) {
    throw new Error(`pageLink(): ${url} is not a same-origin path`);
  }
  a.href = path;
  return a;
}

/**
 * A frame for a document the control plane renders inertly: `sandbox=""` (no script, no
 * form, no same-origin access: a unique opaque origin), no referrer, same-origin `src` only.
 * Never `srcdoc`, never `allow-scripts` or `allow-same-origin`.
 */
export function inertFrame(url: string, title: string, cls: string): HTMLIFrameElement {
  const path = sameOriginPath(url);
  if (path === null) {
    throw new Error(`inertFrame(): ${url} is not a same-origin path`);
  }
  const frame = h('iframe', {
    class: cls,
    sandbox: '',
    referrerpolicy: 'no-referrer',
    title
  });
  frame.src = path;
  return frame;
}
