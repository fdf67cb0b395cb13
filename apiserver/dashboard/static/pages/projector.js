// Projector status: how far each projector got (checkpoint against the stream, consumer
// backlog), the broker snapshot it is measured against (streams, KV mirrors), and what
// the projectors refused. A reject opens in the URL (?reject=<id>), so it can be shared.

import {h, append, chip} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {loadOnce} from "../lib/load_once.js";
import {dataTable} from "../lib/table.js";
import {filterBar} from "../lib/filters.js";
import {cursorPager, pageSizeSelect} from "../lib/pager.js";
import {formatBytes, formatDuration, formatNumber, formatUtc, timeElement, MISSING} from "../lib/format.js";

export const title = "Projector";

const PAGE = {choices: [25, 50, 200], fallback: 25};
// A mirror not synced for this long is shown as stale. projectord reconciles each mirror
// every kv_resync_s (300 s by default) and follows changes in between, so a healthy
// mirror's sync time is up to 5 minutes old; two missed resyncs are a problem.
const STALE_MIRROR_S = 660;

export async function render(view) {
  view.root.append(h("h1", {class: "page-title"}, "Projector status"));
  // One status request per refresh serves every card built from it.
  const status = loadOnce(() => apiGet("/api/projector/status"));
  const rejectId = view.query.get("reject");
  if (rejectId) rejectCard(view, rejectId);
  projectorsCard(view, status);
  streamsCard(view, status);
  gapsCard(view);
  mirrorsCard(view, status);
  await rejectsCard(view);
}

const num = (v) => formatNumber(v);

function lagCell(lag) {
  if (lag === null) return h("span", {class: "muted"}, MISSING);
  return lag > 0 ? chip(`${formatNumber(lag)} behind`, "warn") : chip("0", "ok");
}

function projectorsCard(view, status) {
  view.card("Projectors", {
    className: "card-wide",
    load: status,
    isEmpty: (s) => s.projectors.length === 0,
    emptyText: "No projector has reported yet.",
    render(s, body) {
      body.append(
        h(
          "p",
          {class: "card-note"},
          "Lag is the stream's last sequence minus the checkpoint; consumer figures are from ",
          "projectord's broker snapshot of ",
          timeElement(s.snapshot_at),
          ".",
        ),
        dataTable({
          caption: "Projectors",
          columns: [
            {key: "projector", label: "Projector", render: (p) => h("strong", null, p.projector)},
            {
              key: "stream",
              label: "Stream / consumer",
              render: (p) =>
                p.stream
                  ? h("span", {class: "two-line"}, p.stream, h("span", {class: "sub"}, p.durable ?? MISSING))
                  : h("span", {class: "muted"}, "core NATS"),
            },
            {key: "checkpoint", label: "Checkpoint", align: "right", render: (p) => num(p.checkpoint)},
            {key: "pending", label: "Pending", align: "right", render: (p) => num(p.consumer?.pending)},
            {key: "ack_pending", label: "Ack pending", align: "right", render: (p) => num(p.consumer?.ack_pending)},
            {key: "lag", label: "Lag", align: "right", render: (p) => lagCell(p.lag)},
            {key: "last_message_at", label: "Last message", render: (p) => timeElement(p.last_message_at)},
            {
              key: "reject_count",
              label: "Rejects",
              align: "right",
              render: (p) =>
                p.reject_count
                  ? view.link(`/projector?projector=${encodeURIComponent(p.projector)}`, formatNumber(p.reject_count))
                  : "0",
            },
            {
              key: "gap_count",
              label: "Gaps",
              align: "right",
              render: (p) => (p.gap_count ? chip(formatNumber(p.gap_count), "bad") : "0"),
            },
          ],
          rows: s.projectors,
        }),
      );
    },
  });
}

// Gaps are rare, so one page of the newest is all the card needs.
const GAP_ROWS = 100;

