// Result detail: one command result. Its status, exit code and timings, where it ran and
// for which execution (and the schedule that fired it, when the record says so), its
// finalize-hook runs, and the full stdout and stderr. An unknown id gets a "not found"
// page. (Output an agent sent through the object store arrives here already inlined.)

import {detailLoader} from "../lib/detail_loader.js";
import {h} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {coverageBar} from "../lib/coverage_bar.js";
import {loadOnce} from "../lib/load_once.js";
import {execChip} from "../lib/execution_status.js";
import {exitText, runChip, runState} from "../lib/run_status.js";
import {formatBytes, formatDuration, formatNumber, formatUtc, timeElement} from "../lib/format.js";

export const title = "Result";

// Characters of one output shown at first; the rest on request (a huge <pre> is slow).
const SHOWN_CHARS = 200_000;
// Schedules searched for the fire that started an execution, and fires read of each.
const SCHEDULES_SEARCHED = 5;
const FIRES_READ = 1000;

export async function render(view) {
  const resultId = view.params.resultId;
  const path = `/api/results/${encodeURIComponent(resultId)}`;

  const loadFirst = await detailLoader(view, path, {
    title: "Result not found",
    lead: "No command result has the id",
    id: resultId,
    why: "It may have been removed by retention, or the id is mistyped.",
    back: ["/activity", "Back to Activity"],
  });
  if (loadFirst === null) return;
  document.title = `Result ${resultId.slice(0, 8)} · Activity · kanade`;

  // Every card shows the same row: one request per refresh, shared by the cards.
  const loadResult = loadOnce(loadFirst);

  const head = pageHead(view, resultId);
  view.root.append(head.el);
  const runCard = view.card(null, {
    className: "card-wide result-card",
    load: loadResult,
    render(result, body) {
      head.show(result);
      body.append(runFacts(view, result));
    },
  });
  runCard.setAttribute("aria-label", "Run");
  executionCard(view, loadResult);
  outputCard(view, "stdout", "Stdout", loadResult);
  outputCard(view, "stderr", "Stderr", loadResult);
}

// --------------------------------------------------------------------------- head

function pageHead(view, resultId) {
  const status = h("span", {class: "detail-status"});
  const sub = h("p", {class: "detail-sub muted"});
  const el = h(
    "div",
    {class: "detail-head"},
    h(
      "div",
      {class: "detail-heading"},
      h("nav", {class: "breadcrumb", "aria-label": "Breadcrumb"}, view.link("/activity", "Activity"), " / "),
      h(
        "div",
        {class: "detail-title"},
        h("h1", {class: "page-title"}, "Result ", h("span", {class: "mono", title: resultId}, resultId.slice(0, 8))),
        status,
      ),
      sub,
    ),
  );
  return {
    el,
    show(result) {
      status.replaceChildren(runChip(result));
      const job = result.job_id ? `${result.job_id}${result.version ? ` ${result.version}` : ""}` : "a job";
      const when = result.started_at ? ` · started ${formatUtc(result.started_at)}` : "";
      sub.replaceChildren(`${job} on ${result.pc_id}${when}`);
    },
  };
}

// --------------------------------------------------------------------------- the run

function runFacts(view, r) {
  const state = runState(r);
  const facts = [
    ["Status", h("span", {class: "status-line"}, runChip(r), stateWords(r, state))],
    ["Exit code", r.exit_code === null ? h("span", {class: "muted"}, "none yet") : h("span", {class: "mono"}, String(r.exit_code))],
    ["PC", view.link(`/agents/${encodeURIComponent(r.pc_id)}`, r.pc_id)],
    ["Job", r.job_id ? view.link(`/jobs?job=${encodeURIComponent(r.job_id)}`, r.job_id) : null],
    ["Version", r.version],
    ["Started", when(r.started_at)],
    ["Finished", r.finished_at ? when(r.finished_at) : h("span", {class: "muted"}, state === "running" ? "still running" : "—")],
    ["Duration", duration(r)],
    ["Execution", r.exec_id ? execLink(view, r.exec_id) : h("span", {class: "muted"}, "none (ad-hoc run)")],
    ["Result id", h("code", {class: "id-text"}, r.result_id)],
    ["Request id", h("code", {class: "id-text"}, r.request_id)],
  ];
  if (r.parent_result_id) {
    facts.push(["Finalize hook of", resultLink(view, r.parent_result_id)]);
  }
  const grid = h(
    "dl",
    {class: "fact-grid"},
    facts.map(([term, value]) =>
      h("div", {class: "fact"}, h("dt", null, term), h("dd", null, value ?? h("span", {class: "muted"}, "—"))),
    ),
  );
  const children = r.finalize_children ?? [];
  if (!children.length) return grid;
  return h(
    "div",
    null,
    grid,
    h("h3", {class: "sub-head"}, `Finalize hooks (${children.length})`),
    dataTable({
      caption: "Finalize-hook runs of this result",
      rows: children,
      columns: [
        {key: "result_id", label: "Result", className: "cell-mono", render: (c) => resultLink(view, c.result_id)},
        {key: "job_id", label: "Job"},
        {key: "status", label: "Status", render: (c) => runChip({...c, skipped: false, reaped: false})},
        {key: "finished_at", label: "Finished", render: (c) => timeElement(c.finished_at)},
      ],
    }),
  );
}

