// @ts-check
/**
 * Per-agent model choice: a compact `<select>` beside each agent's launcher in the setup panel,
 * listing the workspace's chat endpoints of that agent's API family.
 *
 * Data: GET /api/models, fetched when the panel opens and, while it stays open, at most once a
 * minute. A change is PUT /api/agents/{id}/model, which rewrites that agent's config: windows
 * started afterwards use the new model, running ones keep theirs. Without a workspace (503) there
 * are no selects, only a muted note.
 *
 * Agents the `mlflow` package can trace (Claude Code) also get a "trace" switch: PUT
 * /api/agents/{id}/tracing traces their sessions to the owner's MLflow experiment, or stops; when
 * it is wanted but cannot be on, the switch is marked and its tooltip says why.
 */

import { ApiError, request } from "./api.js";
import { element } from "./dom.js";

/** While the panel stays open, the list is fetched again at most this often. */
const REFRESH_MS = 60_000;
/** Opening the panel twice in a row does not list the workspace's endpoints twice. */
const REOPEN_MS = 5_000;
const NO_WORKSPACE_NOTE = "models: no workspace configured";

/**
 * @typedef {{available: boolean, wanted: boolean, on: boolean, experiment: string, reason: string}} Tracing
 * @typedef {{title: string, family: string, model: string, tracing: Tracing}} AgentModel
 * @typedef {{families: Record<string, string[]>, agents: Record<string, AgentModel>}} ModelsInfo
 * @typedef {{show(message: string): void}} Toast
 * @typedef {{slot: HTMLElement, title: string, select: HTMLSelectElement | null, trace: HTMLInputElement | null}} Slot
 */

/** @returns {Promise<ModelsInfo>} */
export async function fetchModels() {
  return normalise(await (await request("/api/models")).json());
}

/**
 * Makes `model` the agent's model for the windows started from now on.
 * @param {string} agent
 * @param {string} model
 */
export async function chooseModel(agent, model) {
  await request(`/api/agents/${encodeURIComponent(agent)}/model`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model }),
  });
}

/**
 * Traces the agent's sessions to MLflow from its next window on (or stops); answers what is now so.
 * @param {string} agent
 * @param {boolean} on
 * @returns {Promise<Tracing>}
 */
export async function switchTracing(agent, on) {
  const response = await request(`/api/agents/${encodeURIComponent(agent)}/tracing`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ on }),
  });
  return tracingOf((await response.json())?.tracing);
}

/**
 * @param {any} raw
 * @returns {Tracing}
 */
function tracingOf(raw) {
  return {
    available: raw?.available === true,
    wanted: raw?.wanted === true,
    on: raw?.on === true,
    experiment: String(raw?.experiment ?? ""),
    reason: String(raw?.reason ?? ""),
  };
}

/**
 * @param {any} data
 * @returns {ModelsInfo}
 */
function normalise(data) {
  /** @type {Record<string, string[]>} */
  const families = {};
  for (const [family, names] of Object.entries(data?.families ?? {})) {
    if (Array.isArray(names)) families[family] = names.map(String);
  }
  /** @type {Record<string, AgentModel>} */
  const agents = {};
  for (const [id, agent] of Object.entries(data?.agents ?? {})) {
    const info = /** @type {any} */ (agent);
    agents[id] = {
      title: String(info?.title || id),
      family: String(info?.family ?? ""),
      model: String(info?.model ?? ""),
      tracing: tracingOf(info?.tracing),
    };
  }
  return { families, agents };
}

/**
 * The selects, one per launcher slot, and the note shown instead of them when no list can be had.
 * Slots are handed out by the step list as launchers appear; they fill in when data arrives.
 */
export class ModelChoices {
  #toast;
  /** @type {ModelsInfo | null} */
  #data = null;
  /** What to say instead of selects when there is no data; "" while there is, or none yet. */
  #problem = "";
  #fetchedAt = -Infinity;
  /** @type {Promise<void> | null} */
  #inFlight = null;
  /** @type {Map<string, Slot>} */
  #slots = new Map();
  /** Agents whose PUT is under way: their select is left alone until it answers. */
  #saving = new Set();
  #note;

  /** @param {Toast} toast where confirmations and errors go */
  constructor(toast) {
    this.#toast = toast;
    this.#note = element("p", "models-note");
    this.#note.hidden = true;
  }

  /** The muted note ("models: no workspace configured"), for the caller to place. */
  get note() {
    return this.#note;
  }

  /**
   * The element that holds `agent`'s select, beside its launcher; created on first ask.
   * @param {string} agent
   * @param {string} title the agent's name, for the label and messages
   */
  slot(agent, title) {
    let entry = this.#slots.get(agent);
    if (!entry) {
      const slot = element("span", "model-slot");
      entry = { slot, title, select: null, trace: null };
      this.#slots.set(agent, entry);
      this.#renderSlot(agent, entry);
    }
    return entry.slot;
  }

  /** The launcher is gone: forget its slot. @param {string} agent */
  release(agent) {
    this.#slots.get(agent)?.slot.remove();
    this.#slots.delete(agent);
  }

  /** The panel opened: list the endpoints now (unless that was just done). */
  opened() {
    return this.#refresh(REOPEN_MS);
  }

  /** The panel is open: list the endpoints again if the last list is a minute old. */
  refreshIfStale() {
    return this.#refresh(REFRESH_MS);
  }

