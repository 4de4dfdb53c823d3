from enum import StrEnum


class PoseRefPresetType0(StrEnum):
    BACK = "back"
    FRONT = "front"
    SEATED = "seated"
    THREE_QUARTER = "three-quarter"
    WALKING = "walking"

    def __str__(self) -> str:
        return str(self.value)
