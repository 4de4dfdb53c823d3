from enum import StrEnum


class ListAllLicencesStatusType0(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REQUESTED = "requested"
    REVOKED = "revoked"

    def __str__(self) -> str:
        return str(self.value)
