"""The results: what a person reads about a study (selection, report, confirmation text, export);
reads the storage, trains nothing."""
