from enum import StrEnum


class JobItemSpecSizeType0(StrEnum):
    PORTRAIT_4_5 = "portrait_4_5"
    SQUARE_1024 = "square_1024"
    SQUARE_2048 = "square_2048"

    def __str__(self) -> str:
        return str(self.value)