  /** @param {number} maxAgeMs */
  #refresh(maxAgeMs) {
    if (this.#inFlight) return this.#inFlight;
    if (performance.now() - this.#fetchedAt < maxAgeMs) return Promise.resolve();
    this.#inFlight = this.#load().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  async #load() {
    try {
      this.#data = await fetchModels();
      this.#problem = "";
    } catch (error) {
      const status = error instanceof ApiError ? error.status : 0;
      if (status === 503) {
        // No workspace (local mode without DATABRICKS_HOST/TOKEN): nothing to choose from.
        this.#data = null;
        this.#problem = NO_WORKSPACE_NOTE;
        this.#note.title = /** @type {Error} */ (error).message;
      } else if (!this.#data) {
        // The workspace or the gateway failed: keep what was shown before, if anything.
        this.#problem = "models: could not list the workspace's endpoints";
        this.#note.title = /** @type {Error} */ (error).message;
      }
    } finally {
      this.#fetchedAt = performance.now();
    }
    this.#render();
  }

  #render() {
    const problem = this.#data ? "" : this.#problem;
    if (this.#note.textContent !== problem) this.#note.textContent = problem;
    this.#note.hidden = !problem;
    for (const [agent, entry] of this.#slots) this.#renderSlot(agent, entry);
  }

  /**
   * @param {string} agent
   * @param {Slot} entry
   */
  #renderSlot(agent, entry) {
    if (this.#saving.has(agent)) return;
    const info = this.#data?.agents[agent];
    this.#renderTrace(agent, entry, info);
    if (!info || !info.model) {
      entry.select?.remove();
      entry.select = null;
      return;
    }
    const names = this.#data?.families[info.family] ?? [];
    // The current model stays choosable (and visibly so) even when the workspace does not list it.
    const options = names.includes(info.model) ? names : [info.model, ...names];
    const key = JSON.stringify([info.model, options]);
    let select = entry.select;
    if (!select) {
      select = document.createElement("select");
      select.className = "model-select";
      select.dataset.agent = agent;
      select.setAttribute("aria-label", `Model for ${entry.title}`);
      select.addEventListener("change", () => this.#choose(agent));
      entry.select = select;
      entry.slot.prepend(select); // before the "trace" switch, if any
    }
    select.title = `${entry.title} uses ${info.model} in new windows`;
    if (select.dataset.key === key) {
      if (select.value !== info.model) select.value = info.model;
      return;
    }
    select.dataset.key = key;
    select.replaceChildren(
      ...options.map((name) => {
        const listed = names.includes(name);
        const option = new Option(listed ? name : `${name} (not listed)`, name);
        if (!listed) {
          option.dataset.unlisted = "";
          option.title = "The workspace does not list this endpoint as a ready chat model";
        }
        return option;
      }),
    );
    select.value = info.model;
  }

  /**
   * The "trace" switch: checked while tracing is wanted; marked when wanted but not on.
   * @param {string} agent
   * @param {Slot} entry
   * @param {AgentModel | undefined} info
   */
  #renderTrace(agent, entry, info) {
    if (!info?.tracing.available) {
      entry.trace?.parentElement?.remove();
      entry.trace = null;
      return;
    }
    let trace = entry.trace;
    if (!trace) {
      trace = document.createElement("input");
      trace.type = "checkbox";
      trace.dataset.agent = agent;
      trace.setAttribute("aria-label", `Trace ${entry.title} to MLflow`);
      trace.addEventListener("change", () => this.#switchTrace(agent));
      const label = element("label", "trace-switch");
      label.append(trace, "trace");
      entry.trace = trace;
      entry.slot.append(label);
    }
    const { wanted, on, experiment, reason } = info.tracing;
    trace.checked = wanted;
    const label = /** @type {HTMLElement} */ (trace.parentElement);
    label.classList.toggle("trace-failed", wanted && !on && Boolean(reason));
    label.title = on
      ? `${entry.title}'s sessions are traced to the MLflow experiment ${experiment}`
      : wanted && reason
        ? `Tracing is off: ${reason}`
        : `Trace ${entry.title}'s sessions to MLflow (your experiment in the workspace)`;
  }

  /** @param {string} agent */
  async #switchTrace(agent) {
    const entry = this.#slots.get(agent);
    const info = this.#data?.agents[agent];
    const trace = entry?.trace;
    if (!entry || !info || !trace) return;
    const on = trace.checked;
    this.#saving.add(agent);
    trace.disabled = true;
    try {
      info.tracing = await switchTracing(agent, on);
      const { tracing } = info;
      this.#toast.show(
        !on
          ? `${entry.title}: MLflow tracing off`
          : tracing.on
            ? `${entry.title}: new windows trace to ${tracing.experiment}`
            : `${entry.title}: tracing could not start: ${tracing.reason}`,
      );
    } catch (error) {
      this.#toast.show(`Could not switch ${entry.title}'s tracing: ${/** @type {Error} */ (error).message}`);
    } finally {
      this.#saving.delete(agent);
      trace.disabled = false;
      this.#renderSlot(agent, entry);
    }
  }

  /** @param {string} agent */
  async #choose(agent) {
    const entry = this.#slots.get(agent);
    const info = this.#data?.agents[agent];
    const select = entry?.select;
    if (!entry || !info || !select) return;
    const previous = info.model;
    const model = select.value;
    if (model === previous) return;
    this.#saving.add(agent);
    const focused = document.activeElement === select;
    select.disabled = true; // one change at a time
    select.setAttribute("aria-busy", "true");
    try {
      await chooseModel(agent, model);
      info.model = model;
      this.#toast.show(`${entry.title} will use ${model} in new windows`);
    } catch (error) {
      select.value = previous;
      this.#toast.show(`Could not change ${entry.title}'s model: ${/** @type {Error} */ (error).message}`);
    } finally {
      this.#saving.delete(agent);
      select.disabled = false;
      select.removeAttribute("aria-busy");
      if (focused) select.focus(); // disabling it took the focus away
      this.#renderSlot(agent, entry);
    }
  }
}
