from enum import StrEnum


class VerifyResponseFoundByType0(StrEnum):
    MANIFEST = "manifest"
    WATERMARK = "watermark"

    def __str__(self) -> str:
        return str(self.value)
