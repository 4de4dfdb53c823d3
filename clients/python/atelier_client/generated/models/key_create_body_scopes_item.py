from enum import StrEnum


class KeyCreateBodyScopesItem(StrEnum):
    ADMIN = "admin"
    GENERATE = "generate"
    GUARDIAN = "guardian"
    LICENSING = "licensing"
    REPRESENTATIVE = "representative"
    TALENT = "talent"
    USAGE = "usage"
    VERIFY = "verify"

    def __str__(self) -> str:
        return str(self.value)
