from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.webhook_delivery_log_item import WebhookDeliveryLogItem
    from ..models.webhook_delivery_payload import WebhookDeliveryPayload


T = TypeVar("T", bound="WebhookDelivery")


@_attrs_define
class WebhookDelivery:
    """One webhook event's delivery: its payload, attempts and log.

    Attributes:
        id (str):
        tenant_id (str):
        job_id (None | str):
        event_type (str):
        url (str):
        payload (WebhookDeliveryPayload):
        status (str):
        attempts (int):
        next_attempt_at (str):
        last_status_code (int | None):
        last_error (None | str):
        log (list[WebhookDeliveryLogItem]):
        created_at (str):
        delivered_at (None | str):
    """

    id: str
    tenant_id: str
    job_id: None | str
    event_type: str
    url: str
    payload: WebhookDeliveryPayload
    status: str
    attempts: int
    next_attempt_at: str
    last_status_code: int | None
    last_error: None | str
    log: list[WebhookDeliveryLogItem]
    created_at: str
    delivered_at: None | str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        tenant_id = self.tenant_id

        job_id: None | str
        job_id = self.job_id

        event_type = self.event_type

        url = self.url

        payload = self.payload.to_dict()

        status = self.status

        attempts = self.attempts

        next_attempt_at = self.next_attempt_at

        last_status_code: int | None
        last_status_code = self.last_status_code

        last_error: None | str
        last_error = self.last_error

        log = []
        for log_item_data in self.log:
            log_item = log_item_data.to_dict()
            log.append(log_item)

        created_at = self.created_at

        delivered_at: None | str
        delivered_at = self.delivered_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "tenant_id": tenant_id,
                "job_id": job_id,
                "event_type": event_type,
                "url": url,
                "payload": payload,
                "status": status,
                "attempts": attempts,
                "next_attempt_at": next_attempt_at,
                "last_status_code": last_status_code,
                "last_error": last_error,
                "log": log,
                "created_at": created_at,
                "delivered_at": delivered_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.webhook_delivery_log_item import WebhookDeliveryLogItem
        from ..models.webhook_delivery_payload import WebhookDeliveryPayload

        d = dict(src_dict)
        id = d.pop("id")

        tenant_id = d.pop("tenant_id")

        def _parse_job_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        job_id = _parse_job_id(d.pop("job_id"))

        event_type = d.pop("event_type")

        url = d.pop("url")

        payload = WebhookDeliveryPayload.from_dict(d.pop("payload"))

        status = d.pop("status")

        attempts = d.pop("attempts")

        next_attempt_at = d.pop("next_attempt_at")

        def _parse_last_status_code(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        last_status_code = _parse_last_status_code(d.pop("last_status_code"))

        def _parse_last_error(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        last_error = _parse_last_error(d.pop("last_error"))

        log = []
        _log = d.pop("log")
        for log_item_data in _log:
            log_item = WebhookDeliveryLogItem.from_dict(log_item_data)

            log.append(log_item)

        created_at = d.pop("created_at")

        def _parse_delivered_at(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        delivered_at = _parse_delivered_at(d.pop("delivered_at"))

        webhook_delivery = cls(
            id=id,
            tenant_id=tenant_id,
            job_id=job_id,
            event_type=event_type,
            url=url,
            payload=payload,
            status=status,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            last_status_code=last_status_code,
            last_error=last_error,
            log=log,
            created_at=created_at,
            delivered_at=delivered_at,
        )

        webhook_delivery.additional_properties = d
        return webhook_delivery

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
