// Building DOM nodes without innerHTML: names and texts come from Ollama and the store, never markup.

/** h('div', {class: 'x', onclick: f}, child, 'text', [more]) -> an element. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'style' && typeof value === 'object') Object.assign(node.style, value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the children of `node` (an element or its id). */
export function fill(node, ...children) {
  const target = typeof node === 'string' ? document.getElementById(node) : node;
  target.replaceChildren();
  append(target, children);
  return target;
}

/** A colour for a model name, the same on every bar and chart. */
export function colourFor(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `var(--model-${hash % 8})`;
}

/** Read a CSS custom property's value (for the charts, which draw on a canvas). */
export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** A model name with line-break opportunities after ':', '-', '/' and '.', so that a narrow column
 * wraps "llama3.1:8b-" / "instruct" rather than mid-word. */
export function breakable(name) {
  const out = [];
  let piece = '';
  for (const ch of name) {
    piece += ch;
    if (':-/.'.includes(ch)) {
      out.push(piece, document.createElement('wbr'));
      piece = '';
    }
  }
  if (piece) out.push(piece);
  return out;
}
