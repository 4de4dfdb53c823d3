from enum import StrEnum


class AddAssetJsonBodyKind(StrEnum):
    GARMENT = "garment"
    MASK = "mask"
    POSE = "pose"
    SOURCE = "source"

    def __str__(self) -> str:
        return str(self.value)