function gapsCard(view) {
  view.card("Gaps", {
    load: () => apiGet("/api/projector/gaps", {limit: GAP_ROWS}),
    isEmpty: () => false,
    render(gaps, body) {
      const count = gaps.length >= GAP_ROWS ? `${GAP_ROWS}+` : formatNumber(gaps.length);
      append(body, [
        h("p", {class: "summary"}, gaps.length ? chip(`${count} gaps`, "bad") : chip("no gaps", "ok")),
        h(
          "p",
          {class: "card-note"},
          "A gap is a range of stream sequences that left the stream (age or size limits) ",
          "before its projector applied them: those messages are missing from the database. ",
          "projectord records each range when it notices the jump at start-up.",
        ),
        gaps.length
          ? dataTable({
              caption: "Gap ranges, newest first",
              columns: [
                {key: "projector", label: "Projector"},
                {key: "stream", label: "Stream"},
                {key: "from_seq", label: "From", align: "right", render: (g) => num(g.from_seq)},
                {key: "to_seq", label: "To", align: "right", render: (g) => num(g.to_seq)},
                {key: "missing", label: "Missing", align: "right", render: (g) => num(g.missing)},
                {key: "detected_at", label: "Detected", render: (g) => timeElement(g.detected_at)},
              ],
              rows: gaps,
            })
          : null,
      ]);
    },
  });
}

function streamsCard(view, status) {
  view.card("Streams", {
    className: "card-span2",
    load: status,
    isEmpty: (s) => s.streams.length === 0,
    emptyText: "No stream snapshot yet.",
    render(s, body) {
      body.append(
        dataTable({
          caption: "Stream snapshots",
          columns: [
            {key: "stream", label: "Stream"},
            {key: "messages", label: "Messages", align: "right", render: (r) => num(r.messages)},
            {key: "bytes", label: "Size", align: "right", render: (r) => formatBytes(r.bytes)},
            {
              key: "seqs",
              label: "Sequences",
              align: "right",
              render: (r) => `${formatNumber(r.first_seq)}–${formatNumber(r.last_seq)}`,
            },
            {key: "consumers", label: "Consumers", align: "right", render: (r) => num(r.consumers)},
            {key: "observed_at", label: "Observed", render: (r) => timeElement(r.observed_at)},
          ],
          rows: s.streams,
        }),
      );
    },
  });
}

function mirrorState(m) {
  if (m.error) return chip("error", "bad");
  if (m.age_seconds === null) return chip("never synced", "warn");
  if (m.age_seconds > STALE_MIRROR_S) return chip("stale", "warn");
  return chip("fresh", "ok");
}

function mirrorsCard(view, status) {
  view.card("KV mirrors", {
    className: "card-wide",
    load: status,
    isEmpty: (s) => s.kv_mirrors.length === 0,
    emptyText: "No KV bucket is mirrored yet.",
    render(s, body) {
      body.append(
        dataTable({
          caption: "KV mirror freshness",
          columns: [
            {key: "bucket", label: "Bucket"},
            {key: "state", label: "State", render: mirrorState},
            {key: "key_count", label: "Keys", align: "right", render: (m) => num(m.key_count)},
            {
              key: "age_seconds",
              label: "Synced",
              render: (m) =>
                m.synced_at
                  ? h("time", {datetime: m.synced_at, title: formatUtc(m.synced_at)}, `${formatDuration(m.age_seconds * 1000)} ago`)
                  : h("span", {class: "muted"}, MISSING),
            },
            {key: "changed_at", label: "Last change", render: (m) => timeElement(m.changed_at)},
            {
              key: "error",
              label: "Error",
              className: "wrap",
              render: (m) =>
                m.error
                  ? h("span", {class: "mirror-error"}, m.error, " ", timeElement(m.error_at))
                  : h("span", {class: "muted"}, "none"),
            },
          ],
          rows: s.kv_mirrors,
          rowClass: (m) => (m.error ? "row-problem" : null),
        }),
      );
    },
  });
}

// --------------------------------------------------------------------------- rejects

function rejectHref(view, id) {
  const query = new URLSearchParams(view.query);
  query.set("reject", String(id));
  return `/projector?${query}`;
}

async function projectorChoices() {
  try {
    const {data} = await apiGet("/api/projector/status");
    return data.projectors.map((p) => ({value: p.projector}));
  } catch {
    return null; // the field then takes free text
  }
}

