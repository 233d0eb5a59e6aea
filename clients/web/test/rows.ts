// Test rows: in-app, delivered (unread), created at `ms`.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type Counts,
  CountsSchema,
  DeliveryChannel,
  DeliveryStatus,
  type Notification,
  NotificationSchema,
} from "../src/gen/elloloop/notify/v1/notify_pb.js";

export function row(
  id: string,
  ms: number,
  extra: MessageInitShape<typeof NotificationSchema> = {},
): Notification {
  return create(NotificationSchema, {
    id,
    notificationId: `n-${id}`,
    title: `title ${id}`,
    channel: DeliveryChannel.IN_APP,
    status: DeliveryStatus.DELIVERED,
    createdAtMs: BigInt(ms),
    ...extra,
  });
}

export function counts(unread: number, unseen = unread, total = unread): Counts {
  return create(CountsSchema, { unread, unseen, total });
}

export const ids = (rows: readonly Notification[]) => rows.map((n) => n.id);
