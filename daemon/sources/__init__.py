"""Case sources: platform exports (CSV/XLSX), the platform database (SQL) and the platform API (HTTP).

Each source turns platform rows into :class:`~daemon.core.cases.CaseRecord` and reports bad rows as
:class:`RowResult` errors without stopping the good ones; a failure of the source as a whole raises
:class:`SourceError`. Sources never write the store.

``daemon.sources.sql`` (SQLAlchemy) and ``daemon.sources.http`` (requests) are imported on demand.
"""

from daemon.sources.base import FetchResult, HeaderError, RowResult, SourceError, WatermarkedStream
from daemon.sources.contacts import ContactResult, ContactRole, ImportedContact
from daemon.sources.files import EncodingError, mark_duplicates, read_case_file, read_contacts_file
from daemon.sources.mapping import CaseRowError, ColumnMapping, ColumnNames, ValueWords, to_record

__all__ = [
    "CaseRowError",
    "ColumnMapping",
    "ColumnNames",
    "ContactResult",
    "ContactRole",
    "EncodingError",
    "FetchResult",
    "HeaderError",
    "ImportedContact",
    "RowResult",
    "SourceError",
    "ValueWords",
    "WatermarkedStream",
    "mark_duplicates",
    "read_case_file",
    "read_contacts_file",
    "to_record",
]