// Words beside the chip only where they add something: why it was skipped or failed.
function stateWords(r, state) {
  if (state === "running") return h("span", {class: "muted"}, "no result yet");
  const words = exitText(r);
  return words.includes(":") ? h("span", {class: "muted"}, words.split(": ")[1]) : null;
}

function when(iso) {
  if (!iso) return null;
  return h("span", {class: "two-line"}, formatUtc(iso), h("span", {class: "sub"}, timeElement(iso)));
}

function duration(r) {
  if (!r.started_at) return null;
  if (!r.finished_at) return `${formatDuration(Date.now() - Date.parse(r.started_at))} so far`;
  return formatDuration(Date.parse(r.finished_at) - Date.parse(r.started_at));
}

function execLink(view, execId) {
  const a = view.link(`/activity?exec_id=${encodeURIComponent(execId)}`, execId);
  a.className = "id-text";
  a.title = "Every result of this execution";
  return a;
}

function resultLink(view, resultId) {
  const a = view.link(`/activity/${encodeURIComponent(resultId)}`, resultId.slice(0, 8));
  a.title = resultId;
  a.className = "mono";
  return a;
}

// --------------------------------------------------------------------------- execution

function executionCard(view, loadResult) {
  // Which schedule fired an execution never changes: found once, kept across refreshes.
  const firedBy = new Map();
  view.card("Execution", {
    className: "card-wide execution-card",
    async load() {
      const {data: result} = await loadResult();
      if (!result.exec_id) return {result, execution: null};
      let detail;
      try {
        ({data: detail} = await apiGet(`/api/executions/${encodeURIComponent(result.exec_id)}`));
      } catch (err) {
        if (err.status === 404) return {result, execution: null, missing: true};
        throw err;
      }
      let fired = firedBy.get(result.exec_id);
      if (!fired) {
        try {
          fired = await findFire(detail.execution);
          firedBy.set(result.exec_id, fired);
        } catch {
          fired = null; // the schedule is a hint: the rest of the card stands without it
        }
      }
      return {result, execution: detail.execution, results: detail.results, fired};
    },
    render(data, body) {
      if (!data.execution) {
        body.append(
          h(
            "p",
            {class: "card-state"},
            data.missing
              ? `Execution ${data.result.exec_id} is not on record (removed by retention, or dispatched elsewhere).`
              : "An ad-hoc run: not part of an execution.",
          ),
        );
        return;
      }
      body.append(executionFacts(view, data));
    },
  });
}

// The API does not say which schedule fired an execution: look for the fire among the
// recorded decisions of the (few) schedules that run the same job.
async function findFire(execution) {
  if (execution.initiated_by !== "scheduler") return {candidates: []};
  const {data: schedules} = await apiGet("/api/schedules");
  const candidates = schedules.filter((s) => s.job_id === execution.job_id).map((s) => s.id);
  for (const id of candidates.slice(0, SCHEDULES_SEARCHED)) {
    const {data: fires} = await apiGet(`/api/schedules/${encodeURIComponent(id)}/fires`, {limit: FIRES_READ});
    const fire = fires.find((f) => f.exec_id === execution.exec_id);
    if (fire) return {schedule: id, fire, candidates};
  }
  return {candidates};
}

function executionFacts(view, {execution: e, results, fired}) {
  const running = results.filter((r) => !r.finished_at).length;
  const counts = {
    total: e.target_count,
    ok: e.success_count,
    fail: e.failure_count,
    running,
    pending: Math.max(0, e.target_count - e.success_count - e.failure_count - running),
  };
  const facts = [
    ["Execution", h("code", {class: "id-text"}, e.exec_id)],
    ["Job", h("span", null, view.link(`/jobs?job=${encodeURIComponent(e.job_id)}`, e.job_id), ` ${e.version}`)],
    ["Status", execChip(e.status)],
    ["Initiated", h("span", {class: "two-line"}, `${formatUtc(e.initiated_at)} by ${e.initiated_by}`, h("span", {class: "sub"}, timeElement(e.initiated_at)))],
    ["Schedule", scheduleFact(view, e, fired)],
    ["Targets", `${formatNumber(e.target_count)} PC${e.target_count === 1 ? "" : "s"}`],
  ];
  return h(
    "div",
    {class: "execution-facts"},
    h(
      "dl",
      {class: "fact-grid"},
      facts.map(([term, value]) =>
        h("div", {class: "fact"}, h("dt", null, term), h("dd", null, value ?? h("span", {class: "muted"}, "—"))),
      ),
    ),
    h("div", {class: "execution-progress"}, coverageBar(counts, {name: "Progress"})),
    h(
      "p",
      {class: "card-foot link-list"},
      view.link(`/activity?exec_id=${encodeURIComponent(e.exec_id)}`, `All ${formatNumber(results.length)} results of this execution`),
      view.link(`/executions?job_id=${encodeURIComponent(e.job_id)}`, `Executions of ${e.job_id}`),
    ),
  );
}

