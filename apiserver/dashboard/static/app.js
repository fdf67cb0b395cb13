// The dashboard's entry: the routes table, the frame (header, nav, user, refresh) and the
// render loop that gives each page module a fresh view.

import {h, clear} from "./lib/dom.js";
import {apiGet, apiPost, UNAUTHORIZED_EVENT} from "./lib/api.js";
import {currentPath, matchRoute, navigate, startRouter} from "./lib/router.js";
import {createView} from "./lib/view.js";
import {formatClock} from "./lib/format.js";

// page: the module under pages/; nav: the menu entry it highlights; bare: no frame.
export const ROUTES = [
  {path: "/login", page: "login", bare: true},
  {path: "/", page: "dashboard", nav: "/dashboard"},
  {path: "/dashboard", page: "dashboard", nav: "/dashboard"},
  {path: "/agents", page: "agents", nav: "/agents"},
  {path: "/agents/:pcId", page: "agent_detail", nav: "/agents"},
  {path: "/activity", page: "activity", nav: "/activity"},
  {path: "/activity/:resultId", page: "result_detail", nav: "/activity"},
  {path: "/results", redirect: "/activity"},
  {path: "/executions", page: "executions", nav: "/executions"},
  {path: "/events", page: "events", nav: "/events"},
  {path: "/audit", page: "audit", nav: "/audit"},
  {path: "/schedules", page: "schedules", nav: "/schedules"},
  {path: "/schedules/:id", page: "schedule_detail", nav: "/schedules"},
  {path: "/jobs", page: "jobs", nav: "/jobs"},
  {path: "/projector", page: "projector", nav: "/projector"},
  {path: "/jetstream", page: "jetstream", nav: "/jetstream"},
];

const NAV = [
  ["/dashboard", "Dashboard"],
  ["/agents", "Agents"],
  ["/activity", "Activity"],
  ["/executions", "Executions"],
  ["/events", "Events"],
  ["/audit", "Audit"],
  ["/schedules", "Schedules"],
  ["/jobs", "Jobs"],
  ["/projector", "Projector"],
  ["/jetstream", "JetStream"],
];

const state = {view: null, user: null, seq: 0};
const ui = buildFrame();
document.getElementById("app").replaceChildren(ui.shell);

window.addEventListener(UNAUTHORIZED_EVENT, () => {
  state.user = null;
  if (location.pathname === "/login") return;
  navigate(`/login?next=${encodeURIComponent(currentPath())}`, {replace: true});
});

startRouter(() => show());

function buildFrame() {
  const links = NAV.map(([path, label]) => h("a", {href: path, class: "nav-link", dataset: {nav: path}}, label));
  const nav = h("nav", {id: "main-nav", class: "nav", "aria-label": "Main"}, links);
  const menu = h(
    "button",
    {type: "button", class: "menu-button", "aria-controls": "main-nav", "aria-expanded": "false"},
    "Menu",
  );
  menu.addEventListener("click", () => {
    const open = menu.getAttribute("aria-expanded") !== "true";
    menu.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
  const user = h("span", {class: "user"});
  const updated = h("span", {class: "updated", "aria-live": "off"});
  const refresh = h(
    "button",
    {type: "button", class: "btn btn-header", onClick: () => state.view?.refresh()},
    "Refresh",
  );
  const logout = h("button", {type: "button", class: "btn btn-header", onClick: logOut}, "Log out");
  const header = h(
    "header",
    {class: "topbar"},
    h("a", {href: "/dashboard", class: "brand"}, "kanade"),
    menu,
    nav,
    h("div", {class: "session"}, updated, refresh, user, logout),
  );
  const main = h("main", {id: "main", class: "page", tabindex: "-1"});
  const shell = h("div", {class: "shell"}, header, main);
  return {shell, header, nav, menu, user, updated, main};
}

async function logOut() {
  try {
    await apiPost("/api/auth/logout");
  } finally {
    state.user = null;
    navigate("/login", {replace: true});
  }
}

async function loadUser() {
  try {
    const {data} = await apiGet("/api/auth/me");
    state.user = data;
    ui.user.textContent = data.username;
    ui.user.title = `Signed in as ${data.username} (${data.role})`;
  } catch {
    // A 401 has already sent us to the login page; other errors leave the name blank.
  }
}

async function show() {
  const seq = ++state.seq;
  state.view?.dispose();
  state.view = null;
  const found = matchRoute(ROUTES, location.pathname);
  if (found?.route.redirect) {
    navigate(found.route.redirect + location.search, {replace: true});
    return;
  }
  const route = found?.route ?? {page: "not_found"};
  const bare = Boolean(route.bare);
  ui.header.hidden = bare;
  ui.shell.classList.toggle("bare", bare);
  ui.nav.classList.remove("open");
  ui.menu.setAttribute("aria-expanded", "false");
  for (const link of ui.nav.querySelectorAll("a")) {
    const active = link.dataset.nav === route.nav;
    link.classList.toggle("active", active);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!bare && !state.user) loadUser();

  const root = clear(ui.main);
  let module;
  try {
    module = await import(`./pages/${route.page}.js`);
  } catch (err) {
    if (seq !== state.seq) return;
    root.append(h("div", {class: "card card-error", role: "alert"}, `This page failed to load: ${err.message}`));
    return;
  }
  if (seq !== state.seq) return;
  document.title = `${module.title} · kanade`;
  const view = createView({
    root,
    params: found?.params ?? {},
    onLoaded: (date) => {
      ui.updated.textContent = `updated ${formatClock(date)}`;
    },
  });
  state.view = view;
  try {
    await module.render(view);
  } catch (err) {
    if (seq !== state.seq) return;
    console.error(err); // a page bug: fail the page, keep the frame usable
    root.append(h("div", {class: "card card-error", role: "alert"}, `This page failed: ${err.message}`));
  }
}
