"""Shequ GIS application package: settings, database, migrations, the API, the CLI, the access layer."""

