// The generated client type of the client port, on its own so that the live
// stream and the inbox views can name it without importing createNotifyClient.

import type { Client } from "@connectrpc/connect";
import type { NotificationClientService } from "./gen/elloloop/notify/v1/notify_pb.js";

/** The generated client of NotificationClientService: every RPC of the client port. */
export type NotificationClient = Client<typeof NotificationClientService>;
