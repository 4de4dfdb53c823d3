from enum import StrEnum


class JobSummaryOutput(StrEnum):
    INLINE = "inline"
    S3 = "s3"

    def __str__(self) -> str:
        return str(self.value)
