"""The benchmarks behind scripts/bench_*: a shared harness (throwaway PostgreSQL and
SeaweedFS, a granian server, seeding, percentiles) and one module per benchmark."""
