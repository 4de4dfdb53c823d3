"""Studio's job builder: a table of catalogue items, typed by hand or read from a CSV, checked
row by row before the job is submitted.

Owns: the builder's rows exactly as typed (every cell kept, whatever is wrong with it), reading
a CSV into rows (bounded: its bytes, its rows and each cell; UTF-8 only; no NUL), the
downloadable template and its columns, checking each cell against what the tenant may use (its
usable twins by id or display name, the scene presets, the pose presets, the sizes and its own
garment assets), and turning checked rows into a `JobSubmitBody`; any error (a cell's, the
schema's or the jobs capability's `items.<n>.<field>`) is placed on its row and column. A
scene is its own column: a prompt that names a scene preset is refused, never read as one.
Must never submit anything itself (the page calls `CatalogJobs.accept`), never let a cell that
a spreadsheet would run as a formula through (`=`, `+`, `-`, `@`), and never hold a rule of the
jobs capability (its bounds are `JobSubmitBody`'s and `CatalogJobs.check`'s).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import get_args

from pydantic import ValidationError

from service.jobs.presets import BUILTIN_SCENES, SCENE_LABELS, SIZES
from service.schemas import JobSubmitBody
from service.schemas.generate import GarmentCategory, PosePreset
from service.schemas.jobs import MAX_ALT_TEXT_CHARS, MAX_JOB_ITEMS, plain_text

# column -> (label, what it takes): the template's header, the builder's table and the page's help
COLUMNS: dict[str, tuple[str, str]] = {
    "sku": ("SKU", "required; the product's SKU, up to 100 characters: it names the item and its files"),
    "twin": ("Twin", "required; one of your brand's twins, by id or display name"),
    "garments": ("Garment images", "optional; up to 4 garment asset ids of your brand (64 hexadecimal "
                 "characters each), separated by spaces or semicolons"),
    "category": ("Garment category", "required with garment images: " + ", ".join(get_args(GarmentCategory))),
    "scene": ("Scene", "optional; a scene preset (the list on this page); never written into the prompt"),
    "pose": ("Pose", "optional; " + ", ".join(get_args(PosePreset))),
    "size": ("Size", "optional; preview_256, square_512, square_1024 (the default), portrait_4_5 or square_2048"),
    "alt_text": ("Alt text", "optional; the image's alt text for the shop page, up to 250 characters; "
                 "by default made from the twin, the garment and the scene"),
    "prompt": ("Prompt", "what the picture shows, up to 2,000 characters; optional when a scene is chosen"),
}
REQUIRED = ("sku", "twin")
MAX_CSV_BYTES = 256 * 1024
MAX_ROWS = MAX_JOB_ITEMS
MAX_CELL_CHARS = 2000  # the longest cell any column takes (a prompt); a longer one is kept only this far
CELL_LIMITS = {"sku": 100, "twin": 200, "garments": 400, "category": 40, "scene": 64, "pose": 40, "size": 40,
               "alt_text": MAX_ALT_TEXT_CHARS, "prompt": MAX_CELL_CHARS}
FORMULA_START = ("=", "+", "-", "@")  # what spreadsheets run as a formula (OWASP: CSV injection)
DEFAULT_SIZE = "square_1024"
BUILDER_SIZES: dict[str, tuple[int, int]] = {"preview_256": (256, 256), "square_512": (512, 512), **SIZES}
SIZE_LABELS = {"preview_256": "Preview 256", "square_512": "Square 512", "square_1024": "Square 1024",
               "portrait_4_5": "Portrait 4:5", "square_2048": "Square 2048"}
POSES = get_args(PosePreset)
CATEGORIES = get_args(GarmentCategory)
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ASSET_ID = re.compile(r"^[0-9a-f]{64}$")
# where a capability's or the schema's field lands in the table (`items.<n>.<this>`)
_FIELD_COLUMN = {"sku": "sku", "twin_id": "twin", "garments": "garments", "pose": "pose", "size": "size",
                 "width": "size", "height": "size", "alt_text": "alt_text", "prompt": "prompt", "scene": "scene",
                 "garment_description": "prompt", "negative_prompt": "prompt", "use": "twin", "territory": "twin"}


@dataclass(frozen=True)
class Problem:
    """One thing to fix: on a row (1-based) and column, or on the job (`row` None), or the file."""

    message: str
    row: int | None = None
    column: str | None = None

    @property
    def anchor(self) -> str:
        if self.row is not None:
            return f"row-{self.row}-{self.column}" if self.column else f"row-{self.row}"
        return {"title": "job_title", "steps": "job_steps_builder", "csv": "csv_file"}.get(self.column or "", "builder")

    @property
    def where(self) -> str:
        if self.row is None:
            return {"title": "Title", "steps": "Steps", "csv": "CSV file"}.get(self.column or "", "")
        return f"Row {self.row}" + (f", {COLUMNS[self.column][0]}" if self.column in COLUMNS else "")


@dataclass
class Row:
    """One item as typed (`values`, by column) and what is wrong with it (by column)."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def empty(cls, **values: str) -> "Row":
        return cls({column: (values.get(column) or "")[:MAX_CELL_CHARS] for column in COLUMNS})


