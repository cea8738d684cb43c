"""Audio decoding, fixed-length crops, evaluation windows and the log-mel frontend."""
