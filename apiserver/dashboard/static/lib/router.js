// History routing: route patterns with :params, in-app navigation without reloads, and
// interception of plain clicks on same-origin links so ordinary <a href> elements route.

const listeners = new Set();

/** Compile "/agents/:pcId" to a matcher: path -> params object (URI-decoded) or null. */
export function compileRoute(pattern) {
  const names = [];
  const source = pattern
    .split("/")
    .map((part) => {
      if (!part.startsWith(":")) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      names.push(part.slice(1));
      return "([^/]+)";
    })
    .join("/");
  const regex = new RegExp(`^${source}/?$`);
  return (path) => {
    const m = regex.exec(path);
    if (!m) return null;
    const params = {};
    names.forEach((name, i) => {
      try {
        params[name] = decodeURIComponent(m[i + 1]);
      } catch {
        params[name] = m[i + 1];
      }
    });
    return params;
  };
}

/** The first route whose `path` matches pathname: {route, params}, or null. */
export function matchRoute(routes, pathname) {
  for (const route of routes) {
    route.match ??= compileRoute(route.path);
    const params = route.match(pathname);
    if (params) return {route, params};
  }
  return null;
}

/** The current path with its query, e.g. "/agents?status=offline". */
export function currentPath() {
  return location.pathname + location.search;
}

/** Go to an in-app URL: push a history entry (or replace it) and notify the app. */
export function navigate(to, {replace = false} = {}) {
  if (to === currentPath()) replace = true;
  history[replace ? "replaceState" : "pushState"](null, "", to);
  notify();
}

/** Call onChange(location) now and after every navigation (links, Back/Forward, navigate()). */
export function startRouter(onChange) {
  listeners.add(onChange);
  window.addEventListener("popstate", notify);
  document.addEventListener("click", interceptClick);
  onChange(location);
}

function notify() {
  for (const listener of listeners) listener(location);
}

// Leave alone what the browser should handle: modified clicks (new tab), targets,
// downloads, other origins and server paths (API, assets).
function interceptClick(event) {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest?.("a[href]");
  if (!a || (a.target && a.target !== "_self") || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/assets/")) return;
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash);
}
