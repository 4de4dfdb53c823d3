from enum import StrEnum


class ConsentTermsState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"

    def __str__(self) -> str:
        return str(self.value)
