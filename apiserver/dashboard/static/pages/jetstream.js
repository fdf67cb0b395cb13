// JetStream: whether every stream, KV bucket and object store the backend relies on
// exists (missing ones highlighted), with the state projectord's broker snapshot holds
// for them: stream sizes, the projectors' consumers and the mirrored buckets.

import {h, append, chip} from "../lib/dom.js";
import {apiGet} from "../lib/api.js";
import {dataTable} from "../lib/table.js";
import {loadOnce} from "../lib/load_once.js";
import {formatBytes, formatNumber, timeElement, MISSING} from "../lib/format.js";

export const title = "JetStream";

export function render(view) {
  view.root.append(h("h1", {class: "page-title"}, "JetStream"));
  // Existence comes from one endpoint, the snapshot figures from the projector status.
  const load = loadOnce(async () => {
    const [resources, status] = await Promise.all([
      apiGet("/api/jetstream/status"),
      apiGet("/api/projector/status"),
    ]);
    return {resources: resources.data, status: status.data};
  });
  summaryCard(view, load);
  streamsCard(view, load);
  consumersCard(view, load);
  bucketsCard(view, load);
  objectStoresCard(view, load);
}

const num = (v) => formatNumber(v);
const missingRow = (r) => (r.exists ? null : "row-problem");

function existsChip(resource) {
  return resource.exists ? chip("present", "ok") : chip("missing", "bad");
}

function absent(value) {
  return h("span", {class: "muted"}, value ?? MISSING);
}

function summaryCard(view, load) {
  view.card("Resources", {
    className: "card-wide",
    load,
    isEmpty: () => false,
    render({resources, status}, body) {
      const groups = [
        ["Streams", resources.streams],
        ["KV buckets", resources.kv_buckets],
        ["Object stores", resources.object_stores],
      ];
      const all = groups.flatMap(([, list]) => list);
      const missing = all.filter((r) => !r.exists);
      append(body, [
        h(
          "p",
          {class: "summary"},
          missing.length
            ? chip(`${missing.length} of ${all.length} missing`, "bad")
            : chip(`all ${all.length} present`, "ok"),
          groups.map(([label, list]) =>
            h("span", {class: "muted"}, `${label}: ${list.filter((r) => r.exists).length} of ${list.length}`),
          ),
        ),
        missing.length
          ? h("p", {class: "missing"}, "Missing: ", missing.map((r) => r.name).join(", "))
          : null,
        h(
          "p",
          {class: "card-note"},
          "As seen by projectord's latest broker snapshot, ",
          timeElement(status.snapshot_at),
          " (the API server has no broker connection).",
        ),
      ]);
    },
  });
}

function streamsCard(view, load) {
  view.card("Streams", {
    className: "card-wide",
    load,
    isEmpty: ({resources}) => resources.streams.length === 0,
    render({resources, status}, body) {
      const state = new Map(status.streams.map((s) => [s.stream, s]));
      const rows = resources.streams.map((r) => ({...r, state: state.get(r.name) ?? null}));
      const fig = (key, format = num) => (r) => (r.state ? format(r.state[key]) : absent());
      body.append(
        dataTable({
          caption: "Streams",
          columns: [
            {key: "name", label: "Stream", render: (r) => h("strong", null, r.name)},
            {key: "exists", label: "Exists", render: existsChip},
            {key: "messages", label: "Messages", align: "right", render: fig("messages")},
            {key: "bytes", label: "Size", align: "right", render: fig("bytes", formatBytes)},
            {key: "first_seq", label: "First seq", align: "right", render: fig("first_seq")},
            {key: "last_seq", label: "Last seq", align: "right", render: fig("last_seq")},
            {key: "consumers", label: "Consumers", align: "right", render: fig("consumers")},
            {key: "observed_at", label: "Observed", render: (r) => (r.state ? timeElement(r.state.observed_at) : absent())},
          ],
          rows,
          rowClass: missingRow,
        }),
      );
    },
  });
}

function consumersCard(view, load) {
  view.card("Consumers", {
    className: "card-wide",
    load,
    isEmpty: ({status}) => !status.projectors.some((p) => p.durable),
    emptyText: "No projector consumer has been observed yet.",
    render({status}, body) {
      const rows = status.projectors.filter((p) => p.durable);
      const c = (key) => (p) => (p.consumer ? num(p.consumer[key]) : absent());
      body.append(
        dataTable({
          caption: "Durable consumers",
          columns: [
            {key: "durable", label: "Consumer", render: (p) => h("strong", null, p.durable)},
            {key: "stream", label: "Stream"},
            {key: "state", label: "State", render: (p) => (p.consumer ? chip("present", "ok") : chip("not observed", "bad"))},
            {key: "pending", label: "Pending", align: "right", render: c("pending")},
            {key: "ack_pending", label: "Ack pending", align: "right", render: c("ack_pending")},
            {key: "redelivered", label: "Redelivered", align: "right", render: c("redelivered")},
            {key: "delivered_seq", label: "Delivered seq", align: "right", render: c("delivered_seq")},
            {key: "ack_floor_seq", label: "Ack floor", align: "right", render: c("ack_floor_seq")},
            {key: "observed_at", label: "Observed", render: (p) => (p.consumer ? timeElement(p.consumer.observed_at) : absent())},
          ],
          rows,
          rowClass: (p) => (p.consumer ? null : "row-problem"),
        }),
      );
    },
  });
}

function bucketsCard(view, load) {
  view.card("KV buckets", {
    className: "card-span2",
    load,
    isEmpty: ({resources}) => resources.kv_buckets.length === 0,
    render({resources, status}, body) {
      const mirrors = new Map(status.kv_mirrors.map((m) => [m.bucket, m]));
      const rows = resources.kv_buckets.map((r) => ({...r, mirror: mirrors.get(r.name) ?? null}));
      body.append(
        dataTable({
          caption: "KV buckets",
          columns: [
            {key: "name", label: "Bucket", render: (r) => h("strong", null, r.name)},
            {key: "exists", label: "Exists", render: existsChip},
            {
              key: "mirror",
              label: "Mirrored",
              render: (r) =>
                !r.mirror ? absent("not mirrored") : r.mirror.error ? chip("mirror error", "bad") : chip("yes", "info"),
            },
            {key: "keys", label: "Keys", align: "right", render: (r) => (r.mirror ? num(r.mirror.key_count) : absent())},
            {key: "synced_at", label: "Synced", render: (r) => (r.mirror ? timeElement(r.mirror.synced_at) : absent())},
          ],
          rows,
          rowClass: (r) => (!r.exists || r.mirror?.error ? "row-problem" : null),
        }),
      );
    },
  });
}

function objectStoresCard(view, load) {
  view.card("Object stores", {
    load,
    isEmpty: ({resources}) => resources.object_stores.length === 0,
    render({resources}, body) {
      body.append(
        dataTable({
          caption: "Object stores",
          columns: [
            {key: "name", label: "Object store", render: (r) => h("strong", null, r.name)},
            {key: "exists", label: "Exists", render: existsChip},
          ],
          rows: resources.object_stores,
          rowClass: missingRow,
        }),
      );
    },
  });
}
