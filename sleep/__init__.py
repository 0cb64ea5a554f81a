"""Sleep: the offline consolidation pipeline (curation, extraction, training, validation)."""
