// @vitest-environment happy-dom
import { act, cleanup, render, screen, waitFor } from "@testing-library/react";
import { StrictMode } from "react";
import { afterEach, describe, expect, it } from "vitest";
import {
  DeliveryChannel,
  DeliveryStatus,
  Mark,
  ReadScope,
} from "../src/gen/elloloop/notify/v1/notify_pb.js";
import {
  NotifyProvider,
  useCounts,
  useMarkNotifications,
  useNotifications,
  useNotificationStream,
  usePreferences,
} from "../src/react/index.js";
import { fakeServer } from "./fake.js";
import { counts, row } from "./rows.js";

afterEach(() => cleanup());

const hello = { sessionId: "s-1", event: { case: "heartbeat", value: {} } } as const;

function Bell() {
  const stream = useNotificationStream();
  const c = useCounts();
  const all = useNotifications();
  const unread = useNotifications({ read: ReadScope.UNREAD });
  const { markAllRead, pending } = useMarkNotifications();
  return (
    <div>
      <span data-testid="status">{stream.status}</span>
      <span data-testid="session">{stream.sessionId}</span>
      <span data-testid="badge">{c ? c.unread : "?"}</span>
      <ul data-testid="all">
        {all.items.map((n) => (
          <li key={n.id}>{n.title}</li>
        ))}
      </ul>
      <ul data-testid="unread">
        {unread.items.map((n) => (
          <li key={n.id}>{n.title}</li>
        ))}
      </ul>
      <button type="button" disabled={pending} onClick={() => void markAllRead()}>
        read all
      </button>
    </div>
  );
}

const texts = (id: string) =>
  Array.from(screen.getByTestId(id).querySelectorAll("li")).map((li) => li.textContent);

describe("hooks", () => {
  it("show the stream, the counts and the listings, and follow the events (StrictMode)", async () => {
    const server = fakeServer();
    server.pages = (req) => ({
      notifications:
        req.filter?.read === ReadScope.UNREAD
          ? [row("a", 1)]
          : [row("a", 1), row("r", 0, { status: DeliveryStatus.READ, title: "old" })],
      counts: counts(1),
    });
    // StrictMode mounts, unmounts and mounts again: the live starts, stops and
    // starts, and the stream that stays is the second.
    render(
      <StrictMode>
        <NotifyProvider client={server.client}>
          <Bell />
        </NotifyProvider>
      </StrictMode>,
    );
    expect(screen.getByTestId("status").textContent).toBe("connecting");
    let stream = await server.nextStream();
    while (stream.signal.aborted) stream = await server.nextStream();
    await act(async () =>
      stream.push(hello, { event: { case: "counts", value: { counts: counts(1) } } }),
    );
    await waitFor(() => expect(screen.getByTestId("status").textContent).toBe("live"));
    expect(screen.getByTestId("session").textContent).toBe("s-1");
    await waitFor(() => expect(texts("unread")).toEqual(["title a"]));
    expect(texts("all")).toEqual(["title a", "old"]);
    expect(screen.getByTestId("badge").textContent).toBe("1");

    // A live row: on both listings, the badge predicted, then the counts event.
    await act(async () =>
      stream.push({
        event: { case: "notification", value: { notification: row("b", 2), resumeToken: "t1" } },
      }),
    );
    await waitFor(() => expect(texts("all")).toEqual(["title b", "title a", "old"]));
    expect(texts("unread")).toEqual(["title b", "title a"]);
    expect(screen.getByTestId("badge").textContent).toBe("2");

    // Mark all read: the answer's counts at once, the rows from the update event.
    await act(async () => screen.getByRole("button").click());
    await waitFor(() => expect(screen.getByTestId("badge").textContent).toBe("0"));
    expect(server.marks[0]).toMatchObject({ all: true, mark: Mark.READ });
    const read = (id: string, ms: number) => row(id, ms, { status: DeliveryStatus.READ });
    await act(async () =>
      stream.push({
        event: {
          case: "update",
          value: { notifications: [read("a", 1), read("b", 2)], resumeToken: "t2" },
        },
      }),
    );
    await waitFor(() => expect(texts("unread")).toEqual([]));
    expect(texts("all")).toEqual(["title b", "title a", "old"]);
    // One open stream for every hook (any other was StrictMode's, cancelled).
    expect(server.streams.filter((s) => !s.signal.aborted)).toEqual([stream]);
    expect(screen.getByTestId("status").textContent).toBe("live");
  });

  it("end the stream when the provider unmounts", async () => {
    const server = fakeServer();
    const view = render(
      <NotifyProvider client={server.client}>
        <Bell />
      </NotifyProvider>,
    );
    const stream = await server.nextStream();
    await act(async () => stream.push(hello));
    await waitFor(() => expect(screen.getByTestId("status").textContent).toBe("live"));
    view.unmount();
    await waitFor(() => expect(stream.signal.aborted).toBe(true));
  });

  it("usePreferences loads the rules, decides by precedence, and updates them", async () => {
    const server = fakeServer();
    function Prefs() {
      const p = usePreferences();
      if (p.loading) return <span data-testid="prefs">loading</span>;
      return (
        <div>
          <span data-testid="prefs">
            {`deploy:${p.isEnabled("deploy")} billing:${p.isEnabled("billing")}`}
          </span>
          <button type="button" onClick={() => void p.setEnabled("billing", false)}>
            mute billing
          </button>
        </div>
      );
    }
    render(
      <NotifyProvider client={server.client}>
        <Prefs />
      </NotifyProvider>,
    );
    await waitFor(() =>
      expect(screen.getByTestId("prefs").textContent).toBe("deploy:false billing:true"),
    );
    await act(async () => screen.getByRole("button").click());
    await waitFor(() =>
      expect(screen.getByTestId("prefs").textContent).toBe("deploy:true billing:false"),
    );
  });

  it("need a provider", () => {
    function Lonely() {
      useCounts();
      return null;
    }
    const quiet = console.error;
    console.error = () => {};
    try {
      expect(() => render(<Lonely />)).toThrow(/NotifyProvider/);
    } finally {
      console.error = quiet;
    }
  });
});

describe("preferenceEnabled", () => {
  it("required categories, then the user's most specific rule, then the tenant's", async () => {
    const { preferenceEnabled } = await import("../src/preferences.js");
    const { create } = await import("@bufbuild/protobuf");
    const { PreferencesSchema } = await import("../src/gen/elloloop/notify/v1/notify_pb.js");
    const prefs = create(PreferencesSchema, {
      rules: [
        { category: "", channel: DeliveryChannel.UNSPECIFIED, enabled: false },
        { category: "deploy", channel: DeliveryChannel.UNSPECIFIED, enabled: true },
        { category: "deploy", channel: DeliveryChannel.EMAIL, enabled: false },
      ],
      tenantDefaults: [
        { category: "billing", channel: DeliveryChannel.UNSPECIFIED, enabled: true },
      ],
      requiredCategories: ["security"],
    });
    expect(preferenceEnabled(prefs, "deploy", DeliveryChannel.IN_APP)).toBe(true);
    expect(preferenceEnabled(prefs, "deploy", DeliveryChannel.EMAIL)).toBe(false);
    expect(preferenceEnabled(prefs, "chat", DeliveryChannel.IN_APP)).toBe(false);
    expect(preferenceEnabled(prefs, "security", DeliveryChannel.EMAIL)).toBe(true);
    const tenantOnly = create(PreferencesSchema, { tenantDefaults: prefs.tenantDefaults });
    expect(preferenceEnabled(tenantOnly, "billing")).toBe(true);
    expect(preferenceEnabled(null, "anything")).toBe(true);
  });
});
