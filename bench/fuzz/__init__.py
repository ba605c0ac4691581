"""Coverage-guided fuzzing of the C protocol core (libFuzzer) and of the host frame parser and client (atheris): `python -m bench.fuzz`."""
