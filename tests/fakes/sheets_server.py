"""A local HTTP server that speaks the part of the Google Sheets API v4 that gspread uses.

It keeps every cell in memory exactly as received, so a test reads back what a
researcher would see in the sheet:

- ``valueInputOption=RAW`` stores values as sent. ``USER_ENTERED`` parses them
  the way the Sheets editor does, so "0012" becomes the number 12 and "=..."
  becomes a formula that shows its result. A test can prove which one a client
  used.
- Writes beyond the grid fail with Google's 400 "exceeds grid limits" error, and
  the grid grows only through ``batchUpdate`` (addSheet, updateSheetProperties,
  appendDimension) or ``values:append``.
- Write requests (and, when asked, read requests) count against a per-user
  quota over a sliding window. Beyond it the server responds with 429 and Google's
  RESOURCE_EXHAUSTED error body. Google refills its per-minute quota per minute,
  so the sliding window is a little stricter than the real service.
- Faults can be injected: 429, 500, 503, 403, slow answers (the request is
  applied after the delay), and a connection closed before or after a write
  was applied (optionally held open for a delay first).

Run it as a process for load tests::

    python -m tests.fakes.sheets_server --port 8765 --writes-per-minute 60

and read the rows with ``GET /_fake/spreadsheets/<id>/values/<worksheet>``.
"""

import argparse
import ast
import copy
import json
import logging
import operator
import re
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

DEFAULT_ROWS = 1000
DEFAULT_COLUMNS = 26
FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "unavailable",
    "forbidden",
    "slow",
    "drop_before_apply",
    "drop_after_apply",
)


class ApiFailure(Exception):
    """An error response of the real API: an HTTP status and Google's error body."""

    def __init__(self, status: HTTPStatus, message: str, *, reason: str = "", details=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.details = details or []

    def body(self) -> dict:
        error = {
            "code": int(self.status),
            "message": self.message,
            "status": self.reason or _STATUS_NAMES.get(self.status, "UNKNOWN"),
        }
        if self.details:
            error["details"] = self.details
        return {"error": error}


_STATUS_NAMES = {
    HTTPStatus.BAD_REQUEST: "INVALID_ARGUMENT",
    HTTPStatus.FORBIDDEN: "PERMISSION_DENIED",
    HTTPStatus.NOT_FOUND: "NOT_FOUND",
    HTTPStatus.TOO_MANY_REQUESTS: "RESOURCE_EXHAUSTED",
    HTTPStatus.INTERNAL_SERVER_ERROR: "INTERNAL",
    HTTPStatus.SERVICE_UNAVAILABLE: "UNAVAILABLE",
}


def quota_exceeded(kind: str, limit: int) -> ApiFailure:
    metric = "Write requests" if kind == "write" else "Read requests"
    limit_name = f"{metric} per minute per user"
    return ApiFailure(
        HTTPStatus.TOO_MANY_REQUESTS,
        f"Quota exceeded for quota metric '{metric}' and limit '{limit_name}' of service "
        f"'sheets.googleapis.com' for consumer 'project_number:0'.",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": "sheets.googleapis.com",
                    "quota_metric": f"sheets.googleapis.com/{kind}_requests",
                    "quota_limit": f"{kind.capitalize()}RequestsPerMinutePerUser",
                    "quota_limit_value": str(limit),
                    "consumer": "projects/0",
                },
            }
        ],
    )


# A1 notation ---------------------------------------------------------------


def column_letters(number: int) -> str:
    letters = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


_CELL = re.compile(r"^([A-Za-z]*)(\d*)$")


@dataclass(frozen=True)
class GridRange:
    """A rectangle of 1-based rows and columns. An end of None runs to the grid's edge.

    ``open_ended`` marks a single-cell range such as ``A2``, which a write
    extends to the size of its values, as the real API does.
    """

    sheet: str
    start_row: int
    start_column: int
    end_row: int | None
    end_column: int | None
    open_ended: bool = False


