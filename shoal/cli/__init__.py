"""The `shoal` command line: one module per noun, all on top of the SDK (`shoal.Client`).

Entry point: `shoal.cli.main:main`.
"""
