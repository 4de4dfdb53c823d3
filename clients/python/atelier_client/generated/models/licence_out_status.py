from enum import StrEnum


class LicenceOutStatus(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REQUESTED = "requested"
    REVOKED = "revoked"

    def __str__(self) -> str:
        return str(self.value)
