// One inbox row, built with DOM APIs only: every string that comes from a
// notification (title, body, tags, labels, urls) goes in through textContent
// or a checked attribute, never through innerHTML, so no title can inject markup.

import { type Action, isUnread, type Notification, Severity } from "@notify/web";
import { safeImageUrl, safeUrl } from "./safe-url.js";

export type RowHandlers = {
  read: (n: Notification) => void;
  action: (n: Notification, action: Action, url: string | null) => void;
  archive: (n: Notification) => void;
  unarchive: (n: Notification) => void;
  snooze: (n: Notification) => void;
  remove: (n: Notification) => void;
};

const SEVERITY: Record<Severity, string> = {
  [Severity.UNSPECIFIED]: "info",
  [Severity.INFO]: "info",
  [Severity.SUCCESS]: "success",
  [Severity.WARNING]: "warning",
  [Severity.ERROR]: "error",
};

export function severityName(severity: Severity): string {
  return SEVERITY[severity] ?? "info";
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function tool(testid: string, label: string, onClick: () => void): HTMLButtonElement {
  const button = el("button", "tool", label);
  button.type = "button";
  button.dataset.testid = testid;
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    onClick();
  });
  return button;
}

function actionButton(n: Notification, action: Action, on: RowHandlers): HTMLButtonElement {
  const url = safeUrl(action.url);
  const button = el("button", action.primary ? "action primary" : "action", action.label);
  button.type = "button";
  button.dataset.testid = "action";
  button.dataset.actionId = action.id;
  button.dataset.safe = String(url !== null);
  if (url) button.title = url;
  if (n.actionId === action.id) button.dataset.taken = "true";
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    on.action(n, action, url);
  });
  return button;
}

/** The row of `n`: `archived` says which tools it offers (archive or unarchive). */
export function renderRow(
  n: Notification,
  opts: { archived: boolean; fresh: boolean; when: string; handlers: RowHandlers },
): HTMLLIElement {
  const on = opts.handlers;
  const li = el("li", opts.fresh ? "fresh" : "");
  li.dataset.testid = "notification";
  li.dataset.id = n.id;
  li.dataset.notificationId = n.notificationId;
  li.dataset.read = String(!isUnread(n));
  li.dataset.severity = severityName(n.severity);
  li.dataset.archived = String(n.archivedAtMs !== 0n);
  li.dataset.actioned = String(n.actionedAtMs !== 0n);

  const main = el("button", "item");
  main.type = "button";
  main.addEventListener("click", () => on.read(n));
  const text = el("span", "text");
  const title = el("div", "title", n.title || n.subjectRef || n.notificationId);
  const body = el("div", "body", n.body);
  text.append(title, body);
  const chips = el("div", "chips");
  if (n.severity > Severity.INFO) chips.append(el("span", "chip sev", severityName(n.severity)));
  if (n.category) chips.append(el("span", "chip category", n.category));
  for (const tag of n.tags) chips.append(el("span", "chip tag", `#${tag}`));
  if (n.actionedAtMs !== 0n) {
    const taken = n.actions.find((a) => a.id === n.actionId);
    chips.append(el("span", "chip done", `✓ ${taken?.label ?? n.actionId}`));
  }
  if (n.collapsedCount > 1) chips.append(el("span", "chip", `×${n.collapsedCount}`));
  if (chips.childElementCount) text.append(chips);
  const image = safeImageUrl(n.imageUrl);
  const lead = el("span", "lead");
  if (image) {
    const img = el("img", "thumb");
    img.src = image;
    img.alt = "";
    img.referrerPolicy = "no-referrer";
    img.loading = "lazy";
    lead.append(img);
  } else {
    lead.append(el("span", "dot"));
  }
  const time = el("time", "time", opts.when);
  if (n.createdAtMs) time.dateTime = new Date(Number(n.createdAtMs)).toISOString();
  main.append(lead, text, time);

  const tools = el("div", "tools");
  if (opts.archived) tools.append(tool("unarchive", "Unarchive", () => on.unarchive(n)));
  else {
    tools.append(tool("archive", "Archive", () => on.archive(n)));
    tools.append(tool("snooze", "Snooze 1h", () => on.snooze(n)));
  }
  tools.append(tool("delete", "Delete", () => on.remove(n)));
  li.append(main, tools);

  if (n.actions.length) {
    const actions = el("div", "actions");
    for (const action of n.actions) actions.append(actionButton(n, action, on));
    li.append(actions);
  }
  return li;
}
