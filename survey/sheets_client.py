"""The Google Sheets side of the mirror: configuration, the gspread client, the worksheet.

Settings come from Django settings when defined there, else from the
environment: ``SHEETS_SPREADSHEET_ID``, ``GOOGLE_APPLICATION_CREDENTIALS`` (a
service-account JSON file), ``SHEETS_API_URL`` (another base URL for the API,
such as a local emulator) and ``SHEETS_WORKSHEET`` (default ``responses``).
"""

import ipaddress
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import gspread
from django.conf import settings
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from survey.sheets_retry import Retrier, WriteThrottle

logger = logging.getLogger(__name__)

GOOGLE_SHEETS_ORIGIN = "https://sheets.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]
DEFAULT_WORKSHEET = "responses"
# Google gives a new worksheet 1,000 rows. The mirror requests the same and
# grows the grid by this many rows whenever a write would pass its end.
NEW_WORKSHEET_ROWS = 1000
GROW_ROWS = 1000
# Seconds to connect, and seconds to wait for the response, for every API call.
REQUEST_TIMEOUT = (10.0, 60.0)


class SheetsNotConfigured(Exception):
    """The settings name no spreadsheet, or no credentials to write to it."""


class SheetsAccessError(Exception):
    """The spreadsheet does not exist, or is not shared with the service account."""


@dataclass(frozen=True)
class SheetsConfig:
    spreadsheet_id: str
    worksheet_title: str
    api_url: str
    credentials_file: str


def _setting(name: str) -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "")
    return str(value).strip()


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config() -> SheetsConfig:
    """Read the mirror settings. Raise SheetsNotConfigured naming what is missing."""
    config = SheetsConfig(
        spreadsheet_id=_setting("SHEETS_SPREADSHEET_ID"),
        worksheet_title=_setting("SHEETS_WORKSHEET") or DEFAULT_WORKSHEET,
        api_url=_setting("SHEETS_API_URL").rstrip("/"),
        credentials_file=_setting("GOOGLE_APPLICATION_CREDENTIALS"),
    )
    if not config.spreadsheet_id:
        raise SheetsNotConfigured("SHEETS_SPREADSHEET_ID is not set")
    if config.api_url and urlsplit(config.api_url).scheme not in {"http", "https"}:
        raise SheetsNotConfigured(f"SHEETS_API_URL={config.api_url!r} is not an http or https URL")
    if not config.credentials_file and not (config.api_url and is_loopback_url(config.api_url)):
        raise SheetsNotConfigured(
            "GOOGLE_APPLICATION_CREDENTIALS is not set. Point it at the service-account "
            "JSON key file"
        )
    return config


def load_credentials(config: SheetsConfig) -> Credentials:
    """Return service-account credentials, or anonymous ones for a loopback emulator.

    Anonymous credentials add no Authorization header, so no Google token is
    ever sent to a local emulator.
    """
    if config.api_url and is_loopback_url(config.api_url) and not config.credentials_file:
        return AnonymousCredentials()
    return service_account.Credentials.from_service_account_file(
        config.credentials_file, scopes=SCOPES
    )


class RoutedSession(AuthorizedSession):
    """An authorized session that sends Sheets API calls to ``api_url`` instead of Google.

    gspread builds every URL from https://sheets.googleapis.com, so the
    origin is swapped here, the one place all its requests pass through.
    """

    def __init__(self, credentials: Credentials, *, api_url: str = ""):
        super().__init__(credentials)
        self.api_url = api_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        if self.api_url and url.startswith(GOOGLE_SHEETS_ORIGIN + "/"):
            url = self.api_url + url.removeprefix(GOOGLE_SHEETS_ORIGIN)
        return super().request(method, url, *args, **kwargs)


def column_range(first_row: int, last_row: int, width: int) -> str:
    return f"A{first_row}:{gspread.utils.rowcol_to_a1(last_row, width)}"


def contiguous_runs(rows: dict[int, list]) -> list[tuple[int, list[list]]]:
    """Group rows keyed by row number into (first row, values) runs of consecutive rows."""
    runs: list[tuple[int, list[list]]] = []
    previous = None
    for number in sorted(rows):
        if previous is not None and number == previous + 1:
            runs[-1][1].append(rows[number])
        else:
            runs.append((number, [rows[number]]))
        previous = number
    return runs