@dataclass(frozen=True)
class Choices:
    """What the tenant may choose: its usable twins ({id, display_name}), scene presets (name ->
    label), whether a garment asset id is one of its own, and its listed garments (Studio's
    garment list: {asset_id, name, category}, newest first; a row naming one and no category
    takes the listed category)."""

    twins: list[dict]
    scenes: dict[str, str]
    asset_exists: Callable[[str], bool] = lambda asset_id: False
    garments: tuple[dict, ...] = ()

    @classmethod
    def of(cls, twins: list[dict], tenant_scenes: dict, asset_exists: Callable[[str], bool],
           garments: list[dict] = ()) -> "Choices":
        scenes = {name: SCENE_LABELS.get(name, "") for name in BUILTIN_SCENES}
        scenes.update({name: "your brand's preset" for name in sorted(tenant_scenes)})
        return cls(twins, scenes, asset_exists, tuple(garments))

    def listed_category(self, asset_id: str) -> str | None:
        return next((g["category"] for g in self.garments if g["asset_id"] == asset_id), None)

    def twin_id(self, value: str) -> str | None:
        """The twin a cell names, by id or by display name (either case); None if not usable."""
        wanted = value.strip().casefold()
        for twin in self.twins:
            if wanted in (twin["id"].casefold(), twin["display_name"].casefold()):
                return twin["id"]
        return None


# -- reading ------------------------------------------------------------------------------------


def rows_of_form(form) -> list[Row]:
    """The builder's rows as posted: each column is a repeated field, one value per row, in order."""
    columns = {column: [str(v) for v in form.getlist(column)] for column in COLUMNS}
    count = min(max((len(values) for values in columns.values()), default=0), MAX_ROWS + 1)
    return [Row({column: (values[i] if i < len(values) else "")[:MAX_CELL_CHARS + 1]
                 for column, values in columns.items()}) for i in range(count)]


