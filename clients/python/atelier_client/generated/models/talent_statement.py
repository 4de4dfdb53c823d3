from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.statement_row import StatementRow
    from ..models.talent_statement_amounts import TalentStatementAmounts


T = TypeVar("T", bound="TalentStatement")


@_attrs_define
class TalentStatement:
    """A talent's statement for a period: images per twin, brand, use and consent version,
    counted over every gateway's audit record; the same query later gives the same numbers.

        Attributes:
            from_ (str): First day (UTC), YYYY-MM-DD.
            to (str): Last day (UTC), inclusive.
            rows (list[StatementRow]):
            images (int): Images in the period, all rows.
            counted (str): What the numbers count.
            amounts (TalentStatementAmounts | Unset): Amount due per currency (decimal).
            due (None | str | Unset): When payment is due: the period's last day + 45 days.
    """

    from_: str
    to: str
    rows: list[StatementRow]
    images: int
    counted: str
    amounts: TalentStatementAmounts | Unset = UNSET
    due: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from_ = self.from_

        to = self.to

        rows = []
        for rows_item_data in self.rows:
            rows_item = rows_item_data.to_dict()
            rows.append(rows_item)

        images = self.images

        counted = self.counted

        amounts: dict[str, Any] | Unset = UNSET
        if not isinstance(self.amounts, Unset):
            amounts = self.amounts.to_dict()

        due: None | str | Unset
        if isinstance(self.due, Unset):
            due = UNSET
        else:
            due = self.due

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "from": from_,
                "to": to,
                "rows": rows,
                "images": images,
                "counted": counted,
            }
        )
        if amounts is not UNSET:
            field_dict["amounts"] = amounts
        if due is not UNSET:
            field_dict["due"] = due

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.statement_row import StatementRow
        from ..models.talent_statement_amounts import TalentStatementAmounts

        d = dict(src_dict)
        from_ = d.pop("from")

        to = d.pop("to")

        rows = []
        _rows = d.pop("rows")
        for rows_item_data in _rows:
            rows_item = StatementRow.from_dict(rows_item_data)

            rows.append(rows_item)

        images = d.pop("images")

        counted = d.pop("counted")

        _amounts = d.pop("amounts", UNSET)
        amounts: TalentStatementAmounts | Unset
        if isinstance(_amounts, Unset):
            amounts = UNSET
        else:
            amounts = TalentStatementAmounts.from_dict(_amounts)

        def _parse_due(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        due = _parse_due(d.pop("due", UNSET))

        talent_statement = cls(
            from_=from_,
            to=to,
            rows=rows,
            images=images,
            counted=counted,
            amounts=amounts,
            due=due,
        )

        talent_statement.additional_properties = d
        return talent_statement

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
