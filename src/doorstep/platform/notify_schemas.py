"""Request and response models of the notification API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from doorstep.platform.notify import CHANNEL_LABELS, Channel, TypeSettings
from doorstep.platform.schemas import ReadModel, StrictModel


class NotificationRead(ReadModel):
    id: int
    type: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class DeliveryRead(ReadModel):
    channel: Channel
    status: str
    reason: str | None
    attempts: int
    sent_at: datetime | None


class NotificationDetail(NotificationRead):
    deliveries: list[DeliveryRead]


class UnreadCount(BaseModel):
    unread: int


class MarkedRead(BaseModel):
    marked: int
    unread: int


class ChannelRead(BaseModel):
    key: Channel
    label: str


class TypeSettingsRead(BaseModel):
    type: str
    label: str
    description: str
    channels: dict[Channel, bool]


class NotificationSettingsRead(BaseModel):
    channels: list[ChannelRead]
    types: list[TypeSettingsRead]

    @classmethod
    def of(cls, settings: list[TypeSettings]) -> NotificationSettingsRead:
        return cls(
            channels=[ChannelRead(key=c, label=CHANNEL_LABELS[c]) for c in Channel],
            types=[
                TypeSettingsRead(
                    type=s.type.key,
                    label=s.type.label,
                    description=s.type.description,
                    channels=s.channels,
                )
                for s in settings
            ],
        )


class PreferenceUpdate(StrictModel):
    type: str = Field(min_length=1, max_length=64)
    channel: Channel
    enabled: bool


class NotificationSettingsUpdate(StrictModel):
    """The choices to change; types and channels not listed keep their current setting."""

    preferences: list[PreferenceUpdate] = Field(max_length=400)
