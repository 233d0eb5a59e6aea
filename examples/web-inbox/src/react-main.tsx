// The same inbox as a React app on @notify/web/react's hooks (react.html):
// one <NotifyProvider> runs the live stream; the bell, the tabs, the rows, the
// marks and the preferences are each one hook. React renders every string from
// a notification as text, and action urls go through safe-url.ts as on the DOM
// page, so neither page can be made to run markup or a javascript: url.

import { createNotifyClient, isUnread, type Notification, ReadScope } from "@notify/web";
import {
  NotifyProvider,
  useCounts,
  useMarkNotifications,
  useNotifications,
  useNotificationStream,
  usePreferences,
} from "@notify/web/react";
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { safeUrl } from "./safe-url.js";

const params = new URLSearchParams(location.search);
const apiBase = params.get("api") ?? "http://localhost:8080";
const user = params.get("user") ?? "user-alice";
const tenant = params.get("tenant") ?? "acme";
const jwt = params.get("token");
const client = createNotifyClient({ baseUrl: apiBase, token: jwt ?? `dev:${user}:${tenant}` });
const SNOOZE_MS = 60 * 60 * 1000;

type Tab = "all" | "unread";

function Status() {
  const stream = useNotificationStream();
  const text =
    stream.status === "retrying"
      ? `reconnecting in ${(stream.delayMs / 1000).toFixed(1)} s`
      : stream.status;
  return (
    <span
      id="status"
      data-testid="status"
      data-state={stream.status}
      data-session={stream.sessionId}
    >
      {text}
    </span>
  );
}

function Badge() {
  const counts = useCounts();
  const unread = counts?.unread ?? 0;
  return (
    <span id="unread-badge" data-testid="unread-count" data-count={String(unread)}>
      {unread > 99 ? "99+" : String(unread)}
    </span>
  );
}

function Row({ n }: { n: Notification }) {
  const { markRead, archive, snooze, actioned } = useMarkNotifications();
  const read = !isUnread(n);
  return (
    <li data-testid="notification" data-notification-id={n.notificationId} data-read={String(read)}>
      <button type="button" className="item" onClick={() => void (read || markRead([n.id]))}>
        <span className="text">
          <span className="title">{n.title || n.subjectRef || n.notificationId}</span>
          <span className="body">{n.body}</span>
        </span>
      </button>
      <span className="tools">
        <button type="button" data-testid="archive" onClick={() => void archive([n.id])}>
          Archive
        </button>
        <button
          type="button"
          data-testid="snooze"
          onClick={() => void snooze([n.id], Date.now() + SNOOZE_MS)}
        >
          Snooze 1h
        </button>
      </span>
      {n.actions.map((action) => {
        const url = safeUrl(action.url);
        return (
          <button
            key={action.id}
            type="button"
            data-testid="action"
            data-action-id={action.id}
            data-safe={String(url !== null)}
            onClick={() => {
              if (url) window.open(url, "_blank", "noopener,noreferrer");
              void actioned(n.id, action.id);
            }}
          >
            {action.label}
          </button>
        );
      })}
    </li>
  );
}

function Inbox() {
  const [tab, setTab] = useState<Tab>("all");
  const list = useNotifications(tab === "unread" ? { read: ReadScope.UNREAD } : undefined);
  const { markAllRead, error } = useMarkNotifications();
  return (
    <section id="panel">
      <nav id="tabs">
        {(["all", "unread"] as const).map((name) => (
          <button
            key={name}
            type="button"
            className="tab"
            data-testid={`tab-${name}`}
            aria-selected={tab === name}
            onClick={() => setTab(name)}
          >
            {name === "all" ? "All" : "Unread"}
          </button>
        ))}
        <button type="button" data-testid="mark-all-read" onClick={() => void markAllRead()}>
          Mark all read
        </button>
      </nav>
      <div data-testid="error">{(error ?? list.error)?.message ?? ""}</div>
      <ul id="inbox" data-testid="inbox" data-tab={tab} data-loaded={String(list.loaded)}>
        {list.items.map((n) => (
          <Row key={n.id} n={n} />
        ))}
      </ul>
      {list.hasMore && (
        <button type="button" data-testid="load-more" onClick={() => void list.loadMore()}>
          Load older
        </button>
      )}
    </section>
  );
}

function Preferences() {
  const prefs = usePreferences();
  const categories = ["deploy", "billing"];
  return (
    <fieldset data-testid="preferences" data-loaded={String(!prefs.loading)}>
      <legend>Deliver</legend>
      {categories.map((category) => (
        <label key={category}>
          <input
            type="checkbox"
            data-testid={`pref-${category}`}
            checked={prefs.isEnabled(category)}
            disabled={prefs.loading}
            onChange={(event) => void prefs.setEnabled(category, event.target.checked)}
          />
          {category}
        </label>
      ))}
    </fieldset>
  );
}

function App() {
  return (
    <NotifyProvider client={client} options={{ pageSize: 20 }}>
      <header>
        <h1>notify · inbox (React)</h1>
        <span data-testid="who">{`${user} @ ${tenant} · ${apiBase}`}</span>
        <Badge />
        <Status />
      </header>
      <main>
        <Inbox />
        <Preferences />
      </main>
    </NotifyProvider>
  );
}

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
