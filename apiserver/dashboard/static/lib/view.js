// The page context: what a page module may use to build itself (see the page contract).
// Cards own their loading, empty, error and refresh states, so pages only say how to
// load data and how to draw it.

import {h, clear} from "./dom.js";
import {navigate} from "./router.js";

/** Seconds between automatic refreshes of every card. */
export const REFRESH_SECONDS = 30;

/**
 * Make the view for one render of a page.
 * root: the (empty) page element; params: route params; onLoaded(date): called after
 * each successful card load (the header's "updated" time).
 * Returns the view; call view.dispose() before rendering the next page.
 */
export function createView({root, params = {}, onLoaded = () => {}}) {
  const cards = [];
  let disposed = false;
  const timer = setInterval(() => {
    if (!document.hidden) view.refresh();
  }, REFRESH_SECONDS * 1000);

  const view = {
    root,
    params,
    query: new URLSearchParams(location.search),

    /** Merge updates into the URL query (null/"" deletes), push (or replace) and re-render. */
    setQuery(updates, {replace = false} = {}) {
      const query = new URLSearchParams(location.search);
      for (const [key, value] of Object.entries(updates)) {
        if (value === null || value === undefined || value === "") query.delete(key);
        else query.set(key, String(value));
      }
      const qs = query.toString();
      navigate(location.pathname + (qs ? `?${qs}` : ""), {replace});
    },

    /**
     * Append a card: card(title, {load, render, isEmpty, emptyText, className}) -> element.
     * load(): async; an apiGet result {data, headers} is unwrapped, so render(data, bodyEl,
     * {headers}) gets the JSON body; any other value is passed as data (headers null).
     * isEmpty(data) (default: null or []) shows emptyText. Errors show a Retry button.
     */
    card(title, options = {}) {
      const c = makeCard(title, options, () => !disposed, onLoaded);
      cards.push(c);
      root.append(c.el);
      c.load();
      return c.el;
    },

    /** An <a> that routes inside the app (a real href, so open-in-new-tab works). */
    link(path, label) {
      return h("a", {href: path}, label ?? path);
    },

    /** Go to an in-app path (push, or replace). */
    navigate(path, {replace = false} = {}) {
      navigate(path, {replace});
    },

    /** Reload every card now; resolves when all have settled. */
    refresh() {
      return Promise.all(cards.map((c) => c.load()));
    },

    /** Stop refreshing; late answers of this view's cards are dropped. */
    dispose() {
      disposed = true;
      clearInterval(timer);
    },
  };
  return view;
}

function makeCard(title, options, alive, onLoaded) {
  const {load, render, isEmpty = defaultEmpty, emptyText = "Nothing to show.", className} =
    options;
  const status = h("span", {class: "card-status", "aria-live": "polite"});
  const body = h("div", {class: "card-body"});
  const heading = title ? h("header", {class: "card-head"}, h("h2", null, title), status) : null;
  const el = h("section", {class: ["card", className].filter(Boolean).join(" ")}, heading, body);
  let seq = 0;
  let shown = false; // whether body holds rendered data (kept while a refresh loads)

  function state(kind, ...children) {
    clear(body).append(h("div", {class: `card-state card-${kind}`}, ...children));
  }

  async function run() {
    const mine = ++seq;
    el.setAttribute("aria-busy", "true");
    if (!shown) state("loading", "Loading…");
    try {
      const {data, headers} = unwrap(await load());
      if (mine !== seq || !alive()) return;
      if (isEmpty(data)) {
        state("empty", emptyText);
        shown = false;
      } else {
        clear(body);
        await render(data, body, {headers});
        shown = true;
      }
      onLoaded(new Date());
    } catch (err) {
      if (mine !== seq || !alive()) return;
      shown = false;
      const retry = h("button", {type: "button", class: "btn btn-small", onClick: () => run()}, "Retry");
      state("error", h("span", {role: "alert"}, err?.message ?? String(err)), " ", retry);
    } finally {
      if (mine === seq) el.removeAttribute("aria-busy");
    }
  }
  return {el, load: run};
}

// load() may return apiGet's {data, headers} (unwrapped: render gets data, meta.headers)
// or any other value (passed through as data).
function unwrap(loaded) {
  if (loaded && typeof loaded === "object" && loaded.headers instanceof Headers) {
    return {data: loaded.data, headers: loaded.headers};
  }
  return {data: loaded, headers: null};
}

function defaultEmpty(data) {
  return data === null || data === undefined || (Array.isArray(data) && data.length === 0);
}