def read_csv(data: bytes) -> tuple[list[Row], list[Problem]]:
    """Rows of an uploaded CSV (a header row naming the columns, then one item per row), and
    what is wrong with the file itself. Bounded: MAX_CSV_BYTES, MAX_ROWS rows, each cell kept up
    to MAX_CELL_CHARS (a longer one is an error on its cell)."""
    size_kib = -(-len(data) // 1024)
    if len(data) > MAX_CSV_BYTES:
        return [], [Problem(f"the file is {size_kib} KiB; a CSV may be at most {MAX_CSV_BYTES // 1024} KiB "
                            f"({MAX_ROWS} rows): split it into several jobs", column="csv")]
    if b"\x00" in data:
        return [], [Problem("the file holds NUL bytes, so it is not a CSV text file (a spreadsheet's own format?): "
                            "save it as “CSV UTF-8” and import that", column="csv")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [Problem(f"the file is not UTF-8 text (byte {exc.start + 1} is not): save it as “CSV UTF-8” "
                            "and import that", column="csv")]
    if not text.strip():
        return [], [Problem("the file is empty: it needs a header row and one row per item", column="csv")]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[Problem] = []
    try:
        header = next(reader)
    except csv.Error as exc:
        return [], [Problem(f"the header row cannot be read as CSV ({exc})", column="csv")]
    names = [unicodedata.normalize("NFKC", h).strip().casefold().replace(" ", "_").replace("-", "_") for h in header]
    names = ["twin" if n == "twin_id" else "garments" if n in ("garment", "garment_asset_ids") else n for n in names]
    unknown = [h for h, n in zip(header, names) if n and n not in COLUMNS]
    if unknown:
        return [], [Problem(f"unknown column {unknown[0][:40]!r}: the columns are {', '.join(COLUMNS)} "
                            "(download the template)", column="csv")]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        return [], [Problem(f"the column {repeated[0]!r} appears twice in the header", column="csv")]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        return [], [Problem(f"the header has no {missing[0]!r} column: the file's first row must name the columns "
                            f"({', '.join(COLUMNS)})", column="csv")]
    rows: list[Row] = []
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(f"line {reader.line_num} of the file cannot be read as CSV ({exc}); "
                                    "rows after it were not read", column="csv"))
            break
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        number += 1
        if number > MAX_ROWS:
            problems.append(Problem(f"the file has more than {MAX_ROWS} rows, the most one job takes: split it",
                                    column="csv"))
            break
        row = Row.empty()
        for name, cell in zip(names, cells):
            if name:
                row.values[name] = cell[:MAX_CELL_CHARS]
                if len(cell) > MAX_CELL_CHARS:
                    row.errors[name] = (f"is {len(cell)} characters long; at most {CELL_LIMITS[name]} "
                                        f"(shown cut to {MAX_CELL_CHARS})")
        if len(cells) > len(names) and any(c.strip() for c in cells[len(names):]):
            row.errors["sku"] = f"this row has {len(cells)} cells but the header names {len(names)} columns"
        rows.append(row)
    if not rows and not problems:
        problems.append(Problem("the file has a header row but no items", column="csv"))
    return rows, problems


# -- checking -----------------------------------------------------------------------------------


def cell_problem(column: str, value: str) -> str | None:
    """What is wrong with one cell on its own (length, control characters, a formula), or None."""
    limit = CELL_LIMITS[column]
    if len(value) > MAX_CELL_CHARS:
        return f"is longer than {MAX_CELL_CHARS} characters; at most {limit} (shown cut)"
    if len(value) > limit:
        return f"is {len(value)} characters long; at most {limit}"
    if any(unicodedata.category(c) == "Cc" or c in _BIDI for c in value):
        return "holds a control character (a line break, a tab, ...): keep the value on one line"
    if value.lstrip(" ").startswith(FORMULA_START):
        return (f"starts with {value.lstrip(' ')[0]!r}, which spreadsheets run as a formula: "
                "remove that first character")
    return None


def check(rows: list[Row], choices: Choices) -> list[Problem]:
    """Check every cell of every row against the tenant's choices; each row's `errors` are set
    (kept ones, from reading the file, stay). Normalises what names the same thing (a twin's
    display name to its id, a scene's case). Returns the problems, row by row."""
    scenes = {name.casefold(): name for name in choices.scenes}
    underscored = {name for name in scenes if "_" in name}
    cache: dict[str, bool] = {}

    def own_asset(asset_id: str) -> bool:
        if asset_id not in cache:
            cache[asset_id] = bool(choices.asset_exists(asset_id))
        return cache[asset_id]

    for row in rows:
        v, errors = row.values, row.errors
        for column in COLUMNS:
            if column not in errors:
                wrong = cell_problem(column, v.get(column, ""))
                if wrong:
                    errors[column] = wrong
        clean = {c: v.get(c, "").strip() for c in COLUMNS}
        if "sku" not in errors and not clean["sku"]:
            errors["sku"] = "give the item's SKU"
        if "twin" not in errors:
            twin = choices.twin_id(clean["twin"]) if clean["twin"] else None
            if not clean["twin"]:
                errors["twin"] = "choose a twin"
            elif twin is None:
                names = ", ".join(t["display_name"] for t in choices.twins) or "none yet"
                errors["twin"] = f"{clean['twin'][:64]!r} is not a twin your brand may use (yours: {names})"
            else:
                v["twin"] = twin
        if "garments" not in errors and clean["garments"]:
            ids = [i for i in re.split(r"[\s,;]+", clean["garments"].lower()) if i]
            bad = next((i for i in ids if not _ASSET_ID.match(i)), None)
            if len(ids) > 4:
                errors["garments"] = f"{len(ids)} garment images; an item takes at most 4"
            elif bad is not None:
                errors["garments"] = f"{bad[:16]!r}… is not an asset id (64 hexadecimal characters)"
            elif (missing := next((i for i in ids if not own_asset(i)), None)) is not None:
                errors["garments"] = f"no garment asset {missing[:12]}… for your brand: upload it first"
            else:
                v["garments"] = " ".join(ids)
        if "category" not in errors:
            category = clean["category"].lower()
            if category and category not in CATEGORIES:
                errors["category"] = f"{clean['category'][:40]!r} is not a garment category ({', '.join(CATEGORIES)})"
            elif clean["garments"] and not category:
                listed = choices.listed_category(v["garments"].split()[0]) if "garments" not in errors else None
                if listed:
                    v["category"] = listed  # the category the garment was listed with
                else:
                    errors["category"] = "say which category the garment is"
            else:
                v["category"] = category
        if "scene" not in errors and clean["scene"]:
            scene = scenes.get(clean["scene"].casefold())
            if scene is None:
                errors["scene"] = f"{clean['scene'][:64]!r} is not a scene preset ({', '.join(choices.scenes)})"
            else:
                v["scene"] = scene
        if "pose" not in errors and clean["pose"]:
            if clean["pose"].lower() not in POSES:
                errors["pose"] = f"{clean['pose'][:40]!r} is not a pose ({', '.join(POSES)})"
            else:
                v["pose"] = clean["pose"].lower()
        if "size" not in errors and clean["size"]:
            if clean["size"].lower() not in BUILDER_SIZES:
                errors["size"] = f"{clean['size'][:40]!r} is not a size ({', '.join(BUILDER_SIZES)})"
            else:
                v["size"] = clean["size"].lower()
        if "prompt" not in errors:
            named = next((part.strip() for part in clean["prompt"].split(",")
                          if part.strip().casefold() in underscored), None)
            if named is not None:
                errors["prompt"] = (f"{named!r} is a scene preset, not words for the picture: choose it in the "
                                    "Scene column and take it out of the prompt")
            elif not clean["prompt"] and not clean["scene"]:
                errors["prompt"] = "write a prompt or choose a scene"
    return [Problem(message, number, column) for number, row in enumerate(rows, 1)
            for column, message in sorted(row.errors.items(), key=lambda kv: list(COLUMNS).index(kv[0]))]


def job_problems(title: str, steps: str) -> tuple[int | None, list[Problem]]:
    """The job's own fields checked as the rows are: its steps (as a number) and its problems."""
    problems = []
    if title.strip():
        wrong = None if len(title) <= 200 else f"is {len(title)} characters long; at most 200"
        try:
            plain_text(title)
        except ValueError as exc:  # PydanticCustomError is one
            wrong = wrong or str(exc)
        if wrong:
            problems.append(Problem(f"the title {wrong}", column="title"))
    number = int(steps) if steps.strip().isdigit() else None
    if number is None or not 1 <= number <= 100:
        problems.append(Problem("steps must be a whole number between 1 and 100", column="steps"))
        number = None
    return number, problems


def item_of(row: Row, steps: int) -> dict:
    """A checked row as a job item (`JobItemSpec`'s fields)."""
    v = {c: row.values.get(c, "").strip() for c in COLUMNS}
    item: dict = {"twin_id": v["twin"], "sku": v["sku"], "steps": steps}
    if v["prompt"]:
        item["prompt"] = v["prompt"]
    if v["scene"]:
        item["scene"] = v["scene"]
    if v["garments"]:
        item["garments"] = [{"asset_id": asset_id, "category": v["category"]} for asset_id in v["garments"].split()]
    if v["pose"]:
        item["pose"] = {"preset": v["pose"]}
    size = v["size"] or DEFAULT_SIZE
    if size in SIZES:
        item["size"] = size
    else:
        item["width"], item["height"] = BUILDER_SIZES[size]
    if v["alt_text"]:
        item["alt_text"] = v["alt_text"]
    return item


def body_of(rows: list[Row], *, title: str, steps: int, review: bool, per_item: bool) -> tuple[JobSubmitBody | None, list[Problem]]:
    """The job's body from checked rows, or the schema's problems placed on their rows."""
    body = {"items": [item_of(row, steps) for row in rows], "review": review, "webhook_per_item": per_item}
    if title.strip():
        body["title"] = title
    try:
        return JobSubmitBody.model_validate(body), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
            problems.append(place(".".join(loc), message, rows))
        return None, problems


def place(where: str | None, message: str, rows: list[Row]) -> Problem:
    """A problem at `where` (`items.<n>.<field>`, `title`, `items`): on its row and column when
    it names one (the row's error is set), else on the job."""
    parts = (where or "").split(".")
    if parts[0] == "title":
        return Problem(message, column="title")
    if len(parts) >= 2 and parts[0] == "items" and parts[1].isdigit() and int(parts[1]) < len(rows):
        number = int(parts[1]) + 1
        column = _FIELD_COLUMN.get(parts[2] if len(parts) > 2 else "", "sku")
        if len(parts) > 4 and parts[2] == "garments" and parts[4] == "category":
            column = "category"
        rows[number - 1].errors.setdefault(column, message)
        return Problem(message, number, column)
    return Problem(message)


# -- the template -------------------------------------------------------------------------------


def template_csv(twins: list[dict]) -> bytes:
    """The template to download: the header, and two example rows with the tenant's own twins."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    first = twins[0]["id"] if twins else "your-twin-id"
    second = twins[1]["id"] if len(twins) > 1 else first
    writer.writerow(["AW26-COAT-RED-M", first, "", "", "studio_white", "front", DEFAULT_SIZE,
                     "", "a red wool coat, knee length"])
    writer.writerow(["AW26-DRESS-LINEN-S", second, "", "", "street", "walking", "portrait_4_5",
                     "Linen summer dress on a city street", "a linen summer dress"])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # with a BOM: spreadsheets then read it as UTF-8


def csv_cell(value) -> str:
    """A value for a CSV Studio hands out: one a spreadsheet would run as a formula is quoted
    with a leading apostrophe (shown, never run)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START + ("\t", "\r")) else text
