from enum import StrEnum


class LicenceSignatureOutRole(StrEnum):
    GUARDIAN = "guardian"
    PERSON = "person"
    REPRESENTATIVE = "representative"

    def __str__(self) -> str:
        return str(self.value)
