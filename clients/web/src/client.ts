// createNotifyClient: the client port's calls, typed from the proto, with the
// bearer token added to every request and a default deadline on unary calls.

import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { NotificationClientService } from "./gen/elloloop/notify/v1/notify_pb.js";
import { createLive, type Live, type LiveOptions } from "./live.js";
import type { NotificationClient } from "./rpc.js";

export type { NotificationClient } from "./rpc.js";

/** A bearer token, or a function asked before every call (so a refreshed JWT is used at once). */
export type TokenSource = string | (() => string | Promise<string>);

/** What a transport factory gets: the auth interceptor and the default deadline to apply. */
export interface TransportSetup {
  baseUrl: string;
  interceptors: Interceptor[];
  defaultTimeoutMs: number;
}

export interface NotifyClientOptions {
  /** The client port, e.g. `https://notify.example.com` or `http://localhost:8080`. */
  baseUrl: string;
  /** A JWT (or `dev:<user>:<tenant>` against a dev-mode server), without "Bearer ". */
  token: TokenSource;
  /** Deadline of every unary call (the live stream has none). Default 10 s. */
  timeoutMs?: number;
  /**
   * Builds the transport. Default: Connect over fetch (`@connectrpc/connect-web`).
   * Pass `createGrpcWebTransport` here for gRPC-Web, or a router transport in tests.
   */
  transport?: (setup: TransportSetup) => Transport;
}

/** Every call of the client port, plus `subscribe()` for the live inbox. */
export type NotifyClient = NotificationClient & {
  /** Starts the live stream (reconnecting, resuming) and the inbox it maintains. */
  subscribe(options?: LiveOptions): Live;
};

export const DEFAULT_TIMEOUT_MS = 10_000;

/** An interceptor that sets `Authorization: Bearer <token>`, asking a token function each time. */
export function bearerAuth(token: TokenSource): Interceptor {
  return (next) => async (req) => {
    const value = typeof token === "function" ? await token() : token;
    req.header.set("Authorization", `Bearer ${value}`);
    return next(req);
  };
}

export function createNotifyClient(options: NotifyClientOptions): NotifyClient {
  const setup: TransportSetup = {
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    interceptors: [bearerAuth(options.token)],
    defaultTimeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  };
  const transport = (options.transport ?? createConnectTransport)(setup);
  const rpc = createClient(NotificationClientService, transport);
  const client: NotifyClient = {
    ...rpc,
    subscribe(liveOptions?: LiveOptions): Live {
      const live = createLive(rpc, liveOptions);
      live.start();
      return live;
    },
  };
  return client;
}
