from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_CHANNEL_UNSPECIFIED: _ClassVar[DeliveryChannel]
    DELIVERY_CHANNEL_IN_APP: _ClassVar[DeliveryChannel]
    DELIVERY_CHANNEL_EMAIL: _ClassVar[DeliveryChannel]
    DELIVERY_CHANNEL_WEB_PUSH: _ClassVar[DeliveryChannel]
    DELIVERY_CHANNEL_MOBILE_PUSH: _ClassVar[DeliveryChannel]
    DELIVERY_CHANNEL_SMS: _ClassVar[DeliveryChannel]
    DELIVERY_CHANNEL_WHATSAPP: _ClassVar[DeliveryChannel]
    DELIVERY_CHANNEL_WEBHOOK: _ClassVar[DeliveryChannel]

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_PENDING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DELIVERED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_ACKED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_READ: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_FAILED: _ClassVar[DeliveryStatus]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_SUCCESS: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_ERROR: _ClassVar[Severity]

class ArchiveScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARCHIVE_SCOPE_UNSPECIFIED: _ClassVar[ArchiveScope]
    ARCHIVE_SCOPE_ARCHIVED: _ClassVar[ArchiveScope]
    ARCHIVE_SCOPE_ALL: _ClassVar[ArchiveScope]

class ReadScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_SCOPE_UNSPECIFIED: _ClassVar[ReadScope]
    READ_SCOPE_UNREAD: _ClassVar[ReadScope]
    READ_SCOPE_READ: _ClassVar[ReadScope]

class Mark(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARK_UNSPECIFIED: _ClassVar[Mark]
    MARK_READ: _ClassVar[Mark]
    MARK_UNREAD: _ClassVar[Mark]
    MARK_SEEN: _ClassVar[Mark]
    MARK_ARCHIVED: _ClassVar[Mark]
    MARK_UNARCHIVED: _ClassVar[Mark]
    MARK_SNOOZED: _ClassVar[Mark]
    MARK_UNSNOOZED: _ClassVar[Mark]
    MARK_ACTIONED: _ClassVar[Mark]

class DeviceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_TYPE_UNSPECIFIED: _ClassVar[DeviceType]
    DEVICE_TYPE_BROWSER: _ClassVar[DeviceType]
    DEVICE_TYPE_ANDROID: _ClassVar[DeviceType]
    DEVICE_TYPE_IOS: _ClassVar[DeviceType]
DELIVERY_CHANNEL_UNSPECIFIED: DeliveryChannel
DELIVERY_CHANNEL_IN_APP: DeliveryChannel
DELIVERY_CHANNEL_EMAIL: DeliveryChannel
DELIVERY_CHANNEL_WEB_PUSH: DeliveryChannel
DELIVERY_CHANNEL_MOBILE_PUSH: DeliveryChannel
DELIVERY_CHANNEL_SMS: DeliveryChannel
DELIVERY_CHANNEL_WHATSAPP: DeliveryChannel
DELIVERY_CHANNEL_WEBHOOK: DeliveryChannel
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_PENDING: DeliveryStatus
DELIVERY_STATUS_DELIVERED: DeliveryStatus
DELIVERY_STATUS_ACKED: DeliveryStatus
DELIVERY_STATUS_READ: DeliveryStatus
DELIVERY_STATUS_FAILED: DeliveryStatus
SEVERITY_UNSPECIFIED: Severity
SEVERITY_INFO: Severity
SEVERITY_SUCCESS: Severity
SEVERITY_WARNING: Severity
SEVERITY_ERROR: Severity
ARCHIVE_SCOPE_UNSPECIFIED: ArchiveScope
ARCHIVE_SCOPE_ARCHIVED: ArchiveScope
ARCHIVE_SCOPE_ALL: ArchiveScope
READ_SCOPE_UNSPECIFIED: ReadScope
READ_SCOPE_UNREAD: ReadScope
READ_SCOPE_READ: ReadScope
MARK_UNSPECIFIED: Mark
MARK_READ: Mark
MARK_UNREAD: Mark
MARK_SEEN: Mark
MARK_ARCHIVED: Mark
MARK_UNARCHIVED: Mark
MARK_SNOOZED: Mark
MARK_UNSNOOZED: Mark
MARK_ACTIONED: Mark
DEVICE_TYPE_UNSPECIFIED: DeviceType
DEVICE_TYPE_BROWSER: DeviceType
DEVICE_TYPE_ANDROID: DeviceType
DEVICE_TYPE_IOS: DeviceType

class NotifyRequest(_message.Message):
    __slots__ = ("tenant_id", "notification_id", "user_ids", "channels", "subject_ref", "subject_type", "title", "body", "addresses", "severity", "category", "actions", "data", "tags", "image_url", "expires_at_ms", "deliver_at_ms", "collapse_key")
    class AddressesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ChannelAddresses
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ChannelAddresses, _Mapping]] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_REF_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DELIVER_AT_MS_FIELD_NUMBER: _ClassVar[int]
    COLLAPSE_KEY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    notification_id: str
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[DeliveryChannel]
    subject_ref: str
    subject_type: str
    title: str
    body: str
    addresses: _containers.MessageMap[str, ChannelAddresses]
    severity: Severity
    category: str
    actions: _containers.RepeatedCompositeFieldContainer[Action]
    data: _struct_pb2.Struct
    tags: _containers.RepeatedScalarFieldContainer[str]
    image_url: str
    expires_at_ms: int
    deliver_at_ms: int
    collapse_key: str
    def __init__(self, tenant_id: _Optional[str] = ..., notification_id: _Optional[str] = ..., user_ids: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[_Union[DeliveryChannel, str]]] = ..., subject_ref: _Optional[str] = ..., subject_type: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., addresses: _Optional[_Mapping[str, ChannelAddresses]] = ..., severity: _Optional[_Union[Severity, str]] = ..., category: _Optional[str] = ..., actions: _Optional[_Iterable[_Union[Action, _Mapping]]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., image_url: _Optional[str] = ..., expires_at_ms: _Optional[int] = ..., deliver_at_ms: _Optional[int] = ..., collapse_key: _Optional[str] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("id", "label", "url", "primary")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    url: str
    primary: bool
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., url: _Optional[str] = ..., primary: _Optional[bool] = ...) -> None: ...

