"""Boards shared through labgrid: acquiring a place (`place`), the labgrid-side worker (`worker`, run in
.venv/labgrid) and a loopback farm for tests and demos (`loopback`).
"""
