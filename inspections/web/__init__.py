"""The staff screens' shell: navigation by role, the page router, forms read into Structs.

Each slice keeps its own screens (``inspections/<slice>/pages.py`` and
``templates/<slice>/``); they call the same operations and queries as the slice's JSON
routes, so a rule is written once. This folder holds only what every screen shares.
"""
