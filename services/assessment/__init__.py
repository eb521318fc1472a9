"""Assessment: question banks, final tests, attempts and scoring; the pass/fail read model."""