async function rejectsCard(view) {
  const projector = view.query.get("projector") || null;
  const cursor = view.query.get("cursor") || null;
  const limit = Number.parseInt(view.query.get("limit") ?? "", 10) || PAGE.fallback;
  const choices = await projectorChoices();
  const field = choices
    ? {name: "projector", label: "Projector", type: "select", options: [{value: "", label: "All projectors"}, ...choices]}
    : {name: "projector", label: "Projector", placeholder: "exact name"};
  const filters = filterBar(view, [field], {resetKeys: ["cursor", "reject"]});
  filters.classList.add("card-wide");
  view.root.append(filters);
  view.card(projector ? `Rejects of ${projector}` : "Rejects", {
    className: "card-wide",
    load: () => apiGet("/api/rejects", {projector, cursor, limit}),
    emptyText: projector ? `${projector} has rejected nothing.` : "No message has been rejected.",
    render(rows, body, {headers}) {
      const open = view.query.get("reject");
      body.append(
        dataTable({
          caption: "Rejected messages",
          columns: [
            {
              key: "id",
              label: "Reject",
              render: (r) => {
                const link = view.link(rejectHref(view, r.id), `#${r.id}`);
                if (String(r.id) === open) link.setAttribute("aria-current", "true");
                return link;
              },
            },
            {key: "recorded_at", label: "Recorded", render: (r) => timeElement(r.recorded_at)},
            {key: "projector", label: "Projector"},
            {key: "subject", label: "Subject"},
            {key: "stream_seq", label: "Seq", align: "right", render: (r) => num(r.stream_seq)},
            {key: "error", label: "Error", className: "wrap", render: (r) => h("span", {class: "reject-error"}, r.error)},
            {key: "payload_size", label: "Size", align: "right", render: (r) => formatBytes(r.payload_size)},
          ],
          rows,
        }),
        h(
          "div",
          {class: "card-foot pager-row"},
          cursorPager(view, {nextCursor: headers?.get("X-Next-Cursor") ?? null}),
          pageSizeSelect(view, {choices: PAGE.choices, fallback: PAGE.fallback, resetKeys: ["cursor"]}),
        ),
      );
    },
  });
}

function rejectCard(view, id) {
  view.card(`Reject #${id}`, {
    className: "card-wide reject-detail",
    load: () => apiGet(`/api/rejects/${encodeURIComponent(id)}`),
    render(r, body) {
      const close = h(
        "button",
        {type: "button", class: "btn btn-small", onClick: () => view.setQuery({reject: null})},
        "Close",
      );
      const size = `${formatBytes(r.payload_size)}${r.truncated ? " (only the first bytes are kept)" : ""}`;
      append(body, [
        h("div", {class: "reject-head"}, chip(r.projector, "bad"), close),
        h(
          "dl",
          {class: "facts"},
          [
            ["Subject", r.subject],
            ["Stream", r.stream ? `${r.stream} #${formatNumber(r.stream_seq)}` : "core NATS"],
            ["Published", r.published_at ? formatUtc(r.published_at) : MISSING],
            ["Recorded", formatUtc(r.recorded_at)],
            ["Size", size],
          ].map(([term, value]) => [h("dt", null, term), h("dd", null, value)]),
        ),
        h("h3", {class: "reject-label"}, "Error"),
        scrollBox("Error text", r.error, "reject-error-text"),
        h("h3", {class: "reject-label"}, r.payload_base64 ? "Payload (not UTF-8: shown with replacements)" : "Payload"),
        scrollBox("Payload text", r.payload === "" ? "(empty)" : r.payload),
        r.payload_base64
          ? [
              h("h3", {class: "reject-label"}, "Payload, base64"),
              scrollBox("Payload base64", r.payload_base64),
            ]
          : null,
      ]);
    },
  });
}

// A labelled, focusable box: long payloads scroll inside it, also from the keyboard.
function scrollBox(label, content, extraClass = "") {
  return h(
    "pre",
    {class: `reject-pre ${extraClass}`.trim(), role: "region", "aria-label": label, tabindex: "0"},
    content,
  );
}
