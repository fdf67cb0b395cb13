// One schedule: its status, definition (in words and as stored), next fires, coverage per
// target PC and every decision the scheduler recorded for it (fired, skipped and why,
// failed), cursor-paged. A schedule that is stored but invalid, or deleted but with a
// history, still shows what is known; an id nobody knows gets a not-found page.

import {exactPattern} from "../lib/exact_pattern.js";
import {h, append, chip} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {cursorPager, offsetPager, pageSizeSelect} from "../lib/pager.js";
import {formatNumber, formatUtc, timeElement} from "../lib/format.js";
import {describeTarget, describeWaves, describeWhen, describeZone} from "../lib/schedule_text.js";
import {freezeHolds, scheduleState, stateChip} from "../lib/schedule_state.js";
import {COVERAGE_STATES, coverageBar} from "../lib/coverage_bar.js";
import {freezeBanner} from "../lib/freeze_banner.js";

export const title = "Schedule";

const FIRE_PAGE = {choices: [25, 100, 500], fallback: 25};
const PREVIEW_COUNT = 10;
const COVERAGE_ROWS = 20;

export async function render(view) {
  const id = view.params.id;
  const enc = encodeURIComponent(id);
  let known;
  try {
    known = await lookUp(id);
  } catch (err) {
    view.root.append(header(view, id, null), loadFailure(view, err));
    return;
  }
  const {schedule, reject, freeze, history} = known;
  if (!schedule && !reject && !history) {
    view.root.append(header(view, id, null), notFound(id));
    return;
  }
  document.title = `${id} · Schedules · kanade`;
  view.root.append(header(view, id, schedule ? scheduleState(schedule, freeze) : null, schedule));
  if (schedule) {
    freezeBanner(view);
    statusCard(view, enc, schedule);
    definitionCard(view, id, schedule);
    previewCard(view, enc);
  } else {
    view.root.append(
      h(
        "div",
        {class: "card card-wide notice", role: "note"},
        reject
          ? [h("strong", null, "Stored but invalid: "), `the scheduler does not run it (${reject.error}).`]
          : [h("strong", null, "Deleted: "), "this schedule is no longer in KV; its recorded decisions remain."],
      ),
    );
  }
  fireHistory(view, enc);
  if (schedule) coverageCard(view, enc);
}

// What is known about the id: the stored schedule, the scheduler's refusal, or only a
// history (asked only when neither exists, as its 404 is the not-found answer).
async function lookUp(id) {
  const [list, rejects, freeze] = await Promise.all([
    apiGet("/api/schedules"),
    apiGet("/api/schedules/rejects"),
    apiGet("/api/freeze"),
  ]);
  const schedule = list.data.find((s) => s.id === id) ?? null;
  const reject = rejects.data.find((r) => r.kind === "schedule" && r.key === id) ?? null;
  let history = false;
  if (!schedule && !reject) {
    try {
      await apiGet(`/api/schedules/${encodeURIComponent(id)}/fires`, {limit: 1});
      history = true;
    } catch (err) {
      if (err.status !== 404) throw err;
    }
  }
  return {schedule, reject, freeze: freeze.data, history};
}

function header(view, id, state, schedule = null) {
  return h(
    "div",
    {class: "page-head"},
    h(
      "nav",
      {class: "crumbs", "aria-label": "Breadcrumb"},
      view.link("/schedules", "Schedules"),
      h("span", {"aria-hidden": "true"}, " / "),
      h("span", {"aria-current": "page"}, id),
    ),
    h("div", {class: "page-head-line"}, h("h1", {class: "page-title"}, id), state ? stateChip(state) : null),
    schedule
      ? h(
          "p",
          {class: "page-sub"},
          describeWhen(schedule.when),
          ` (${describeZone(schedule.tz)}) · job `,
          view.link(`/jobs?job=${encodeURIComponent(schedule.job_id)}`, schedule.job_id),
          ` · ${describeTarget(schedule.target, schedule.rollout)}`,
        )
      : null,
  );
}

function notFound(id) {
  return h(
    "section",
    {class: "card card-wide not-found-card", role: "alert"},
    h("h2", null, "Schedule not found"),
    h("p", null, `No schedule "${id}" is stored in KV, and the scheduler has no record of it.`),
    h("p", null, h("a", {href: "/schedules"}, "All schedules")),
  );
}

function loadFailure(view, err) {
  return h(
    "div",
    {class: "card card-wide card-error", role: "alert"},
    `This schedule could not be loaded: ${err.message} `,
    h("button", {type: "button", class: "btn btn-small", onClick: () => view.setQuery({}, {replace: true})}, "Retry"),
  );
}

// --------------------------------------------------------------------------- cards

