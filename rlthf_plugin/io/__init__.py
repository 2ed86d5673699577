"""Files in and out: input formats (:mod:`.formats`), the import into the ledger
(:mod:`.importer`), the curated export (:mod:`.export`) and the curated-set schema shared
with training (:mod:`.curated`, documented in docs/curated-set.md).
"""
