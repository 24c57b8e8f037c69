"""The report of a run: the target table (verdicts), the Markdown summary, the plots."""
