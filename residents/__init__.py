"""一标三实: the people (实有人口), houses (实有房屋) and units (实有单位) recorded on standard addresses.

Pure core (`validate`, `records`, `synthetic`) plus `store.py` (SQL) and `service.py` (the rules that need
the database: dedupe, moves, address checks). Never imports the web app.
"""
