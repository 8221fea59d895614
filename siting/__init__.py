"""Siting and coverage: service-radius coverage, facility location, camera siting.

Pure core: :mod:`siting.coverage` (sparse demand × site pairs), :mod:`siting.network` (walking distance),
:mod:`siting.visibility` (camera FOV + occlusion), :mod:`siting.models` (LSCP / MCLP / p-median: the face
of :mod:`siting.locate`, one module per model over a shared base, and :mod:`siting.solvers`, the HiGHS
wrapper and the heuristics), :mod:`siting.standards` (GB 50180-2018 facility types), :mod:`siting.errors`
(domain errors), :mod:`siting.isochrones` (walking isochrones, network buffers). I/O: :mod:`siting.store`
(SQL), :mod:`siting.service` (analyses shared by the API and the CLI), :mod:`siting.scenarios` (named,
versioned siting scenarios and their comparison), :mod:`siting.candidates` (posted candidate CSVs),
:mod:`siting.tasks` (what an analysis job runs), :mod:`siting.report` (offline HTML maps + CSV) and
:mod:`siting.documents` (PDF / CSV / GeoPackage reports).
"""
