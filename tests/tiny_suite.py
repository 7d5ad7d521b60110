"""Shared by the tests that run the whole suite on a tiny model in a subprocess."""

# The suite's timing and sampling options at their smallest, for end-to-end runs of tiny models
# (what they check is that every metric is measured and reported, not how precisely).
TINY_SUITE_FLAGS = ("--bench-seconds", "0.2", "--min-rounds", "3", "--blocks", "5", "--block-seconds", "0.02",
                    "--timing-cap-s", "5", "--timing-info-cap-s", "5", "--cold-start-samples", "1",
                    "--cold-cache-samples", "0", "--memory-samples", "1", "--threads", "1", "--processes", "1")