class ChannelAddresses(_message.Message):
    __slots__ = ("by_channel",)
    class ByChannelEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BY_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    by_channel: _containers.ScalarMap[str, str]
    def __init__(self, by_channel: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PublishDataChangeRequest(_message.Message):
    __slots__ = ("tenant_id", "user_ids", "idempotency_key", "subject_ref", "subject_type")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_REF_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    idempotency_key: str
    subject_ref: str
    subject_type: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_ids: _Optional[_Iterable[str]] = ..., idempotency_key: _Optional[str] = ..., subject_ref: _Optional[str] = ..., subject_type: _Optional[str] = ...) -> None: ...

class PublishDataChangeResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: int
    def __init__(self, sessions: _Optional[int] = ...) -> None: ...

class NotifyResponse(_message.Message):
    __slots__ = ("delivered", "pending", "failed", "skipped")
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    delivered: int
    pending: int
    failed: int
    skipped: int
    def __init__(self, delivered: _Optional[int] = ..., pending: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("device_type", "resume_token")
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    device_type: DeviceType
    resume_token: str
    def __init__(self, device_type: _Optional[_Union[DeviceType, str]] = ..., resume_token: _Optional[str] = ...) -> None: ...

class StreamEvent(_message.Message):
    __slots__ = ("session_id", "notification", "data_change", "heartbeat", "counts", "update")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    DATA_CHANGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    notification: NotificationEvent
    data_change: DataChangeEvent
    heartbeat: HeartbeatEvent
    counts: CountsEvent
    update: NotificationUpdateEvent
    def __init__(self, session_id: _Optional[str] = ..., notification: _Optional[_Union[NotificationEvent, _Mapping]] = ..., data_change: _Optional[_Union[DataChangeEvent, _Mapping]] = ..., heartbeat: _Optional[_Union[HeartbeatEvent, _Mapping]] = ..., counts: _Optional[_Union[CountsEvent, _Mapping]] = ..., update: _Optional[_Union[NotificationUpdateEvent, _Mapping]] = ...) -> None: ...

class CountsEvent(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: Counts
    def __init__(self, counts: _Optional[_Union[Counts, _Mapping]] = ...) -> None: ...

class NotificationUpdateEvent(_message.Message):
    __slots__ = ("notifications", "deleted_ids", "resume_token")
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    DELETED_IDS_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    notifications: _containers.RepeatedCompositeFieldContainer[Notification]
    deleted_ids: _containers.RepeatedScalarFieldContainer[str]
    resume_token: str
    def __init__(self, notifications: _Optional[_Iterable[_Union[Notification, _Mapping]]] = ..., deleted_ids: _Optional[_Iterable[str]] = ..., resume_token: _Optional[str] = ...) -> None: ...

class Counts(_message.Message):
    __slots__ = ("unread", "unseen", "total")
    UNREAD_FIELD_NUMBER: _ClassVar[int]
    UNSEEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    unread: int
    unseen: int
    total: int
    def __init__(self, unread: _Optional[int] = ..., unseen: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class NotificationFilter(_message.Message):
    __slots__ = ("categories", "tags", "severities", "archived", "read", "channels", "snoozed")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SEVERITIES_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SNOOZED_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    severities: _containers.RepeatedScalarFieldContainer[Severity]
    archived: ArchiveScope
    read: ReadScope
    channels: _containers.RepeatedScalarFieldContainer[DeliveryChannel]
    snoozed: bool
    def __init__(self, categories: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., severities: _Optional[_Iterable[_Union[Severity, str]]] = ..., archived: _Optional[_Union[ArchiveScope, str]] = ..., read: _Optional[_Union[ReadScope, str]] = ..., channels: _Optional[_Iterable[_Union[DeliveryChannel, str]]] = ..., snoozed: _Optional[bool] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("id", "notification_id", "subject_ref", "subject_type", "title", "body", "channel", "status", "created_at_ms", "delivered_at_ms", "ack_at_ms", "read_at_ms", "severity", "category", "actions", "data", "tags", "image_url", "expires_at_ms", "deliver_at_ms", "seen_at_ms", "archived_at_ms", "snoozed_until_ms", "collapse_key", "collapsed_count", "actioned_at_ms", "action_id", "attempts", "failure_reason", "provider_message_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_REF_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ACK_AT_MS_FIELD_NUMBER: _ClassVar[int]
    READ_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DELIVER_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SEEN_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SNOOZED_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    COLLAPSE_KEY_FIELD_NUMBER: _ClassVar[int]
    COLLAPSED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACTIONED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    notification_id: str
    subject_ref: str
    subject_type: str
    title: str
    body: str
    channel: DeliveryChannel
    status: DeliveryStatus
    created_at_ms: int
    delivered_at_ms: int
    ack_at_ms: int
    read_at_ms: int
    severity: Severity
    category: str
    actions: _containers.RepeatedCompositeFieldContainer[Action]
    data: _struct_pb2.Struct
    tags: _containers.RepeatedScalarFieldContainer[str]
    image_url: str
    expires_at_ms: int
    deliver_at_ms: int
    seen_at_ms: int
    archived_at_ms: int
    snoozed_until_ms: int
    collapse_key: str
    collapsed_count: int
    actioned_at_ms: int
    action_id: str
    attempts: int
    failure_reason: str
    provider_message_id: str
    def __init__(self, id: _Optional[str] = ..., notification_id: _Optional[str] = ..., subject_ref: _Optional[str] = ..., subject_type: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., channel: _Optional[_Union[DeliveryChannel, str]] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., created_at_ms: _Optional[int] = ..., delivered_at_ms: _Optional[int] = ..., ack_at_ms: _Optional[int] = ..., read_at_ms: _Optional[int] = ..., severity: _Optional[_Union[Severity, str]] = ..., category: _Optional[str] = ..., actions: _Optional[_Iterable[_Union[Action, _Mapping]]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., image_url: _Optional[str] = ..., expires_at_ms: _Optional[int] = ..., deliver_at_ms: _Optional[int] = ..., seen_at_ms: _Optional[int] = ..., archived_at_ms: _Optional[int] = ..., snoozed_until_ms: _Optional[int] = ..., collapse_key: _Optional[str] = ..., collapsed_count: _Optional[int] = ..., actioned_at_ms: _Optional[int] = ..., action_id: _Optional[str] = ..., attempts: _Optional[int] = ..., failure_reason: _Optional[str] = ..., provider_message_id: _Optional[str] = ...) -> None: ...

class NotificationEvent(_message.Message):
    __slots__ = ("notification", "resume_token")
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    notification: Notification
    resume_token: str
    def __init__(self, notification: _Optional[_Union[Notification, _Mapping]] = ..., resume_token: _Optional[str] = ...) -> None: ...

class DataChangeEvent(_message.Message):
    __slots__ = ("idempotency_key", "subject_ref", "subject_type")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_REF_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    subject_ref: str
    subject_type: str
    def __init__(self, idempotency_key: _Optional[str] = ..., subject_ref: _Optional[str] = ..., subject_type: _Optional[str] = ...) -> None: ...

class HeartbeatEvent(_message.Message):
    __slots__ = ("timestamp_ms",)
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    timestamp_ms: int
    def __init__(self, timestamp_ms: _Optional[int] = ...) -> None: ...

class GetNotificationsRequest(_message.Message):
    __slots__ = ("cursor", "limit", "unread_only", "filter")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    UNREAD_ONLY_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    limit: int
    unread_only: bool
    filter: NotificationFilter
    def __init__(self, cursor: _Optional[str] = ..., limit: _Optional[int] = ..., unread_only: _Optional[bool] = ..., filter: _Optional[_Union[NotificationFilter, _Mapping]] = ...) -> None: ...

class GetNotificationsResponse(_message.Message):
    __slots__ = ("notifications", "next_cursor", "unread_count", "counts")
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    UNREAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    notifications: _containers.RepeatedCompositeFieldContainer[Notification]
    next_cursor: str
    unread_count: int
    counts: Counts
    def __init__(self, notifications: _Optional[_Iterable[_Union[Notification, _Mapping]]] = ..., next_cursor: _Optional[str] = ..., unread_count: _Optional[int] = ..., counts: _Optional[_Union[Counts, _Mapping]] = ...) -> None: ...

class AckNotificationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AckNotificationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AckDataChangeRequest(_message.Message):
    __slots__ = ("idempotency_key", "session_id")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    session_id: str
    def __init__(self, idempotency_key: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class AckDataChangeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegisterPushTokenRequest(_message.Message):
    __slots__ = ("device_type", "token")
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    device_type: DeviceType
    token: str
    def __init__(self, device_type: _Optional[_Union[DeviceType, str]] = ..., token: _Optional[str] = ...) -> None: ...

class RegisterPushTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MarkNotificationsRequest(_message.Message):
    __slots__ = ("ids", "all", "filter", "mark", "snooze_until_ms", "action_id")
    IDS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MARK_FIELD_NUMBER: _ClassVar[int]
    SNOOZE_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    all: bool
    filter: NotificationFilter
    mark: Mark
    snooze_until_ms: int
    action_id: str
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., all: _Optional[bool] = ..., filter: _Optional[_Union[NotificationFilter, _Mapping]] = ..., mark: _Optional[_Union[Mark, str]] = ..., snooze_until_ms: _Optional[int] = ..., action_id: _Optional[str] = ...) -> None: ...

class MarkNotificationsResponse(_message.Message):
    __slots__ = ("updated", "counts")
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    updated: int
    counts: Counts
    def __init__(self, updated: _Optional[int] = ..., counts: _Optional[_Union[Counts, _Mapping]] = ...) -> None: ...

class DeleteNotificationsRequest(_message.Message):
    __slots__ = ("ids", "all", "filter")
    IDS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    all: bool
    filter: NotificationFilter
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., all: _Optional[bool] = ..., filter: _Optional[_Union[NotificationFilter, _Mapping]] = ...) -> None: ...

class DeleteNotificationsResponse(_message.Message):
    __slots__ = ("deleted", "counts")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    counts: Counts
    def __init__(self, deleted: _Optional[int] = ..., counts: _Optional[_Union[Counts, _Mapping]] = ...) -> None: ...

class GetNotificationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetNotificationResponse(_message.Message):
    __slots__ = ("notification",)
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    notification: Notification
    def __init__(self, notification: _Optional[_Union[Notification, _Mapping]] = ...) -> None: ...

class GetCountsRequest(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: NotificationFilter
    def __init__(self, filter: _Optional[_Union[NotificationFilter, _Mapping]] = ...) -> None: ...

class GetCountsResponse(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: Counts
    def __init__(self, counts: _Optional[_Union[Counts, _Mapping]] = ...) -> None: ...

class PreferenceRule(_message.Message):
    __slots__ = ("category", "channel", "enabled")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    category: str
    channel: DeliveryChannel
    enabled: bool
    def __init__(self, category: _Optional[str] = ..., channel: _Optional[_Union[DeliveryChannel, str]] = ..., enabled: _Optional[bool] = ...) -> None: ...

class Preferences(_message.Message):
    __slots__ = ("rules", "tenant_defaults", "required_categories")
    RULES_FIELD_NUMBER: _ClassVar[int]
    TENANT_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[PreferenceRule]
    tenant_defaults: _containers.RepeatedCompositeFieldContainer[PreferenceRule]
    required_categories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rules: _Optional[_Iterable[_Union[PreferenceRule, _Mapping]]] = ..., tenant_defaults: _Optional[_Iterable[_Union[PreferenceRule, _Mapping]]] = ..., required_categories: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPreferencesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPreferencesResponse(_message.Message):
    __slots__ = ("preferences",)
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    preferences: Preferences
    def __init__(self, preferences: _Optional[_Union[Preferences, _Mapping]] = ...) -> None: ...

class UpdatePreferencesRequest(_message.Message):
    __slots__ = ("rules", "replace")
    RULES_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[PreferenceRule]
    replace: bool
    def __init__(self, rules: _Optional[_Iterable[_Union[PreferenceRule, _Mapping]]] = ..., replace: _Optional[bool] = ...) -> None: ...

class UpdatePreferencesResponse(_message.Message):
    __slots__ = ("preferences",)
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    preferences: Preferences
    def __init__(self, preferences: _Optional[_Union[Preferences, _Mapping]] = ...) -> None: ...

class SetTenantPreferencesRequest(_message.Message):
    __slots__ = ("tenant_id", "defaults", "required_categories")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    defaults: _containers.RepeatedCompositeFieldContainer[PreferenceRule]
    required_categories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., defaults: _Optional[_Iterable[_Union[PreferenceRule, _Mapping]]] = ..., required_categories: _Optional[_Iterable[str]] = ...) -> None: ...

class SetTenantPreferencesResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
