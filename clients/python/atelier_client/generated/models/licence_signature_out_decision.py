from enum import StrEnum


class LicenceSignatureOutDecision(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"

    def __str__(self) -> str:
        return str(self.value)
