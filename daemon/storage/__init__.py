"""The case store: SQLAlchemy tables, migrations, the engine/session and bulk upserts of derived rows."""
