"""`tocsin simulate`: replay a recorded alert stream through the real workflows, on Temporal's time-skipping
test server, under a candidate policy, and say who would have been paged when.

stream (pure): the alerts file, one generic alert plus `at` per line, validated as the receiver validates.
pages (pure): the outbox a simulation leaves, read back as pages per incident; two runs' differences.
export (pure): an incident's recorded state as lines of such a file (`tocsin incidents export`).
engine (entry point): the time-skipping server, the real workers, the receiver's intake, a temporary state dir.
"""
