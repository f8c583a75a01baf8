"""Smart group membership, computed and explained: pure functions over values.

It sits at the engine's level: it reads and writes nothing. The service
layer searches the directory (one search per distinct query per run) and
hands the results here as sets of normalised DNs.
"""
