// A fake client port for unit tests: a router transport (no sockets) whose
// StreamEvents answers come from a script the test drives event by event.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { createNotifyClient, type NotifyClient, type TransportSetup } from "../src/client.js";
import {
  CountsSchema,
  type GetNotificationsRequest,
  type GetNotificationsResponse,
  type MarkNotificationsRequest,
  GetNotificationsResponseSchema,
  NotificationClientService,
  type StreamEvent,
  StreamEventSchema,
  type StreamEventsRequest,
} from "../src/gen/elloloop/notify/v1/notify_pb.js";
import type { InboxView } from "../src/view.js";
import type { Live, LiveStatusInfo } from "../src/live.js";

type EventInit = MessageInitShape<typeof StreamEventSchema>;

/** One server stream: the test pushes events, then ends it or fails it. */
export class ScriptedStream {
  private queue: Array<StreamEvent | Error | null> = [];
  private waiting: (() => void) | null = null;
  readonly request: StreamEventsRequest;
  readonly signal: AbortSignal;
  constructor(request: StreamEventsRequest, signal: AbortSignal) {
    this.request = request;
    this.signal = signal;
    signal.addEventListener("abort", () => this.wake());
  }
  push(...events: EventInit[]) {
    for (const e of events) this.queue.push(create(StreamEventSchema, { sessionId: "s", ...e }));
    this.wake();
  }
  end() {
    this.queue.push(null);
    this.wake();
  }
  fail(code: Code, message = "scripted") {
    this.queue.push(new ConnectError(message, code));
    this.wake();
  }
  private wake() {
    this.waiting?.();
    this.waiting = null;
  }
  async *events(): AsyncGenerator<StreamEvent> {
    for (;;) {
      if (this.signal.aborted) return;
      const next = this.queue.shift();
      if (next === undefined) {
        await new Promise<void>((resolve) => (this.waiting = resolve));
        continue;
      }
      if (next === null) return;
      if (next instanceof Error) throw next;
      yield next;
    }
  }
}

export interface FakeServer {
  client: NotifyClient;
  /** Resolves with the next StreamEvents call the client makes. */
  nextStream(): Promise<ScriptedStream>;
  streams: ScriptedStream[];
  pageRequests: GetNotificationsRequest[];
  authorizations: string[];
  marks: MarkNotificationsRequest[];
  /** The answer of the next GetNotifications calls (a function sees the request). */
  pages: (req: GetNotificationsRequest) => MessageInitShape<typeof GetNotificationsResponseSchema>;
  /** When set, GetNotifications waits for this before answering. */
  gate: Promise<void> | null;
}

export function fakeServer(token: string | (() => string) = "dev:user-alice:acme"): FakeServer {
  const waiters: Array<(s: ScriptedStream) => void> = [];
  const ready: ScriptedStream[] = [];
  const server: FakeServer = {
    client: undefined as unknown as NotifyClient,
    streams: [],
    pageRequests: [],
    authorizations: [],
    marks: [],
    pages: () => ({ notifications: [], nextCursor: "", counts: create(CountsSchema) }),
    gate: null,
    nextStream() {
      const s = ready.shift();
      if (s) return Promise.resolve(s);
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
  const transport = (setup: TransportSetup) =>
    createRouterTransport(
      (router) =>
        router.service(NotificationClientService, {
          streamEvents(req, ctx) {
            server.authorizations.push(ctx.requestHeader.get("authorization") ?? "");
            const stream = new ScriptedStream(req, ctx.signal);
            server.streams.push(stream);
            const waiter = waiters.shift();
            if (waiter) waiter(stream);
            else ready.push(stream);
            return stream.events();
          },
          async getNotifications(req, ctx): Promise<GetNotificationsResponse> {
            server.authorizations.push(ctx.requestHeader.get("authorization") ?? "");
            server.pageRequests.push(req);
            if (server.gate) await server.gate;
            return create(GetNotificationsResponseSchema, server.pages(req));
          },
          async markNotifications(req, ctx) {
            server.authorizations.push(ctx.requestHeader.get("authorization") ?? "");
            server.marks.push(req);
            return { updated: 1, counts: { unread: 0, unseen: 0, total: 1 } };
          },
          async getPreferences() {
            return { preferences: { rules: [{ category: "deploy", enabled: false }] } };
          },
          async updatePreferences(req) {
            return { preferences: { rules: req.rules } };
          },
        }),
      { transport: { interceptors: setup.interceptors, defaultTimeoutMs: setup.defaultTimeoutMs } },
    );
  server.client = createNotifyClient({ baseUrl: "http://fake", token, transport });
  return server;
}

/** Resolves once the live's status satisfies `pred` (now or later). */
export function statusWhere(
  live: Live,
  pred: (info: LiveStatusInfo) => boolean,
): Promise<LiveStatusInfo> {
  return new Promise((resolve) => {
    if (pred(live.status())) return resolve(live.status());
    const off = live.onStatus((info) => {
      if (pred(info)) {
        off();
        resolve(info);
      }
    });
  });
}

/** Resolves once the view's snapshot satisfies `pred`. */
export function viewWhere(
  view: InboxView,
  pred: (s: ReturnType<InboxView["getSnapshot"]>) => boolean,
) {
  return new Promise<ReturnType<InboxView["getSnapshot"]>>((resolve) => {
    if (pred(view.getSnapshot())) return resolve(view.getSnapshot());
    const off = view.subscribe(() => {
      if (pred(view.getSnapshot())) {
        off();
        resolve(view.getSnapshot());
      }
    });
  });
}

export { Code };