function statusCard(view, enc, schedule) {
  view.card("Status", {
    async load() {
      const [status, freeze] = await Promise.all([apiGet(`/api/schedules/${enc}/status`), apiGet("/api/freeze")]);
      return {status: status.data, freeze: freeze.data};
    },
    isEmpty: () => false,
    render({status, freeze}, body) {
      const state = scheduleState(schedule, freeze);
      const last = status.last_run;
      const runs = `/activity?job_id=${encodeURIComponent(exactPattern(schedule.job_id))}`;
      body.append(
        facts([
          ["Status", h("span", null, stateChip(state), freezeHolds(freeze) && freeze.reason ? h("span", {class: "muted"}, ` ${freeze.reason}`) : null)],
          ["Next fire", status.next_run ? h("span", null, formatUtc(status.next_run).slice(0, 16), " UTC · ", timeElement(status.next_run)) : h("span", {class: "muted"}, "none (see Next fires)")],
          [
            "Last run",
            last
              ? h(
                  "span",
                  null,
                  view.link(`/agents/${encodeURIComponent(last.pc_id)}`, last.pc_id),
                  " ",
                  exitChip(last.exit_code, last.finished_at),
                  " ",
                  timeElement(last.finished_at ?? last.started_at),
                )
              : h("span", {class: "muted"}, "never"),
          ],
          [
            `Runs, ${status.recent.window_hours} h`,
            h(
              "span",
              null,
              chip(`${formatNumber(status.recent.ok)} ok`, status.recent.ok ? "ok" : "muted"),
              " ",
              chip(`${formatNumber(status.recent.fail)} failed`, status.recent.fail ? "bad" : "muted"),
              " ",
              view.link(runs, "All runs of the job"),
            ),
          ],
          ["Time zone", describeZone(status.tz)],
        ]),
      );
    },
  });
}

function definitionCard(view, id, initial) {
  view.card("Definition", {
    async load() {
      const {data} = await apiGet("/api/schedules");
      return data.find((s) => s.id === id) ?? initial;
    },
    render(s, body) {
      const c = s.constraints ?? {};
      const retry = s.on_failure?.retry;
      const active = s.active ?? {};
      body.append(
        facts(
          [
            ["Trigger", describeWhen(s.when)],
            ["Job", view.link(`/jobs?job=${encodeURIComponent(s.job_id)}`, s.job_id)],
            ["Target", describeTarget(s.target, s.rollout)],
            s.rollout?.waves?.length ? ["Waves", describeWaves(s.rollout)] : null,
            ["Runs on", s.runs_on === "agent" ? "the agents" : "the backend"],
            ["Enabled", s.enabled === false ? "no" : "yes"],
            ["Time zone", describeZone(s.tz)],
            s.jitter ? ["Jitter", s.jitter] : null,
            s.starting_deadline ? ["Starting deadline", s.starting_deadline] : null,
            active.from || active.until ? ["Active", `${active.from ?? "always"} → ${active.until ?? "open-ended"}`] : null,
            c.window ? ["Window", c.window] : null,
            c.max_concurrent ? ["Max concurrent", formatNumber(c.max_concurrent)] : null,
            c.skip_dates?.length ? ["Skip dates", c.skip_dates.join(", ")] : null,
            c.require ? ["Agent requires", h("code", null, JSON.stringify(c.require))] : null,
            retry ? ["Retry", `up to ${retry.max} times, ${retry.backoff} apart`] : null,
            s.tags?.length ? ["Tags", h("span", {class: "chips"}, s.tags.map((t) => chip(t, "muted")))] : null,
            s.origin?.path ? ["Origin", [s.origin.repo, s.origin.path].filter(Boolean).join(": ")] : null,
          ].filter(Boolean),
        ),
        h(
          "details",
          {class: "raw-json"},
          h("summary", null, "Stored JSON"),
          h("pre", {class: "code-block"}, JSON.stringify(s, null, 2)),
        ),
      );
    },
  });
}

function previewCard(view, enc) {
  view.card("Next fires", {
    load: () => apiGet(`/api/schedules/${enc}/preview`, {count: PREVIEW_COUNT}),
    isEmpty: () => false,
    render(preview, body) {
      if (!preview.fires.length) {
        body.append(h("p", {class: "card-state"}, preview.note ?? "No fires ahead."));
        return;
      }
      body.append(
        h(
          "ol",
          {class: "fire-list"},
          preview.fires.map((at) =>
            h("li", null, h("time", {datetime: at}, formatUtc(at).slice(0, 16)), " UTC", h("span", {class: "muted"}, " · "), timeElement(at)),
          ),
        ),
        h("p", {class: "card-foot muted"}, "As the scheduler will fire them; the fleet freeze is not applied."),
      );
    },
  });
}

