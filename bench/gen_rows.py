#!/usr/bin/env python3
"""Writes N rows of a 5-column users table (id, email, phone, name, created) in
PostgreSQL COPY text format to stdout. Deterministic; some NULLs."""
import sys

n = int(sys.argv[1])
w = sys.stdout.write
for i in range(n):
    email = "\\N" if i % 50 == 0 else f"user{i}@corp{i % 97}.example.com"
    w(f"{i}\t{email}\t+1-555-{i % 10000:04d}\tFirst{i % 1000} Last{i % 777}\t2024-01-{i % 28 + 1:02d} 10:00:00+00\n")
