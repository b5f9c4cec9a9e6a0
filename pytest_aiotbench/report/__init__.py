"""Stage 6, the report: the case entry and its JSON Schema, where reports are written (and never clobbered),
reading saved ones, the terminal table, the HTML page, and comparing/ranking saved runs."""