function coverageCard(view, enc) {
  const only = view.query.get("cov") || null;
  const offset = Math.max(0, Number.parseInt(view.query.get("cov_offset") ?? "0", 10) || 0);
  view.card("Coverage", {
    className: "card-wide",
    load: () => apiGet(`/api/schedules/${enc}/coverage`),
    isEmpty: () => false,
    render(cov, body) {
      const rows = only ? cov.agents.filter((a) => a.state === only) : cov.agents;
      const page = rows.slice(offset, offset + COVERAGE_ROWS);
      const choices = [{key: null, label: "All", n: cov.total}].concat(
        COVERAGE_STATES.map((s) => ({key: s.key, label: s.label, n: cov[s.key]})),
      );
      append(body, [
        coverageBar(cov),
        h(
          "div",
          {class: "segmented", role: "group", "aria-label": "Show PCs"},
          choices.map((c) =>
            h(
              "button",
              {
                type: "button",
                class: "btn btn-small",
                "aria-pressed": String(c.key === only),
                onClick: () => view.setQuery({cov: c.key, cov_offset: null}),
              },
              `${c.label} (${formatNumber(c.n)})`,
            ),
          ),
        ),
        dataTable({
          caption: "Coverage per target PC",
          columns: [
            {key: "pc_id", label: "PC", render: (a) => view.link(`/agents/${encodeURIComponent(a.pc_id)}`, a.pc_id)},
            {key: "state", label: "State", render: (a) => coverageChip(a.state)},
            {key: "version", label: "Job version"},
            {key: "finished_at", label: "Finished", render: (a) => timeElement(a.finished_at)},
          ],
          rows: page,
          empty: cov.total ? "No PC in this state." : "The target holds no PC.",
        }),
        rows.length > COVERAGE_ROWS
          ? h("div", {class: "card-foot pager-row"}, labelled(offsetPager(view, {total: rows.length, limit: COVERAGE_ROWS, offsetKey: "cov_offset"}), "Coverage pages"))
          : null,
      ]);
    },
  });
}

function fireHistory(view, enc) {
  const asked = Number.parseInt(view.query.get("limit") ?? "", 10);
  const limit = FIRE_PAGE.choices.includes(asked) ? asked : FIRE_PAGE.fallback;
  view.card("Fire history", {
    className: "card-wide",
    load: () => apiGet(`/api/schedules/${enc}/fires`, {limit, cursor: view.query.get("cursor")}),
    isEmpty: () => false,
    render(rows, body, {headers}) {
      body.append(
        dataTable({
          caption: "Every decision the scheduler recorded, newest first",
          columns: [
            {key: "due_at", label: "Due (UTC)", render: dueCell},
            {key: "outcome", label: "Outcome", render: (f) => outcomeChip(f.outcome)},
            {key: "reason", label: "Reason", className: "wrap", render: (f) => f.reason ?? h("span", {class: "muted"}, "—")},
            {key: "target_count", label: "PCs", align: "right", render: (f) => (f.target_count === null ? "—" : formatNumber(f.target_count))},
            {
              key: "exec_id",
              label: "Runs",
              render: (f) => (f.exec_id ? view.link(`/activity?exec_id=${encodeURIComponent(f.exec_id)}`, f.exec_id.slice(0, 8)) : "—"),
            },
            {key: "decided_at", label: "Decided", render: (f) => timeElement(f.decided_at)},
          ],
          rows,
          empty: view.query.has("cursor") ? "No older decisions." : "The scheduler has recorded no decision yet.",
        }),
        h(
          "div",
          {class: "card-foot pager-row"},
          labelled(cursorPager(view, {nextCursor: headers.get("X-Next-Cursor")}), "Fire history pages"),
          pageSizeSelect(view, {...FIRE_PAGE, resetKeys: ["cursor"]}),
        ),
      );
    },
  });
}

// --------------------------------------------------------------------------- cells

function dueCell(f) {
  const due = h("time", {datetime: f.due_at}, formatUtc(f.due_at).slice(0, 16));
  if (f.repeats <= 1) return due;
  return h(
    "span",
    {class: "two-line"},
    due,
    h("span", {class: "sub"}, `×${formatNumber(f.repeats)}, last `, h("time", {datetime: f.last_due_at}, formatUtc(f.last_due_at).slice(0, 16))),
  );
}

const OUTCOME_TONE = {fired: "ok", skipped: "muted", failed: "bad"};

function outcomeChip(outcome) {
  return chip(outcome, OUTCOME_TONE[outcome] ?? "info");
}

const COVERAGE_TONE = {ok: "ok", fail: "bad", running: "info", pending: "muted"};

function coverageChip(state) {
  return chip(state === "fail" ? "failed" : state, COVERAGE_TONE[state] ?? "muted");
}

function exitChip(code, finished) {
  if (!finished) return chip("running", "info");
  if (code === 0) return chip("exit 0", "ok");
  return chip(`exit ${code}`, "bad");
}

function labelled(nav, label) {
  nav.setAttribute("aria-label", label);
  return nav;
}

function facts(pairs) {
  return h("dl", {class: "facts"}, pairs.map(([term, value]) => [h("dt", null, term), h("dd", null, value)]));
}
