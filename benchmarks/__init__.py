"""Speed measurements (`python -m benchmarks.bench`) and the slow reference layers they compare against."""