class MirrorSheet:
    """The mirror's worksheet, with every call paced, timed out and retried.

    All writes go to fixed cells with ``valueInputOption=RAW``, so the API
    stores each value as sent. Text such as ``=HYPERLINK(...)``, ``+1`` or
    ``0012`` stays text instead of becoming a formula or a number. Writing the
    same rows again leaves the sheet unchanged.
    """

    def __init__(
        self,
        *,
        config: SheetsConfig,
        header: Sequence[str],
        retrier: Retrier,
        throttle: WriteThrottle,
        timeout: float | tuple[float, float] = REQUEST_TIMEOUT,
    ):
        self.config = config
        self.header = list(header)
        self.retrier = retrier
        self.throttle = throttle
        self.timeout = timeout
        self.worksheet: gspread.Worksheet | None = None
        self.row_count = 0
        self.column_count = 0
        # True from creating the worksheet until the first clear_rows_from(),
        # because a new worksheet contains no stale rows to clear.
        self.created = False

    @property
    def width(self) -> int:
        return len(self.header)

    def open(self) -> None:
        """Open the spreadsheet, create the worksheet if needed, and check its header."""
        credentials = load_credentials(self.config)
        client = gspread.Client(
            auth=credentials, session=RoutedSession(credentials, api_url=self.config.api_url)
        )
        client.set_timeout(self.timeout)
        try:
            spreadsheet = self.retrier.call(
                "open spreadsheet", lambda: client.open_by_key(self.config.spreadsheet_id)
            )
        except gspread.SpreadsheetNotFound as error:
            raise SheetsAccessError(
                f"spreadsheet {self.config.spreadsheet_id} not found. Check SHEETS_SPREADSHEET_ID"
            ) from error
        except PermissionError as error:
            account = getattr(credentials, "service_account_email", "the service account")
            raise SheetsAccessError(
                f"no access to spreadsheet {self.config.spreadsheet_id}. Share it with "
                f"{account} as an editor"
            ) from error
        self.worksheet = self._find_or_add_worksheet(spreadsheet)
        self.row_count = self.worksheet.row_count
        self.column_count = self.worksheet.col_count
        if self.column_count < self.width:
            self._grow(dimension="COLUMNS", needed=self.width)
        self.ensure_header()

    def ensure_header(self) -> None:
        worksheet = self._require_worksheet()
        current = self.retrier.call(
            "read header",
            lambda: worksheet.get_values(column_range(1, 1, self.width), pad_values=False),
        )
        if current and current[0] == self.header:
            return
        logger.info(
            "writing header row spreadsheet=%s worksheet=%s",
            self.config.spreadsheet_id,
            self.config.worksheet_title,
        )
        self.write_rows({1: list(self.header)})

    def ensure_rows(self, last_row: int) -> None:
        """Grow the grid so that ``last_row`` exists."""
        if last_row > self.row_count:
            self._grow(dimension="ROWS", needed=last_row)

    def write_rows(self, rows: dict[int, list], *, before_attempt: Callable[[], None] = None):
        """Write each row of values to its row number, in one write request."""
        worksheet = self._require_worksheet()
        runs = contiguous_runs(rows)
        self.ensure_rows(max(rows))
        data = [
            {"range": column_range(first, first + len(values) - 1, self.width), "values": values}
            for first, values in runs
        ]

        def attempt():
            if before_attempt is not None:
                before_attempt()
            self.throttle.wait()
            self.throttle.sent()
            if len(data) == 1:
                return worksheet.update(data[0]["values"], data[0]["range"], raw=True)
            # gspread rewrites each range in place, so every attempt gets a copy.
            return worksheet.batch_update([dict(item) for item in data], raw=True)

        return self.retrier.call("write rows", attempt)

    def clear_rows_from(self, first_row: int) -> None:
        """Clear the mirror's columns from ``first_row`` to the end of the grid."""
        worksheet = self._require_worksheet()
        if self.created:
            self.created = False
            return
        self.row_count = self._fetch_grid()[0]
        if first_row > self.row_count:
            return

        def attempt():
            self.throttle.wait()
            self.throttle.sent()
            return worksheet.batch_clear([column_range(first_row, self.row_count, self.width)])

        self.retrier.call("clear rows", attempt)

    def _find_or_add_worksheet(self, spreadsheet: gspread.Spreadsheet) -> gspread.Worksheet:
        title = self.config.worksheet_title
        try:
            return self.retrier.call("find worksheet", lambda: spreadsheet.worksheet(title))
        except gspread.WorksheetNotFound:
            pass
        logger.info(
            "creating worksheet spreadsheet=%s worksheet=%s", self.config.spreadsheet_id, title
        )

        def attempt():
            self.throttle.wait()
            self.throttle.sent()
            try:
                worksheet = spreadsheet.add_worksheet(
                    title, rows=NEW_WORKSHEET_ROWS, cols=self.width
                )
                self.created = True
                return worksheet
            except gspread.exceptions.APIError as error:
                # A retry after a lost response, or another worker, created it.
                if "already exists" in str(error):
                    return spreadsheet.worksheet(title)
                raise

        return self.retrier.call("add worksheet", attempt)

    def _fetch_grid(self) -> tuple[int, int]:
        worksheet = self._require_worksheet()
        metadata = self.retrier.call(
            "read grid size", lambda: worksheet.spreadsheet.fetch_sheet_metadata()
        )
        for sheet in metadata["sheets"]:
            properties = sheet["properties"]
            if properties["sheetId"] == worksheet.id:
                grid = properties["gridProperties"]
                return grid["rowCount"], grid["columnCount"]
        raise gspread.WorksheetNotFound(self.config.worksheet_title)

    def _grow(self, *, dimension: str, needed: int) -> None:
        worksheet = self._require_worksheet()

        def attempt():
            # Read the size on every attempt. If an earlier attempt was applied
            # before its response was lost, or another worker grew the grid,
            # there is nothing left to add. appendDimension only adds, so two
            # workers growing at once never shrink each other's grid.
            self.row_count, self.column_count = self._fetch_grid()
            current = self.row_count if dimension == "ROWS" else self.column_count
            if current >= needed:
                return
            length = needed - current + (GROW_ROWS if dimension == "ROWS" else 0)

            self.throttle.wait()
            self.throttle.sent()
            worksheet.spreadsheet.batch_update(
                {
                    "requests": [
                        {
                            "appendDimension": {
                                "sheetId": worksheet.id,
                                "dimension": dimension,
                                "length": length,
                            }
                        }
                    ]
                }
            )

            logger.info(
                "grid grown worksheet=%s dimension=%s added=%s",
                self.config.worksheet_title,
                dimension,
                length,
            )
            if dimension == "ROWS":
                self.row_count = current + length
            else:
                self.column_count = current + length

        self.retrier.call(f"grow {dimension.lower()}", attempt)

    def _require_worksheet(self) -> gspread.Worksheet:
        if self.worksheet is None:
            raise RuntimeError("MirrorSheet.open() must run before reads and writes")
        return self.worksheet
