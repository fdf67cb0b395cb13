// Agents: the fleet as a server-paged table. Filters, status, sort and paging all live
// in the URL, so a view can be shared and Back walks through it; the status chips count
// what the filters match (from the API's count headers) and filter when pressed.

import {linkRows} from "../lib/row_link.js";
import {h} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {filterBar} from "../lib/filters.js";
import {offsetPager, pageSizeSelect} from "../lib/pager.js";
import {toggleGroup} from "../lib/toggle_group.js";
import {agentStatus, statusChip} from "../lib/agent_status.js";
import {formatBytes, formatPercent, timeElement} from "../lib/format.js";

export const title = "Agents";

const PAGE = {choices: [25, 50, 100, 200], fallback: 50};
const DEFAULT_SORT = {key: "updated_at", dir: "desc"};
// The API's sort columns; these are the sortable columns of the table.
const SORTS = new Set([
  "pc_id",
  "hostname",
  "os_family",
  "agent_version",
  "last_heartbeat",
  "last_logon_user",
  "updated_at",
]);
const STATUSES = new Set(["online", "offline"]);

export async function render(view) {
  const status = STATUSES.has(view.query.get("status")) ? view.query.get("status") : null;
  const sort = readSort(view.query);
  const limit = readLimit(view.query);
  const offset = Math.max(0, Number.parseInt(view.query.get("offset") ?? "0", 10) || 0);
  const filters = {
    q: view.query.get("q"),
    user: view.query.get("user"),
    version: view.query.get("version"),
    quarantined: view.query.get("quarantined"),
  };

  view.root.append(h("h1", {class: "page-title"}, "Agents"));
  view.root.append(await filtersForm(view));

  view.card("Agents", {
    className: "card-wide agents-card",
    load: () =>
      apiGet("/api/agents", {
        ...filters,
        status,
        limit,
        offset,
        sort: sort.key,
        dir: sort.dir,
      }),
    isEmpty: () => false, // the chips stay, so another status is one click away
    render(rows, body, {headers}) {
      const count = (name) => Number.parseInt(headers.get(name) ?? "0", 10);
      const online = count("X-Online-Count");
      const offline = count("X-Offline-Count");
      const total = count("X-Total-Count");
      const filtered = Object.values(filters).some(Boolean);
      body.append(
        h(
          "div",
          {class: "agents-bar"},
          toggleGroup({
            label: "Status",
            className: "status-chips",
            value: status ?? "",
            options: [
              {value: "", label: filtered ? "Matching" : "All", count: online + offline},
              {value: "online", label: "Online", count: online, tone: "ok"},
              {value: "offline", label: "Offline", count: offline, tone: "bad"},
            ],
            onChange: (value) => view.setQuery({status: value, offset: null}),
          }),
          h("span", {class: "agents-note muted"}, "Online: a heartbeat in the last 2 minutes."),
        ),
        agentTable(view, rows, sort, filtered || status),
        h(
          "div",
          {class: "card-foot pager-row"},
          offsetPager(view, {total, limit, count: rows.length}),
          pageSizeSelect(view, PAGE),
        ),
      );
    },
  });
}

// The version field suggests the versions the fleet runs; it still takes any pattern.
async function filtersForm(view) {
  const form = filterBar(view, [
    {name: "q", label: "PC or host name", type: "search", placeholder: "regex, e.g. ^sim-00"},
    {name: "user", label: "Last logon user", type: "search", placeholder: "regex"},
    {name: "version", label: "Agent version", type: "search", placeholder: "regex, e.g. ^0\\.43"},
    {name: "quarantined", label: "Quarantines version", placeholder: "exact version"},
  ]);
  try {
    const {data} = await apiGet("/api/agents/versions");
    const list = h(
      "datalist",
      {id: "agent-versions"},
      data
        .filter((v) => v.version)
        .map((v) => h("option", {value: v.version}, `${v.total} agents, ${v.active} online`)),
    );
    form.querySelector("input[name=version]").setAttribute("list", list.id);
    form.append(list);
  } catch {
    // Suggestions only: without them the field still filters.
  }
  return form;
}

function agentTable(view, rows, sort, filtered) {
  const detail = (row) => `/agents/${encodeURIComponent(row.pc_id)}`;
  const table = dataTable({
    caption: "Agents",
    sort,
    onSort: (key, dir) => view.setQuery({sort: key, dir, offset: null}),
    empty: filtered ? "No agents match these filters." : "No agents have reported yet.",
    rows,
    columns: [
      {
        key: "pc_id",
        label: "PC",
        sortable: true,
        className: "cell-strong",
        render: (a) => view.link(detail(a), a.pc_id),
      },
      {key: "hostname", label: "Host name", sortable: true},
      {key: "status", label: "Status", render: (a) => statusChip(agentStatus(a))},
      {key: "os_family", label: "OS", sortable: true},
      {key: "agent_version", label: "Version", sortable: true, render: versionCell},
      {
        key: "last_heartbeat",
        label: "Last heartbeat",
        sortable: true,
        defaultDir: "desc",
        render: (a) => timeElement(a.last_heartbeat),
      },
      {key: "last_logon_user", label: "Last logon", sortable: true, render: logonCell},
      {key: "agent_cpu_pct", label: "Agent CPU", align: "right", render: (a) => formatPercent(a.agent_cpu_pct)},
      {key: "agent_rss_bytes", label: "Agent memory", align: "right", render: (a) => formatBytes(a.agent_rss_bytes)},
      {
        key: "updated_at",
        label: "Updated",
        sortable: true,
        defaultDir: "desc",
        render: (a) => timeElement(a.updated_at),
      },
    ],
  });
  return linkRows(view, table, rows, detail);
}

function versionCell(agent) {
  const quarantined = agent.quarantined_versions ?? [];
  if (!agent.agent_version && !quarantined.length) return null;
  return h(
    "span",
    {class: "version-cell"},
    agent.agent_version ?? "—",
    quarantined.length
      ? h(
          "span",
          {class: "chip chip-warn", title: `Refuses to update to ${quarantined.join(", ")}`},
          `${quarantined.length} quarantined`,
        )
      : null,
  );
}

function logonCell(agent) {
  if (!agent.last_logon_user) return null;
  const name = agent.last_logon_display_name;
  return h("span", {title: name ? `${name} (${agent.last_logon_user})` : null}, agent.last_logon_user);
}

function readSort(query) {
  const key = query.get("sort");
  if (!SORTS.has(key)) return DEFAULT_SORT;
  const dir = query.get("dir");
  // The API's default direction: desc for updated_at, else asc.
  return {key, dir: dir === "asc" || dir === "desc" ? dir : key === "updated_at" ? "desc" : "asc"};
}

function readLimit(query) {
  const asked = Number.parseInt(query.get("limit") ?? "", 10);
  return PAGE.choices.includes(asked) ? asked : PAGE.fallback;
}
