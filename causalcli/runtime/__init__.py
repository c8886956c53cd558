"""What running needs, whatever the design: atomic writes, progress, threads, worker counts."""
