"""SQL behind the REST API: typed rows and ``select_*`` functions taking the connection first.

Every query has an explicit column list and typed parameters; producer tables are only read.
"""
