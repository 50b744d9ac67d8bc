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
