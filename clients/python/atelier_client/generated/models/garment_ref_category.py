from enum import StrEnum


class GarmentRefCategory(StrEnum):
    ACCESSORIES = "accessories"
    BOTTOMS = "bottoms"
    LINGERIE = "lingerie"
    ONE_PIECES = "one-pieces"
    OUTERWEAR = "outerwear"
    SHOES = "shoes"
    SWIMWEAR = "swimwear"
    TOPS = "tops"

    def __str__(self) -> str:
        return str(self.value)