function scheduleFact(view, e, fired) {
  if (fired?.schedule) {
    return h(
      "span",
      null,
      view.link(`/schedules/${encodeURIComponent(fired.schedule)}`, fired.schedule),
      h("span", {class: "muted"}, `, fire due ${formatUtc(fired.fire.due_at)}`),
    );
  }
  if (e.initiated_by !== "scheduler") return h("span", {class: "muted"}, `none (started by ${e.initiated_by})`);
  if (!fired) return h("span", {class: "muted"}, "unknown (the schedules could not be read)");
  if (!fired.candidates.length) return h("span", {class: "muted"}, "not recorded (no schedule runs this job now)");
  return h(
    "span",
    null,
    h("span", {class: "muted"}, "not found among the fires of "),
    fired.candidates.map((id, i) => [i ? ", " : "", view.link(`/schedules/${encodeURIComponent(id)}`, id)]),
  );
}

// --------------------------------------------------------------------------- output

function outputCard(view, key, label, loadResult) {
  // Kept across refreshes, so reading a long output is not reset every 30 s.
  const state = {text: null, pre: null, scroll: 0, all: false, wrap: false, url: null};
  view.card(label, {
    className: "card-wide output-card",
    load: loadResult,
    render(result, body) {
      const text = result[key] ?? "";
      if (text !== state.text) {
        state.text = text;
        state.pre = null;
        state.scroll = 0;
        if (state.url) URL.revokeObjectURL(state.url);
        state.url = null;
      }
      if (!text) {
        const running = runState(result) === "running";
        body.append(
          h(
            "p",
            {class: "card-state output-empty"},
            running ? "Still running: the output arrives with the result." : `No ${label.toLowerCase()}.`,
          ),
        );
        return;
      }
      body.append(outputTools(result, key, label, state, () => redraw()), outputPre(key, label, state));
      function redraw() {
        body.replaceChildren(outputTools(result, key, label, state, redraw), outputPre(key, label, state));
      }
    },
  });
}

function outputTools(result, key, label, state, redraw) {
  const text = state.text;
  const bytes = new TextEncoder().encode(text).length;
  const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
  state.url ??= URL.createObjectURL(new Blob([text], {type: "text/plain;charset=utf-8"}));
  const wrapId = `wrap-${key}`;
  const wrap = h("input", {type: "checkbox", id: wrapId, checked: state.wrap});
  wrap.addEventListener("change", () => {
    state.wrap = wrap.checked;
    state.pre?.classList.toggle("output-wrap", state.wrap);
  });
  const cut = !state.all && text.length > SHOWN_CHARS;
  return h(
    "div",
    {class: "output-tools"},
    h("span", {class: "output-size muted"}, `${formatNumber(lines)} line${lines === 1 ? "" : "s"} · ${formatBytes(bytes)}`),
    cut
      ? h(
          "span",
          {class: "output-cut", role: "note"},
          `Showing the first ${formatNumber(SHOWN_CHARS)} of ${formatNumber(text.length)} characters. `,
          h(
            "button",
            {
              type: "button",
              class: "btn btn-small",
              onClick: () => {
                state.all = true;
                state.pre = null;
                redraw();
              },
            },
            "Show all",
          ),
        )
      : null,
    h(
      "span",
      {class: "output-actions"},
      h("label", {class: "check", for: wrapId}, wrap, " Wrap lines"),
      h(
        "a",
        {class: "btn btn-small", href: state.url, download: `${result.result_id}-${key}.txt`},
        "Download",
        h("span", {class: "visually-hidden"}, ` ${label.toLowerCase()}`),
      ),
    ),
  );
}

function outputPre(key, label, state) {
  if (!state.pre) {
    const shown = state.all ? state.text : state.text.slice(0, SHOWN_CHARS);
    state.pre = h(
      "pre",
      {class: `output-pre${key === "stderr" ? " output-pre-err" : ""}`, tabindex: "0", "aria-label": label},
      shown,
    );
    state.pre.addEventListener("scroll", () => (state.scroll = state.pre.scrollTop));
  }
  state.pre.classList.toggle("output-wrap", state.wrap);
  // Put back where the reader was once the block is in the page again.
  const pre = state.pre;
  requestAnimationFrame(() => {
    if (pre.isConnected && pre.scrollTop !== state.scroll) pre.scrollTop = state.scroll;
  });
  return pre;
}
