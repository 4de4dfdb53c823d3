from enum import StrEnum


class VerifyResponseTrainingMiningType0(StrEnum):
    ALLOWED = "allowed"
    CONSTRAINED = "constrained"
    MIXED = "mixed"
    NOTALLOWED = "notAllowed"

    def __str__(self) -> str:
        return str(self.value)
