"""Issues: categories, intake, workflow, deadlines, escalation, duplicates, queries, counts and dispatch."""
