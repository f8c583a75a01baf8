"""Workflow requests as values: the decision trail, the state it folds into,
who may decide, and which changes the approvals let through [S7].

Pure: nothing here reads or writes; the services hand in what the database
says and store what comes back.
"""
