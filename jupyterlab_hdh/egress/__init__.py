"""The airlock: export-control review, the only way anything leaves a sandbox.

``checks/`` runs the automated disclosure checks (pure, no store); the request
workflow, snapshots, votes, provenance and the transactional release live beside
it; ``render`` shows reviewers files safely; ``notify`` e-mails people.
"""
