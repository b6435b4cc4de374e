// @ts-check
/**
 * A badge in the top bar and the popover it opens: a heading and a close button on top, closed by
 * that button, Escape, the badge again, or a click anywhere else. `aria-expanded` on the badge
 * follows it. The owner appends its content after the head.
 */

import { button, element } from "./dom.js";

export class Popover {
  #badge;
  #panel;
  #onOpen;
  #onClose;

  /**
   * @param {HTMLButtonElement} badge
   * @param {HTMLElement} panel
   * @param {{title: string, headingId: string, closeLabel: string, controls?: HTMLElement[],
   *          onOpen(): void, onClose(): void}} options
   *   controls: buttons between the heading and the close button; onOpen: it was opened;
   *   onClose: it was closed by its button or Escape (give the terminal its focus back)
   */
  constructor(badge, panel, { title, headingId, closeLabel, controls = [], onOpen, onClose }) {
    this.#badge = badge;
    this.#panel = panel;
    this.#onOpen = onOpen;
    this.#onClose = onClose;

    const head = element("div", "panel-head");
    const heading = element("h2", "", title);
    heading.id = headingId;
    panel.setAttribute("aria-labelledby", heading.id);
    const close = button("panel-close", "×");
    close.setAttribute("aria-label", closeLabel);
    head.append(heading, ...controls, close);
    panel.append(head);

    badge.addEventListener("click", () => (this.open ? this.close(true) : this.#show()));
    close.addEventListener("click", () => this.close(true));
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.close(true);
      }
    });
    // A click anywhere else (the terminal, most often) closes it; the click moves the focus itself.
    document.addEventListener(
      "pointerdown",
      (event) => {
        const target = /** @type {Node} */ (event.target);
        if (this.open && !panel.contains(target) && !badge.contains(target)) this.close(false);
      },
      true,
    );
  }

  get open() {
    return !this.#panel.hidden;
  }

  /** @param {boolean} refocus give the terminal its focus back (not when a click moves it anyway) */
  close(refocus) {
    if (!this.open) return;
    this.#panel.hidden = true;
    this.#badge.setAttribute("aria-expanded", "false");
    if (refocus) this.#onClose();
  }

  #show() {
    this.#panel.hidden = false;
    this.#badge.setAttribute("aria-expanded", "true");
    this.#onOpen();
  }
}
