"""A minimal Django project for the benchmarks, configured by environment variables.

It must import under the peers' virtualenvs too, so it never imports maintenance_flags
or waffle unless ``BENCH_KIND`` asks for them.
"""
