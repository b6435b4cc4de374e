// @ts-check
/**
 * Small DOM and storage helpers the page's views share.
 */

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A button of type "button" (not "submit"), as every button on this page is.
 * @param {string} className
 * @param {string} [text]
 */
export function button(className, text) {
  const node = document.createElement("button");
  node.type = "button";
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Writes only on change: views update every second and must not disturb a selection (copying an
 * error) or assistive technology.
 * @param {HTMLElement} node
 * @param {string} text
 */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * setText, and the node hidden while the text is empty.
 * @param {HTMLElement} node
 * @param {string} text
 */
export function showText(node, text) {
  setText(node, text);
  node.hidden = !text;
}

/**
 * The element with `id`, which the page's HTML always has (a missing one is a bug worth an error).
 * @param {string} id
 */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

/**
 * The element under `root` matching `selector`, which the page's HTML always has.
 * @param {ParentNode} root
 * @param {string} selector
 */
export function find(root, selector) {
  const node = root.querySelector(selector);
  if (!(node instanceof HTMLElement)) throw new Error(`the page has no ${selector}`);
  return node;
}

/**
 * A flag remembered for this tab only (sessionStorage).
 * @param {string} key
 */
export function readTabFlag(key) {
  try {
    return sessionStorage.getItem(key) === "1";
  } catch {
    return false; // storage disabled: just not remembered
  }
}

/**
 * @param {string} key
 * @param {boolean} [value]
 */
export function writeTabFlag(key, value = true) {
  try {
    if (value) sessionStorage.setItem(key, "1");
    else sessionStorage.removeItem(key);
  } catch {
    // storage disabled: just not remembered
  }
}