def quote_title(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def a1(sheet: str, start_row: int, start_column: int, end_row: int, end_column: int) -> str:
    start = f"{column_letters(start_column)}{start_row}"
    end = f"{column_letters(end_column)}{end_row}"
    return (
        f"{quote_title(sheet)}!{start}" if start == end else f"{quote_title(sheet)}!{start}:{end}"
    )


def parse_range(text: str, *, sheet_titles: list[str]) -> GridRange:
    """Parse A1 notation such as ``'My sheet'!A2:AA10``, ``A:A`` or a bare sheet title."""
    sheet, cells = _split_sheet(text, sheet_titles=sheet_titles)
    if sheet not in sheet_titles:
        raise ApiFailure(HTTPStatus.BAD_REQUEST, f"Unable to parse range: {text}")
    if cells is None:
        return GridRange(sheet, 1, 1, None, None)

    parts = cells.split(":")
    if len(parts) > 2:
        raise ApiFailure(HTTPStatus.BAD_REQUEST, f"Unable to parse range: {text}")
    matches = [_CELL.match(part) for part in parts]
    if any(match is None or part == "" for match, part in zip(matches, parts, strict=True)):
        raise ApiFailure(HTTPStatus.BAD_REQUEST, f"Unable to parse range: {text}")
    start_letters, start_digits = matches[0].groups()
    start_column = column_number(start_letters) if start_letters else 1
    start_row = int(start_digits) if start_digits else 1
    if len(parts) == 1:
        if not (start_letters and start_digits):
            raise ApiFailure(HTTPStatus.BAD_REQUEST, f"Unable to parse range: {text}")
        return GridRange(sheet, start_row, start_column, start_row, start_column, open_ended=True)

    end_letters, end_digits = matches[1].groups()
    end_column = column_number(end_letters) if end_letters else None
    end_row = int(end_digits) if end_digits else None
    if start_row < 1 or (end_row is not None and end_row < start_row):
        raise ApiFailure(HTTPStatus.BAD_REQUEST, f"Unable to parse range: {text}")
    if end_column is not None and end_column < start_column:
        raise ApiFailure(HTTPStatus.BAD_REQUEST, f"Unable to parse range: {text}")
    return GridRange(sheet, start_row, start_column, end_row, end_column)


def _split_sheet(text: str, *, sheet_titles: list[str]) -> tuple[str, str | None]:
    if text.startswith("'"):
        index = 1
        title = []
        while index < len(text):
            if text[index] == "'":
                if text[index + 1 : index + 2] == "'":
                    title.append("'")
                    index += 2
                    continue
                break
            title.append(text[index])
            index += 1
        rest = text[index + 1 :]
        if rest == "":
            return "".join(title), None
        if not rest.startswith("!"):
            raise ApiFailure(HTTPStatus.BAD_REQUEST, f"Unable to parse range: {text}")
        return "".join(title), rest[1:]
    if "!" in text:
        title, cells = text.rsplit("!", 1)
        return title, cells
    if text in sheet_titles:
        return text, None
    # Without a sheet name a range refers to the first sheet.
    return (sheet_titles[0] if sheet_titles else ""), text


# Cell values -----------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    value: str | int | float | bool
    formula: str | None = None


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_PERCENT = re.compile(r"^([+-]?(\d+\.?\d*|\.\d+))%$")
_HYPERLINK = re.compile(r'^HYPERLINK\(\s*"([^"]*)"\s*(?:[,;]\s*"([^"]*)"\s*)?\)$', re.IGNORECASE)
_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def raw_cell(value) -> Cell:
    return Cell(value)


def user_entered_cell(value) -> Cell:
    """Parse a value as the Sheets editor parses typed text."""
    if not isinstance(value, str):
        return Cell(value)
    if value.startswith("="):
        return Cell(_evaluate_formula(value[1:]), formula=value)
    if value.startswith("'"):
        return Cell(value[1:])
    if _NUMBER.match(value):
        number = float(value)
        return Cell(int(number) if number.is_integer() and "e" not in value.lower() else number)
    percent = _PERCENT.match(value)
    if percent:
        return Cell(float(percent.group(1)) / 100)
    if value.upper() in {"TRUE", "FALSE"}:
        return Cell(value.upper() == "TRUE")
    return Cell(value)


def _evaluate_formula(expression: str):
    link = _HYPERLINK.match(expression.strip())
    if link:
        return link.group(2) if link.group(2) is not None else link.group(1)
    try:
        return _evaluate_arithmetic(ast.parse(expression.strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return "#NAME?"


def _evaluate_arithmetic(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left = _evaluate_arithmetic(node.left)
        right = _evaluate_arithmetic(node.right)
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _ARITHMETIC:
        return _ARITHMETIC[type(node.op)](_evaluate_arithmetic(node.operand))
    raise ValueError("not a formula this fake evaluates")


def render(cell: Cell, option: str):
    if option == "FORMULA" and cell.formula is not None:
        return cell.formula
    if option in {"UNFORMATTED_VALUE", "FORMULA"}:
        return cell.value
    return formatted_value(cell.value)


def formatted_value(value) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


# Spreadsheet state -----------------------------------------------------------


@dataclass
class Worksheet:
    sheet_id: int
    title: str
    index: int
    row_count: int
    column_count: int
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)

    def properties(self) -> dict:
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": self.index,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": self.row_count, "columnCount": self.column_count},
        }

    def resize(self, *, rows: int | None = None, columns: int | None = None) -> None:
        if rows is not None:
            self.row_count = rows
        if columns is not None:
            self.column_count = columns
        self.cells = {
            (row, column): cell
            for (row, column), cell in self.cells.items()
            if row <= self.row_count and column <= self.column_count
        }

    def last_row(self, start_column: int, end_column: int) -> int:
        rows = [
            row
            for (row, column), cell in self.cells.items()
            if start_column <= column <= end_column and cell.value != ""
        ]
        return max(rows, default=0)


@dataclass
class Spreadsheet:
    spreadsheet_id: str
    title: str
    sheets: list[Worksheet] = field(default_factory=list)
    next_sheet_id: int = 0

    def add_sheet(self, title: str, rows: int, columns: int, index: int | None = None) -> Worksheet:
        if any(sheet.title == title for sheet in self.sheets):
            raise ApiFailure(
                HTTPStatus.BAD_REQUEST,
                f'Invalid requests[0].addSheet: A sheet with the name "{title}" already exists. '
                "Please enter another name.",
            )
        worksheet = Worksheet(
            sheet_id=self.next_sheet_id,
            title=title,
            index=len(self.sheets) if index is None else index,
            row_count=rows,
            column_count=columns,
        )
        self.next_sheet_id += 1
        self.sheets.append(worksheet)
        return worksheet

    def sheet(self, title: str) -> Worksheet:
        for sheet in self.sheets:
            if sheet.title == title:
                return sheet
        raise ApiFailure(HTTPStatus.BAD_REQUEST, f"Unable to parse range: {quote_title(title)}")

    def sheet_by_id(self, sheet_id: int) -> Worksheet:
        for sheet in self.sheets:
            if sheet.sheet_id == sheet_id:
                return sheet
        raise ApiFailure(HTTPStatus.BAD_REQUEST, f"No grid with id: {sheet_id}")

    def titles(self) -> list[str]:
        return [sheet.title for sheet in self.sheets]

    def metadata(self) -> dict:
        return {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {
                "title": self.title,
                "locale": "en_US",
                "timeZone": "Etc/GMT",
                "autoRecalc": "ON_CHANGE",
            },
            "sheets": [{"properties": sheet.properties()} for sheet in self.sheets],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit",
        }


@dataclass
class Fault:
    kind: str
    remaining: int
    delay: float
    applies_to: str

    def matches(self, request_kind: str) -> bool:
        return self.applies_to == "any" or self.applies_to == request_kind


@dataclass(frozen=True)
class WriteRecord:
    """One range of values a request wrote: where, and the values as stored."""

    kind: str
    sheet: str
    start_row: int
    start_column: int
    values: list[list]


class SheetsState:
    """Spreadsheets, quotas and faults, shared by the request handler threads."""

    def __init__(
        self,
        *,
        writes_per_minute: int | None = 60,
        reads_per_minute: int | None = None,
        quota_window: float = 60.0,
    ):
        self.lock = threading.Lock()
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.writes_per_minute = writes_per_minute
        self.reads_per_minute = reads_per_minute
        self.quota_window = quota_window
        self._recent: dict[str, deque[float]] = {"write": deque(), "read": deque()}
        self.faults: list[Fault] = []
        self.write_log: list[WriteRecord] = []
        self.stats: dict[str, int] = {
            "requests": 0,
            "write_requests": 0,
            "read_requests": 0,
            "quota_rejections": 0,
            "faults_served": 0,
            "authorized_requests": 0,
        }

    # Setup, used by tests and the command line.

    def add_spreadsheet(self, spreadsheet_id: str, *, title: str = "Responses") -> Spreadsheet:
        with self.lock:
            spreadsheet = Spreadsheet(spreadsheet_id=spreadsheet_id, title=title)
            spreadsheet.add_sheet("Sheet1", DEFAULT_ROWS, DEFAULT_COLUMNS)
            self.spreadsheets[spreadsheet_id] = spreadsheet
            return spreadsheet

    def add_worksheet(self, spreadsheet_id: str, title: str, *, rows: int, columns: int) -> None:
        with self.lock:
            self.spreadsheet(spreadsheet_id).add_sheet(title, rows, columns)

    def inject(self, kind: str, *, times: int = 1, delay: float = 0.0, applies_to: str = "write"):
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}, expected one of {', '.join(FAULT_KINDS)}")
        if applies_to not in {"write", "read", "any"}:
            raise ValueError(f"applies_to={applies_to!r} must be write, read or any")
        with self.lock:
            self.faults.append(Fault(kind, times, delay, applies_to))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def values(self, spreadsheet_id: str, title: str, *, render_option="FORMATTED_VALUE"):
        with self.lock:
            sheet = self.spreadsheet(spreadsheet_id).sheet(title)
            return _read(sheet, GridRange(title, 1, 1, None, None), render_option)

    def grid_size(self, spreadsheet_id: str, title: str) -> tuple[int, int]:
        with self.lock:
            sheet = self.spreadsheet(spreadsheet_id).sheet(title)
            return sheet.row_count, sheet.column_count

    def snapshot_stats(self) -> dict[str, int]:
        with self.lock:
            return dict(self.stats)

    # Request processing.

    def spreadsheet(self, spreadsheet_id: str) -> Spreadsheet:
        try:
            return self.spreadsheets[spreadsheet_id]
        except KeyError:
            raise ApiFailure(HTTPStatus.NOT_FOUND, "Requested entity was not found.") from None

    def take_fault(self, request_kind: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(request_kind):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    self.stats["faults_served"] += 1
                    return fault
        return None

    def admit(self, request_kind: str) -> None:
        """Count a request against its quota, or raise 429 when the window is full."""
        limit = self.writes_per_minute if request_kind == "write" else self.reads_per_minute
        now = time.monotonic()
        with self.lock:
            self.stats["requests"] += 1
            recent = self._recent[request_kind]
            while recent and recent[0] <= now - self.quota_window:
                recent.popleft()
            if limit is not None and len(recent) >= limit:
                self.stats["quota_rejections"] += 1
                raise quota_exceeded(request_kind, limit)
            recent.append(now)
            self.stats[f"{request_kind}_requests"] += 1

    def handle(self, method: str, route: "Route", query: dict, body: dict | None) -> dict:
        with self.lock:
            spreadsheet = self.spreadsheet(route.spreadsheet_id)
            if route.action == "metadata" and method == "GET":
                return spreadsheet.metadata()
            if route.action == "batchUpdate" and method == "POST":
                return self._batch_update(spreadsheet, body or {})
            if route.action == "values" and method == "GET":
                return self._values_get(spreadsheet, route.range, query)
            if route.action == "values" and method == "PUT":
                return self._values_update(spreadsheet, route.range, query, body or {})
            if route.action == "append" and method == "POST":
                return self._values_append(spreadsheet, route.range, query, body or {})
            if route.action == "clear" and method == "POST":
                return self._values_clear(spreadsheet, [route.range])
            if route.action == "values:batchUpdate" and method == "POST":
                return self._values_batch_update(spreadsheet, body or {})
            if route.action == "values:batchClear" and method == "POST":
                return self._values_clear(spreadsheet, (body or {}).get("ranges", []))
            if route.action == "values:batchGet" and method == "GET":
                return self._values_batch_get(spreadsheet, query)
        raise ApiFailure(HTTPStatus.NOT_FOUND, f"Method {method} is not supported for this path.")

    def _batch_update(self, spreadsheet: Spreadsheet, body: dict) -> dict:
        # Google applies all requests of a batchUpdate or none of them.
        saved = copy.deepcopy(spreadsheet.sheets), spreadsheet.next_sheet_id
        replies = []
        try:
            for index, request in enumerate(body.get("requests", [])):
                replies.append(self._apply_request(spreadsheet, index, request))
        except ApiFailure:
            spreadsheet.sheets, spreadsheet.next_sheet_id = saved
            raise
        return {"spreadsheetId": spreadsheet.spreadsheet_id, "replies": replies}

    def _apply_request(self, spreadsheet: Spreadsheet, index: int, request: dict) -> dict:
        if "addSheet" in request:
            properties = request["addSheet"].get("properties", {})
            grid = properties.get("gridProperties", {})
            sheet = spreadsheet.add_sheet(
                properties.get("title") or f"Sheet{len(spreadsheet.sheets) + 1}",
                grid.get("rowCount", DEFAULT_ROWS),
                grid.get("columnCount", DEFAULT_COLUMNS),
                properties.get("index"),
            )
            return {"addSheet": {"properties": sheet.properties()}}
        if "updateSheetProperties" in request:
            update = request["updateSheetProperties"]
            properties = update.get("properties", {})
            sheet = spreadsheet.sheet_by_id(properties.get("sheetId", 0))
            fields = {name.strip() for name in update.get("fields", "").split(",") if name}
            grid = properties.get("gridProperties", {})
            if "title" in fields:
                sheet.title = properties["title"]
            sheet.resize(
                rows=grid["rowCount"] if "gridProperties/rowCount" in fields else None,
                columns=grid["columnCount"] if "gridProperties/columnCount" in fields else None,
            )
            return {}
        if "appendDimension" in request:
            append = request["appendDimension"]
            sheet = spreadsheet.sheet_by_id(append.get("sheetId", 0))
            length = int(append.get("length", 0))
            if length < 1:
                raise ApiFailure(
                    HTTPStatus.BAD_REQUEST,
                    f"Invalid requests[{index}].appendDimension: length must be positive.",
                )
            if append.get("dimension") == "COLUMNS":
                sheet.resize(columns=sheet.column_count + length)
            else:
                sheet.resize(rows=sheet.row_count + length)
            return {}
        kinds = ", ".join(request) or "empty request"
        raise ApiFailure(
            HTTPStatus.BAD_REQUEST, f"Invalid requests[{index}]: {kinds} is not supported here."
        )

    def _values_get(self, spreadsheet: Spreadsheet, text: str, query: dict) -> dict:
        grid = parse_range(text, sheet_titles=spreadsheet.titles())
        sheet = spreadsheet.sheet(grid.sheet)
        _check_inside(sheet, grid, grid.end_row or grid.start_row, grid.end_column or 1)
        values = _read(sheet, grid, query.get("valueRenderOption", "FORMATTED_VALUE"))
        end_row, end_column = _clip(sheet, grid)
        reply = {
            "range": a1(sheet.title, grid.start_row, grid.start_column, end_row, end_column),
            "majorDimension": "ROWS",
        }
        if query.get("majorDimension") == "COLUMNS":
            values = [list(column) for column in zip(*_pad(values), strict=True)]
            reply["majorDimension"] = "COLUMNS"
        if values:
            reply["values"] = values
        return reply

    def _values_batch_get(self, spreadsheet: Spreadsheet, query: dict) -> dict:
        ranges = query.get("ranges_list", [])
        return {
            "spreadsheetId": spreadsheet.spreadsheet_id,
            "valueRanges": [self._values_get(spreadsheet, text, query) for text in ranges],
        }

    def _values_update(self, spreadsheet, text: str, query: dict, body: dict) -> dict:
        option = _input_option(query.get("valueInputOption"))
        result = self._write(spreadsheet, text, body, option, kind="update")
        return {"spreadsheetId": spreadsheet.spreadsheet_id, **result}

    def _values_batch_update(self, spreadsheet: Spreadsheet, body: dict) -> dict:
        option = _input_option(body.get("valueInputOption"))
        saved = copy.deepcopy(spreadsheet.sheets)
        responses = []
        try:
            for data in body.get("data", []):
                responses.append(
                    {
                        "spreadsheetId": spreadsheet.spreadsheet_id,
                        **self._write(
                            spreadsheet, data.get("range", ""), data, option, kind="batch_update"
                        ),
                    }
                )
        except ApiFailure:
            spreadsheet.sheets = saved
            raise
        return {
            "spreadsheetId": spreadsheet.spreadsheet_id,
            "totalUpdatedRows": sum(item["updatedRows"] for item in responses),
            "totalUpdatedColumns": max((item["updatedColumns"] for item in responses), default=0),
            "totalUpdatedCells": sum(item["updatedCells"] for item in responses),
            "totalUpdatedSheets": len({item["updatedRange"].split("!")[0] for item in responses}),
            "responses": responses,
        }

    def _write(self, spreadsheet, text: str, body: dict, option: str, *, kind: str) -> dict:
        grid = parse_range(text, sheet_titles=spreadsheet.titles())
        sheet = spreadsheet.sheet(grid.sheet)
        values = _values_matrix(body)
        height = len(values)
        width = max((len(row) for row in values), default=0)
        if height == 0 or width == 0:
            return {"updatedRange": text, "updatedRows": 0, "updatedColumns": 0, "updatedCells": 0}

        end_row = grid.start_row + height - 1
        end_column = grid.start_column + width - 1
        if not grid.open_ended:
            limit_row = grid.end_row or sheet.row_count
            limit_column = grid.end_column or sheet.column_count
            if end_row > limit_row:
                raise ApiFailure(
                    HTTPStatus.BAD_REQUEST,
                    f"Requested writing within range [{text}], but tried writing to row "
                    f"[{end_row}]",
                )
            if end_column > limit_column:
                raise ApiFailure(
                    HTTPStatus.BAD_REQUEST,
                    f"Requested writing within range [{text}], but tried writing to column "
                    f"[{column_letters(end_column)}]",
                )
        _check_inside(
            sheet, grid, max(end_row, grid.end_row or 0), max(end_column, grid.end_column or 0)
        )

        parse = raw_cell if option == "RAW" else user_entered_cell
        stored = []
        for row_offset, row in enumerate(values):
            stored_row = []
            for column_offset, value in enumerate(row):
                if value is None:
                    # The API skips nulls and leaves those cells unchanged.
                    stored_row.append(None)
                    continue
                position = (grid.start_row + row_offset, grid.start_column + column_offset)
                cell = parse(value)
                if cell.value == "" and cell.formula is None:
                    sheet.cells.pop(position, None)
                else:
                    sheet.cells[position] = cell
                stored_row.append(cell.value)
            stored.append(stored_row)

        self.write_log.append(
            WriteRecord(kind, sheet.title, grid.start_row, grid.start_column, stored)
        )
        return {
            "updatedRange": a1(sheet.title, grid.start_row, grid.start_column, end_row, end_column),
            "updatedRows": height,
            "updatedColumns": width,
            "updatedCells": sum(len(row) for row in values),
        }

    def _values_append(self, spreadsheet, text: str, query: dict, body: dict) -> dict:
        option = _input_option(query.get("valueInputOption"))
        grid = parse_range(text, sheet_titles=spreadsheet.titles())
        sheet = spreadsheet.sheet(grid.sheet)
        values = _values_matrix(body)
        width = max((len(row) for row in values), default=0)
        last_column = grid.end_column or max(sheet.column_count, grid.start_column + width - 1)
        start_row = sheet.last_row(grid.start_column, last_column) + 1
        needed_rows = start_row + len(values) - 1
        # Unlike values.update, append grows the grid to fit the new rows.
        if needed_rows > sheet.row_count:
            sheet.resize(rows=needed_rows)
        if grid.start_column + width - 1 > sheet.column_count:
            sheet.resize(columns=grid.start_column + width - 1)
        target = a1(sheet.title, start_row, grid.start_column, start_row, grid.start_column)
        result = self._write(spreadsheet, target, body, option, kind="append")
        return {
            "spreadsheetId": spreadsheet.spreadsheet_id,
            "tableRange": text,
            "updates": {"spreadsheetId": spreadsheet.spreadsheet_id, **result},
        }

    def _values_clear(self, spreadsheet: Spreadsheet, ranges: list[str]) -> dict:
        cleared = []
        for text in ranges:
            grid = parse_range(text, sheet_titles=spreadsheet.titles())
            sheet = spreadsheet.sheet(grid.sheet)
            _check_inside(sheet, grid, grid.end_row or grid.start_row, grid.end_column or 1)
            end_row, end_column = _clip(sheet, grid)
            for position in [
                position
                for position in sheet.cells
                if grid.start_row <= position[0] <= end_row
                and grid.start_column <= position[1] <= end_column
            ]:
                del sheet.cells[position]
            cleared.append(a1(sheet.title, grid.start_row, grid.start_column, end_row, end_column))
        self.write_log.append(WriteRecord("clear", "", 0, 0, [[text] for text in cleared]))
        if len(ranges) == 1:
            return {"spreadsheetId": spreadsheet.spreadsheet_id, "clearedRange": cleared[0]}
        return {"spreadsheetId": spreadsheet.spreadsheet_id, "clearedRanges": cleared}


def _input_option(option: str | None) -> str:
    if option not in {"RAW", "USER_ENTERED"}:
        raise ApiFailure(
            HTTPStatus.BAD_REQUEST,
            "Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED"
            if option is None
            else f"Invalid value at 'value_input_option' ({option})",
        )
    return option


def _values_matrix(body: dict) -> list[list]:
    values = body.get("values") or []
    if body.get("majorDimension") == "COLUMNS":
        values = [list(row) for row in zip(*_pad(values), strict=True)]
    return values


def _pad(values: list[list]) -> list[list]:
    width = max((len(row) for row in values), default=0)
    return [row + [""] * (width - len(row)) for row in values]


def _clip(sheet: Worksheet, grid: GridRange) -> tuple[int, int]:
    end_row = min(grid.end_row or sheet.row_count, sheet.row_count)
    end_column = min(grid.end_column or sheet.column_count, sheet.column_count)
    return end_row, end_column


def _check_inside(sheet: Worksheet, grid: GridRange, last_row: int, last_column: int) -> None:
    if last_row > sheet.row_count or last_column > sheet.column_count:
        end = f"{column_letters(max(last_column, grid.start_column))}{max(last_row, 1)}"
        start = f"{column_letters(grid.start_column)}{grid.start_row}"
        raise ApiFailure(
            HTTPStatus.BAD_REQUEST,
            f"Range ({quote_title(sheet.title)}!{start}:{end}) exceeds grid limits. "
            f"Max rows: {sheet.row_count}, max columns: {sheet.column_count}",
        )


def _read(sheet: Worksheet, grid: GridRange, render_option: str) -> list[list]:
    end_row, end_column = _clip(sheet, grid)
    rows = []
    for row in range(grid.start_row, end_row + 1):
        values = [
            render(sheet.cells[(row, column)], render_option)
            if (row, column) in sheet.cells
            else ""
            for column in range(grid.start_column, end_column + 1)
        ]
        # The API drops trailing empty cells of a row and trailing empty rows.
        while values and values[-1] == "":
            values.pop()
        rows.append(values)
    while rows and not rows[-1]:
        rows.pop()
    return rows


# HTTP --------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    spreadsheet_id: str
    action: str
    range: str = ""


_API_PATH = re.compile(r"^/v4/spreadsheets/([A-Za-z0-9_-]+)(.*)$")


def parse_route(path: str) -> Route | None:
    """Map an API path (still percent-encoded) to its spreadsheet and operation."""
    match = _API_PATH.match(path)
    if match is None:
        return None
    spreadsheet_id, rest = match.groups()
    if rest == "":
        return Route(spreadsheet_id, "metadata")
    if rest == ":batchUpdate":
        return Route(spreadsheet_id, "batchUpdate")
    if rest in {"/values:batchUpdate", "/values:batchClear", "/values:batchGet"}:
        return Route(spreadsheet_id, rest.removeprefix("/"))
    if rest.startswith("/values/"):
        encoded = rest.removeprefix("/values/")
        # gspread percent-encodes the range, so a literal colon starts the verb.
        for verb in ("append", "clear"):
            if encoded.endswith(f":{verb}"):
                return Route(spreadsheet_id, verb, unquote(encoded.removesuffix(f":{verb}")))
        return Route(spreadsheet_id, "values", unquote(encoded))
    return None


def request_kind(method: str) -> str:
    """Return the quota a request counts against: GET reads, every other method writes."""
    return "read" if method == "GET" else "write"


class SheetsRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSheets/1.0"

    def do_GET(self):
        self._dispatch("GET")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_POST(self):
        self._dispatch("POST")

    def log_message(self, format, *args):
        logger.debug("fake sheets %s", format % args)

    @property
    def state(self) -> SheetsState:
        return self.server.state

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = self._read_body()
        if body is _INVALID:
            self._send_json(
                HTTPStatus.BAD_REQUEST,
                ApiFailure(HTTPStatus.BAD_REQUEST, "Invalid JSON payload received.").body(),
            )
            return
        if parts.path.startswith("/_fake/"):
            self._control(method, parts.path, body)
            return
        route = parse_route(parts.path)
        if route is None:
            failure = ApiFailure(HTTPStatus.NOT_FOUND, f"Unknown path {parts.path}")
            self._send_json(failure.status, failure.body())
            return
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        query["ranges_list"] = parse_qs(parts.query).get("ranges", [])
        if self.headers.get("Authorization"):
            with self.state.lock:
                self.state.stats["authorized_requests"] += 1

        kind = request_kind(method)
        fault = self.state.take_fault(kind)
        try:
            if fault is not None:
                if fault.kind == "drop_before_apply":
                    self._drop_connection()
                    return
                if fault.kind == "slow":
                    time.sleep(fault.delay)
                elif fault.kind != "drop_after_apply":
                    raise _fault_failure(fault.kind)
            self.state.admit(kind)
            reply = self.state.handle(method, route, query, body)
        except ApiFailure as failure:
            self._send_json(failure.status, failure.body())
            return
        if fault is not None and fault.kind == "drop_after_apply":
            # With a delay the write is visible while the client still waits,
            # which lets a test kill the client between the write and its response.
            time.sleep(fault.delay)
            self._drop_connection()
            return
        self._send_json(HTTPStatus.OK, reply)

    def _control(self, method: str, path: str, body) -> None:
        """Serve the test-only endpoints: rows, stats and fault injection."""
        values = re.match(r"^/_fake/spreadsheets/([^/]+)/values/(.+)$", path)
        try:
            if method == "GET" and values:
                spreadsheet_id, title = values.group(1), unquote(values.group(2))
                rows = self.state.values(spreadsheet_id, title)
                self._send_json(HTTPStatus.OK, {"values": rows})
            elif method == "GET" and path == "/_fake/stats":
                self._send_json(HTTPStatus.OK, self.state.snapshot_stats())
            elif method == "POST" and path == "/_fake/faults":
                body = body or {}
                self.state.inject(
                    body.get("kind", ""),
                    times=int(body.get("times", 1)),
                    delay=float(body.get("delay", 0.0)),
                    applies_to=body.get("applies_to", "write"),
                )
                self._send_json(HTTPStatus.OK, {"injected": body.get("kind")})
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"unknown control path {path}"})
        except (ApiFailure, ValueError) as error:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(error)})

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length == 0:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return _INVALID

    def _send_json(self, status: HTTPStatus, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout passed) before the response was ready.
            self.close_connection = True

    def _drop_connection(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


_INVALID = object()


def _fault_failure(kind: str) -> ApiFailure:
    if kind == "rate_limit":
        return quota_exceeded("write", 0)
    if kind == "server_error":
        return ApiFailure(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal error encountered.")
    if kind == "unavailable":
        return ApiFailure(HTTPStatus.SERVICE_UNAVAILABLE, "The service is currently unavailable.")
    return ApiFailure(HTTPStatus.FORBIDDEN, "The caller does not have permission")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A handler may be sleeping in a slow or held response, and stopping must not wait for it.
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, state: SheetsState):
        super().__init__(address, SheetsRequestHandler)
        self.state = state


class FakeSheetsServer:
    """The fake API on a loopback port, served from a background thread.

    Use it as a context manager in tests. ``url`` is the base URL for
    ``SHEETS_API_URL``, and ``state`` gives direct access to cells and stats.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        writes_per_minute: int | None = 60,
        reads_per_minute: int | None = None,
        quota_window: float = 60.0,
    ):
        self.state = SheetsState(
            writes_per_minute=writes_per_minute,
            reads_per_minute=reads_per_minute,
            quota_window=quota_window,
        )
        self._server = _Server((host, port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeSheetsServer":
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-sheets", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> "FakeSheetsServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def written_first_cells(self) -> Iterator:
        """Yield the first-column value of every row any request wrote, in order."""
        with self.state.lock:
            records = list(self.state.write_log)
        for record in records:
            if record.kind == "clear" or record.start_column != 1:
                continue
            for row in record.values:
                if row:
                    yield row[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Google Sheets API v4 for tests.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765).")
    parser.add_argument(
        "--writes-per-minute",
        type=int,
        default=60,
        help="Write requests allowed per quota window before 429 (default 60, 0 for no limit).",
    )
    parser.add_argument(
        "--reads-per-minute",
        type=int,
        default=0,
        help="Read requests allowed per quota window before 429 (default 0: no limit).",
    )
    parser.add_argument(
        "--quota-window",
        type=float,
        default=60.0,
        help="Length of the quota window in seconds (default 60).",
    )
    parser.add_argument(
        "--spreadsheet-id",
        action="append",
        help="Spreadsheet to create at start, repeated for several (default: local).",
    )
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    server = FakeSheetsServer(
        host=options.host,
        port=options.port,
        writes_per_minute=options.writes_per_minute or None,
        reads_per_minute=options.reads_per_minute or None,
        quota_window=options.quota_window,
    )
    spreadsheet_ids = options.spreadsheet_id or ["local"]
    for spreadsheet_id in spreadsheet_ids:
        server.state.add_spreadsheet(spreadsheet_id)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    server.start()
    logger.info(
        "fake Sheets API listening url=%s spreadsheets=%s writes_per_minute=%s",
        server.url,
        ",".join(spreadsheet_ids),
        options.writes_per_minute or "unlimited",
    )
    stopped.wait()
    server.stop()
    logger.info("fake Sheets API stopped stats=%s", json.dumps(server.state.snapshot_stats()))


if __name__ == "__main__":
    main()
