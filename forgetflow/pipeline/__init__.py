"""The deletion batch, by concern: batch (planning, stages), gate, lineage (tags, receipts,
report), unlearning (one attempt), parent, submission, settings (checked params), timing."""
